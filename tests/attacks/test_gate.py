"""Attacks on who may take part: BYOC jobs, and sites lying about being CC-enabled."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ccattest.mesh.registration import RegistrationClient
from ccattest.platforms.software.collect import SoftwareAttester
from ccattest.platforms.software.pki import create_root, issue_site
from ccattest.testing.federation import HONEST, SERVER, SimulatedFederation
from ccattest.timeutil import utcnow

from .catalog import attack
from .conftest import assert_honest_unharmed


@attack("BYOC job through the gate",
        does="submits a job that brings its own code (BYOC) to run among attested sites, "
             "where custom code could read the data the TEEs protect",
        stopped_by="the job gate refuses BYOC jobs in CC mode whatever the sites' verdicts; "
                   "the same job without custom code is admitted")
def test_byoc_job_through_the_gate(fed):
    everyone = [SERVER, "site-1", "site-2", "site-3"]
    decision = fed.gate.check(everyone, at=utcnow(), byoc=True)
    assert not decision.allowed
    assert decision.reasons == ("BYOC jobs (custom code) are refused in CC mode",)
    assert_honest_unharmed(fed, everyone[1:])


@attack("BYOC job smuggled through job meta",
        does="submits a BYOC job whose meta.json says byoc false (or a non-boolean), or whose "
             "meta is not even a mapping, hoping the CC manager trusts the declaration",
        stopped_by="NVFlare derives byoc from the app's contents, the CC manager refuses any "
                   "truthy byoc at SUBMIT_JOB, and a meta it cannot read fails closed "
                   "(JOB_BLOCK_REASON set)")
def test_byoc_smuggled_through_job_meta(tmp_path: Path):
    pytest.importorskip("nvflare")
    from nvflare.apis.event_type import EventType
    from nvflare.apis.fl_constant import FLContextKey

    from ccattest.nvflare.manager import CCManager
    from ccattest.provisioning import FederationRequest, SiteRequest, provision

    class Context:
        def __init__(self, meta: Any = None) -> None:
            self.props: dict[str, Any] = {FLContextKey.JOB_META: meta}

        def get_prop(self, key: str, default: Any = None) -> Any:
            if key == FLContextKey.WORKSPACE_ROOT:
                return str(tmp_path / "server")
            return self.props.get(key, default)

        def set_prop(self, key: str, value: Any, **_: Any) -> None:
            self.props[key] = value

        def get_engine(self) -> Any:
            return self

        def get_clients(self) -> list[Any]:
            return []

    request = FederationRequest([SiteRequest("server"), SiteRequest("site-1")])
    folders = {site.name: tmp_path / site.name / "local" / "cc" for site in request.sites}
    provision(request, folders, tmp_path / "root", datetime(2026, 11, 26, tzinfo=UTC))
    (tmp_path / "server" / "startup").mkdir()
    (tmp_path / "server" / "startup" / "fed_server.json").write_text(
        '{"servers": [{"identity": "server"}]}')
    manager = CCManager()
    manager.handle_event(EventType.SYSTEM_BOOTSTRAP, Context())
    try:
        assert manager.ready
        for meta in ({"name": "j", "byoc": True}, {"name": "j", "byoc": "false"},
                     ["byoc"], "byoc"):
            context = Context(meta)
            manager.handle_event(EventType.SUBMIT_JOB, context)
            reason = context.props.get(FLContextKey.JOB_BLOCK_REASON)
            assert reason and "ccattest" in reason, meta
        plain = Context({"name": "j"})
        manager.handle_event(EventType.SUBMIT_JOB, plain)
        assert FLContextKey.JOB_BLOCK_REASON not in plain.props
    finally:
        manager.handle_event(EventType.SYSTEM_END, Context())


@attack("non-CC site claiming to be CC",
        does="a site without a TEE (or listed as non-CC) presents evidence from its own "
             "'TEE' (a key and certificate it made itself) to be counted as attested",
        stopped_by="evidence must chain to the roots this verifier configured, and the roster, "
                   "not the peer, says who is CC: the forger is refused, a listed non-CC site "
                   "stays 'not-cc' and never counts as attested")
def test_non_cc_site_claiming_to_be_cc():
    fed = SimulatedFederation.create(3, not_cc=["site-3"])
    try:
        for name in ("site-1", "site-3"):
            assert fed.register(name)[0]
        fake_root = create_root(utcnow())
        fake = issue_site(fake_root, "site-2", utcnow())
        site = fed.sites["site-2"]
        site.attester.inner = SoftwareAttester(fake, HONEST)  # the right code, a self-made TEE
        accepted, why = fed.register("site-2")
        assert not accepted and "registration refused: site-2" in why
        assert "certificate" in why, why
        report = fed.round()
        assert "site-2" in fed.sites[SERVER].trust.excluded()
        assert not report.verdicts[SERVER]["site-2"]["affirming"]
        # site-3 is non-CC in the roster: whatever it sends, it is never "attested"
        at = utcnow()
        hello = RegistrationClient(fed.sites["site-1"].agent, SERVER,
                                   fed.sites["site-1"].trust).hello(at)
        fed.registration.on_hello("site-3", hello, at)  # CC evidence from a non-CC site
        entry = fed.sites[SERVER].trust.entry("site-3")
        assert entry.verdict.status == "not-cc" and not entry.verdict.affirming
        assert not fed.sites[SERVER].trust.is_trusted("site-3", at)
        assert_honest_unharmed(fed, ["site-1"])
    finally:
        fed.close()
