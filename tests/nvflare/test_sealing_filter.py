"""The sealing filter and the site process's seal service, in-process: a server's task data
sealed for site-1 opens only in site-1's filter, site-1's result sealed back opens at the
server, clear payloads from a CC peer are refused, and the service answers only its own
site's jobs. (On real NVFlare: tests/e2e/test_sealing.py.)"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("nvflare")

from nvflare.apis.dxo import DXO, DataKind, from_shareable
from nvflare.apis.fl_constant import FLContextKey, ReservedKey
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import Shareable
from nvflare.app_common.app_constant import AppConstants

from ccattest.errors import MalformedEvidence, PolicyRejected
from ccattest.mesh.config import SealMode
from ccattest.mesh.sealing import SealDesk
from ccattest.nvflare.sealing import SEALED, SealClient, SealFilter, SealService, socket_name
from ccattest.seal.envelope import SealedPayloadInvalid
from ccattest.seal.keys import SuiteName
from ccattest.testing.federation import SERVER, SimulatedFederation

WEIGHTS = {"numpy_key": np.arange(9, dtype=np.float32).reshape(3, 3)}


class Workspace:
    def __init__(self, local: Path) -> None:
        self.local = local

    def get_site_config_dir(self) -> str:
        return str(self.local)


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[dict[str, Any]]:
    fed = SimulatedFederation.create(2, sealing=SuiteName.MLKEM768_X25519,
                                     not_cc=["site-2"])
    assert fed.register("site-1")[0]
    fed.round()  # definitive verdicts both ways: the server's and site-1's keys are usable
    services, out = [], {}
    for name, role in ((SERVER, "server"), ("site-1", "client")):
        site = fed.sites[name]
        cc = tmp_path / name / "local" / "cc"
        cc.mkdir(parents=True)
        desk = SealDesk(name, site.agent.sealing, site.trust, fed.roster, SealMode.ON)
        services.append(SealService(desk, cc, role=role))
        out[name] = Workspace(cc.parent)
    try:
        yield out
    finally:
        for service in services:
            service.close()
        fed.close()


def _ctx(workspace: Workspace, direction: str, peer: str, **props: Any) -> FLContext:
    ctx = FLContext()
    ctx.set_prop(FLContextKey.WORKSPACE_OBJECT, workspace, private=True, sticky=False)
    ctx.set_prop(FLContextKey.FILTER_DIRECTION, direction, private=True, sticky=False)
    ctx.set_prop(FLContextKey.TASK_NAME, "train", private=True, sticky=False)
    ctx.set_prop(FLContextKey.TASK_ID, "task-1", private=True, sticky=False)
    ctx.set_prop(ReservedKey.RUN_NUM, "job-1", private=False, sticky=False)
    for key, value in props.items():
        ctx.set_prop(key, value, private=True, sticky=False)
    other = FLContext()
    other.set_prop(ReservedKey.IDENTITY_NAME, peer, private=False, sticky=False)
    ctx.set_peer_context(other)
    return ctx


def _task(data: dict[str, Any], round_: int = 3) -> Shareable:
    shareable = DXO(DataKind.WEIGHTS, dict(data), {"NUM_STEPS_CURRENT_ROUND": 1}
                    ).to_shareable()
    shareable.set_header(AppConstants.CURRENT_ROUND, round_)
    return shareable


def test_task_data_and_results_travel_sealed_both_ways(sites) -> None:
    server_out = SealFilter().process(
        _task(WEIGHTS), _ctx(sites[SERVER], "out", "site-1",
                             **{AppConstants.CURRENT_ROUND: 3}))
    sealed = from_shareable(server_out)
    assert list(sealed.data) == [SEALED] and sealed.meta["ccattest.seal"]["to"] == "site-1"
    assert sealed.meta["NUM_STEPS_CURRENT_ROUND"] == 1  # meta stays clear
    opened = from_shareable(SealFilter().process(
        server_out, _ctx(sites["site-1"], "in", "example_project")))
    np.testing.assert_array_equal(opened.data["numpy_key"], WEIGHTS["numpy_key"])
    assert "ccattest.seal" not in opened.meta
    result = DXO(DataKind.WEIGHTS, {"numpy_key": opened.data["numpy_key"] + 1}, {}
                 ).to_shareable()
    back = SealFilter().process(result, _ctx(sites["site-1"], "out", "example_project"))
    assert list(from_shareable(back).data) == [SEALED]
    aggregated = from_shareable(SealFilter().process(
        back, _ctx(sites[SERVER], "in", "site-1", **{AppConstants.CURRENT_ROUND: 3})))
    np.testing.assert_array_equal(aggregated.data["numpy_key"], WEIGHTS["numpy_key"] + 1)


def test_a_payload_replayed_into_another_round_or_site_does_not_open(sites) -> None:
    server_out = SealFilter().process(
        _task(WEIGHTS), _ctx(sites[SERVER], "out", "site-1",
                             **{AppConstants.CURRENT_ROUND: 3}))
    server_out.set_header(AppConstants.CURRENT_ROUND, 4)  # replayed into the next round
    with pytest.raises(SealedPayloadInvalid, match="does not open for this context"):
        SealFilter().process(server_out, _ctx(sites["site-1"], "in", "example_project"))


def test_nothing_is_sealed_to_an_unattested_peer_and_clear_is_refused_from_a_cc_one(
        sites) -> None:
    with pytest.raises(PolicyRejected, match="nothing is sealed to site-3"):
        SealFilter().process(_task(WEIGHTS), _ctx(sites[SERVER], "out", "site-3"))
    plain = SealFilter().process(_task(WEIGHTS), _ctx(sites[SERVER], "out", "site-2"))
    assert "numpy_key" in from_shareable(plain).data  # site-2 is not CC: sent in clear
    with pytest.raises(PolicyRejected, match="sent a model in clear"):
        SealFilter().process(_task(WEIGHTS), _ctx(sites[SERVER], "in", "site-1"))
    passed = SealFilter().process(_task(WEIGHTS), _ctx(sites[SERVER], "in", "site-2"))
    assert "numpy_key" in from_shareable(passed).data
    reply = Shareable()  # an error reply: no DXO, nothing to seal
    assert SealFilter().process(reply, _ctx(sites[SERVER], "out", "site-1")) is reply
    broken = _task({})
    broken["DXO"]["meta"]["ccattest.seal"] = {"v": 1}
    with pytest.raises(MalformedEvidence, match="no sealed payload"):
        SealFilter().process(broken, _ctx(sites["site-1"], "in", "example_project"))


def test_the_service_answers_only_its_own_site(sites) -> None:
    cc = Path(sites[SERVER].get_site_config_dir()) / "cc"
    client = SealClient(cc)
    assert client.ask("whoami") == {"site": SERVER, "role": "server"}
    assert client.ask("expects", site="site-1") == {"sealed": True}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(socket_name(cc))
        raw.sendall(json.dumps({"op": "whoami", "secret": "guess"}).encode() + b"\n")
        assert b"not this site's job" in raw.recv(4096)
    for request in ({"op": "nope"}, {"op": "unwrap"}, {"op": "unwrap", "suite": "x"}):
        with pytest.raises(PolicyRejected):
            client.ask(**request)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.connect(socket_name(cc))
        raw.sendall(b"x" * (70 * 1024))
        assert b"bad request" in raw.recv(4096)
    with pytest.raises(PolicyRejected, match="not serving sealing keys"):
        SealClient(cc.parent / "elsewhere")
