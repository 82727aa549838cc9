"""Real network faults on a real NVFlare POC: each site in its own network namespace
(ccattest.testing.netns), faults made by nftables in the site's namespace (partition, loss)
and a userspace relay (delay). Each scenario asserts the trust matrix in the sites' status
files and what jobs do. Rounds every 3 s, a 10 s deadline, a 5 s grace for the unreachable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccattest.mesh.actions import ActionConfig
from ccattest.nvflare.poc import PocFederation, wait_for
from ccattest.testing import netns
from tests.e2e.test_poc import _registered, _rounds, _run_job_id

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SITES = ("server", "site-1", "site-2")
GRACE = 5.0


@pytest.fixture
def net() -> Iterator[netns.Topology]:
    reason = netns.unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but network namespaces are unavailable: {reason}")
        pytest.skip(reason)
    topology = netns.Topology(SITES, rto_max_ms=1000)  # see Topology: ccattest, not TCP
    with topology:
        yield topology
    left = [n for n in netns.namespaces() if topology.token in n]
    assert not left, f"namespaces left behind: {left}"


@pytest.fixture
def federation(net: netns.Topology, tmp_path: Path
               ) -> Iterator[Callable[..., PocFederation]]:
    made: list[PocFederation] = []

    def make(*, delay: float = 0.0, actions: ActionConfig | None = None) -> PocFederation:
        poc = PocFederation(tmp_path, network=net)
        if delay:
            for client in poc.clients:  # each client dials its own delaying relay
                poc.targets[client] = net.delay("server", poc.port, delay)
        poc.prepare()
        poc.configure(actions=actions or ActionConfig(unreachable_grace_seconds=GRACE))
        made.append(poc)
        poc.start()
        return poc

    try:
        yield make
    finally:
        for poc in made:
            poc.stop()
            for site in SITES:
                assert not poc.alive(site), f"{site} still running after teardown"


def _matrix(poc: PocFederation, site: str = "server") -> dict[tuple[str, str], str]:
    return {(c["verifier"], c["peer"]): c["status"]
            for c in poc.status(site).get("matrix", [])}


def _excluded(poc: PocFederation, site: str) -> dict[str, Any]:
    return poc.status(site).get("excluded", {}) or {}


def _all_attested(poc: PocFederation) -> bool:
    last = poc.status("server").get("last_round") or {}
    return set(last.get("attested", ())) == set(SITES)


def _rounds_after(poc: PocFederation, count: int, timeout: float) -> dict[str, Any]:
    start = poc.status("server").get("rounds", 0)
    return _rounds(poc, start + count, timeout=timeout)


def test_slow_lossy_links_still_complete_rounds_and_a_job(federation, net, tmp_path):
    """200 ms RTT (a relay adding 100 ms each way) and 5 % loss on every client's link."""
    for client in SITES[1:]:
        net.loss(client, 5)
    poc = federation(delay=0.1)
    _registered(poc, "site-1", "site-2", timeout=90)
    status = _rounds_after(poc, 3, timeout=60)
    assert set(status["last_round"]["attested"]) == set(SITES), status["last_round"]
    assert status["last_round"]["seconds"] < 10, "a round overran its 10 s deadline"
    assert not _excluded(poc, "server") and not _excluded(poc, "site-1")
    cells = _matrix(poc)
    assert cells[("site-1", "site-2")] == "affirming"
    assert cells[("site-2", "server")] == "affirming"
    _, outcome = _run_job_id(poc, tmp_path, min_clients=2)
    assert outcome == "FINISHED:COMPLETED"
    assert not _excluded(poc, "server"), "a slow, lossy link is not a reason to exclude"
    assert all(poc.alive(site) for site in SITES)
    delaying = [r for r in net.relays if r.listen[0] == netns.HUB_ADDRESS]
    assert len(delaying) == 2 and all(r.stats.accepted >= 1 for r in delaying)


def _readmitted(poc: PocFederation, site: str, since_round: int, timeout: float) -> None:
    """`site` is back in the server's rounds and nobody excludes it any more."""
    def back() -> bool:
        last = poc.status("server").get("last_round") or {}
        return (site in last.get("attested", ()) and site not in _excluded(poc, "server")
                and all(site not in _excluded(poc, c) for c in SITES[1:] if c != site))

    wait_for(back, timeout, f"{site} to be re-attested and re-admitted")
    # Two rounds after the heal, and the one that was running when it healed.
    assert poc.status("server")["rounds"] - since_round <= 3


def test_partition_past_grace_excludes_then_heal_readmits(federation, net, tmp_path):
    poc = federation()
    _registered(poc, "site-1", "site-2")
    _rounds(poc, 1)
    net.partition("site-2")
    cut = time.monotonic()
    wait_for(lambda: "site-2" in _excluded(poc, "server"), 60,
             "the server to exclude partitioned site-2")
    assert time.monotonic() - cut >= GRACE - 1, "excluded before the grace period ended"
    alerts = [e for e in poc.events("server", "alert") if e["site"] == "site-2"]
    assert alerts and "unreachable" in alerts[0]["detail"]
    # The server's rounds no longer bring site-2: site-1's own judgement (its grace, its
    # action) excludes it too.
    wait_for(lambda: "site-2" in _excluded(poc, "site-1"), 20,
             "site-1 to exclude unreachable site-2 too")
    assert "missing from round" in _excluded(poc, "site-1")["site-2"]
    assert not set(_excluded(poc, "server")) - {"site-2"}
    _, outcome = _run_job_id(poc, tmp_path, min_clients=1)
    assert outcome == "FINISHED:COMPLETED", "a job without site-2 must run"
    assert all(poc.alive(site) for site in SITES), "a partition kills nobody"

    net.heal("site-2")
    _readmitted(poc, "site-2", poc.status("server").get("rounds", 0), timeout=30)
    assert _matrix(poc)[("site-1", "site-2")] == "affirming"
    _, outcome = _run_job_id(poc, tmp_path / "after", min_clients=2)
    assert outcome == "FINISHED:COMPLETED", "a job that needs site-2 runs again"


def test_partition_shorter_than_grace_excludes_nobody(federation, net):
    poc = federation()
    _registered(poc, "site-1", "site-2")
    _rounds_after(poc, 1, timeout=30)  # just after a round: the next starts in the cut
    net.partition("site-2")
    time.sleep(GRACE - 1)
    net.heal("site-2")
    status = _rounds_after(poc, 3, timeout=60)
    felt = [r for r in status["recent_rounds"]
            if "site-2" in r["unreachable"] or r["seconds"] > 0.5]
    assert felt, f"no round met the partition: {status['recent_rounds']}"
    assert not _excluded(poc, "server") and not _excluded(poc, "site-1"), status["excluded"]
    assert not poc.events("server", "exclude_site")
    assert set(status["last_round"]["attested"]) == set(SITES), status["last_round"]
    assert _matrix(poc)[("site-1", "site-2")] == "affirming"


def test_server_partitioned_from_everyone_then_healed(federation, net, tmp_path):
    poc = federation()
    _registered(poc, "site-1", "site-2")
    _rounds(poc, 1)
    net.partition("server")
    cut = time.monotonic()
    wait_for(lambda: {"site-1", "site-2"} <= set(_excluded(poc, "server")), 60,
             "the cut-off server to exclude both clients")
    assert time.monotonic() - cut >= GRACE - 1
    # Each client acts on its own configuration (the default: exclude_site) once no round
    # reached it for a round's interval and deadline, and its grace: it excludes the
    # unreachable server (refusing its jobs) and waits, alive, for it to attest again.
    wait_for(lambda: all("server" in _excluded(poc, c) for c in SITES[1:]), 45,
             "the clients to exclude the silent server")
    for client in SITES[1:]:
        assert "no round from the server" in _excluded(poc, client)["server"]
        assert poc.alive(client), "an unreachable server is no reason to leave"
    held = time.monotonic() - cut
    net.heal("server")
    assert held > GRACE
    rounds = poc.status("server").get("rounds", 0)
    for client in SITES[1:]:
        _readmitted(poc, client, rounds, timeout=45)
    wait_for(lambda: not any("server" in _excluded(poc, c) for c in SITES[1:]), 30,
             "the clients to re-admit the server on its fresh evidence")
    _, outcome = _run_job_id(poc, tmp_path, min_clients=2)
    assert outcome == "FINISHED:COMPLETED", "the federation comes back without manual steps"
