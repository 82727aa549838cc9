"""Branches of the mesh core that the scenario tests do not reach."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from ccattest.errors import MalformedEvidence, StaleEvidence
from ccattest.mesh.agent import SiteAgent
from ccattest.mesh.config import CCConfig, build_agent
from ccattest.mesh.registration import RegistrationClient, RegistrationServer
from ccattest.mesh.roster import Roster, SiteSpec
from ccattest.mesh.rounds import CONTRIBUTE, MAX_PENDING_ROUNDS, VERIFY, RoundCoordinator
from ccattest.mesh.scheduler import PeriodicRunner
from ccattest.mesh.transport import LocalTransport, PeerUnreachable
from ccattest.mesh.trustbook import TrustBook
from ccattest.mesh.wire import Transcript, parse_hex
from ccattest.policy import Policy
from ccattest.provisioning import FederationRequest, SiteRequest, provision
from ccattest.testing.federation import SERVER, SimulatedFederation
from ccattest.timeutil import utcnow


@pytest.fixture
def fed():
    federation = SimulatedFederation.create(2)
    yield federation
    federation.close()


def test_pending_rounds_are_bounded(fed):
    participant = fed.sites["site-1"].participant
    for number in range(MAX_PENDING_ROUNDS + 5):
        participant.handle(SERVER, CONTRIBUTE, {"round_id": f"r{number}"})
    assert len(participant._contributed) == MAX_PENDING_ROUNDS


def test_verify_phase_with_bad_inputs(fed):
    participant = fed.sites["site-1"].participant
    contribution = bytes.fromhex(participant.handle(SERVER, CONTRIBUTE, {"round_id": "x"})[
        "contribution"])
    other = b"\2" * 32
    transcript = Transcript.build("x", {"site-1": contribution, "site-2": other},
                                  utcnow() + timedelta(minutes=1))
    with pytest.raises(MalformedEvidence, match="evidence map"):
        participant.handle(SERVER, VERIFY, {"transcript": transcript.to_wire(), "evidence": []})
    contribution = bytes.fromhex(participant.handle(SERVER, CONTRIBUTE, {"round_id": "y"})[
        "contribution"])
    transcript = Transcript.build("y", {"site-1": contribution, "site-2": other},
                                  utcnow() + timedelta(minutes=1))
    answer = participant.handle(SERVER, VERIFY, {"transcript": transcript.to_wire(),
                                                 "evidence": {"site-2": "not a list"}})
    summary = answer["verdicts"]["site-2"]
    assert not summary["affirming"] and "evidence list is malformed" in summary["failures"][0]


class _Scripted:
    """A transport whose peers misbehave in chosen ways."""

    def __init__(self, inner, behaviour):
        self.inner, self.behaviour = inner, behaviour

    def request(self, target, topic, body, *, timeout):
        action = self.behaviour.get((target, topic))
        if action == "refuse":
            raise StaleEvidence("not today")
        if action == "slow":
            raise TimeoutError
        if action == "garbage":
            return {"contribution": "zz"}
        if action == "odd-verdicts":
            return {"verdicts": {"server": "not a mapping"}}
        return self.inner.request(target, topic, body, timeout=timeout)


@pytest.mark.parametrize(("behaviour", "expected"), [
    ({("site-1", CONTRIBUTE): "refuse"}, "not today"),
    ({("site-1", CONTRIBUTE): "slow"}, "before the round deadline"),
    ({("site-1", CONTRIBUTE): "garbage"}, "not hex"),
])
def test_coordinator_records_misbehaving_peers(fed, behaviour, expected):
    server = fed.sites[SERVER]
    coordinator = RoundCoordinator(server.participant,
                                   _Scripted(fed.transports[SERVER], behaviour), fed.roster,
                                   members=lambda: list(fed.sites))
    try:
        report = coordinator.run_round()  # no handler: nothing is acted on
    finally:
        coordinator.close()
    assert expected in report.unreachable["site-1"]
    assert report.verdicts[SERVER]["site-2"]["affirming"]


def test_remote_verdicts_that_are_not_mappings_are_ignored(fed):
    server = fed.sites[SERVER]
    coordinator = RoundCoordinator(server.participant,
                                   _Scripted(fed.transports[SERVER],
                                             {("site-1", VERIFY): "odd-verdicts"}),
                                   fed.roster, members=lambda: list(fed.sites))
    try:
        coordinator.run_round()
    finally:
        coordinator.close()
    assert all(cell.verifier != "site-1" for cell in server.trust.matrix())


def test_local_transport_delay_and_unknown_target():
    calls = []
    transport = LocalTransport("a", {"b": lambda s, t, b: calls.append((s, t)) or {}},
                               delay=0.001)
    assert transport.request("b", "t", {}, timeout=1) == {}
    assert calls == [("a", "t")]
    with pytest.raises(PeerUnreachable):
        transport.request("c", "t", {}, timeout=1)


def test_trustbook_keeps_other_verifiers_out_of_its_own_entries(fed):
    trust = TrustBook("me")
    at = utcnow()
    verdict = fed.sites[SERVER].agent.judge("site-1", [], nonce=b"n" * 32, context="c", at=at)
    trust.record(verdict, definitive=True, verifier="someone-else")
    assert trust.entry("site-1") is None and len(trust.matrix()) == 1


def test_roster_requiring_cc_accepts_an_all_cc_roster():
    assert Roster([SiteSpec("a")], require_all_cc=True).is_cc("a")


def test_runner_stop_before_start_is_harmless():
    runner = PeriodicRunner(lambda: None, interval=1)
    runner.stop()
    assert not runner.running
    time.sleep(0)


def test_parse_hex_length():
    with pytest.raises(MalformedEvidence, match="wrong length"):
        parse_hex("00", 32, "nonce")


def test_registration_with_a_non_cc_server_and_a_non_cc_client(fed):
    roster = Roster([SiteSpec(SERVER, cc_enabled=False), SiteSpec("site-1")])
    client_agent = fed.sites["site-1"].agent
    client = RegistrationClient(SiteAgent("site-1", client_agent.attesters,
                                          client_agent.verifiers, client_agent.policy, roster),
                                SERVER, TrustBook("site-1"))
    client.hello(utcnow())
    assert client.on_reply({}, utcnow()).status == "not-cc"
    plain = SiteAgent(SERVER, [], {}, Policy(), Roster([SiteSpec("site-9", cc_enabled=False)]))
    server = RegistrationServer(plain, TrustBook(SERVER))
    hello = RegistrationClient(plain, SERVER, TrustBook("x")).hello(utcnow())
    assert server.on_hello("site-9", hello, utcnow()) == {}  # no evidence, no challenge


def test_config_builds_snp_attester_and_verifier(tmp_path):
    request = FederationRequest([SiteRequest("server")])
    provision(request, {"server": tmp_path}, tmp_path / "root", datetime.now(UTC))
    import yaml

    data = yaml.safe_load((tmp_path / "cc_config.yaml").read_text())
    data["collect"]["snp"] = {"tsm_root": str(tmp_path / "tsm"),
                              "sev_guest": str(tmp_path / "sev-guest")}
    data["verify"]["snp"] = {"allow_missing_crl": False}
    agent = build_agent(CCConfig.model_validate(data), tmp_path)
    assert [a.platform for a in agent.attesters] == ["software", "snp"]
    assert set(agent.verifiers) == {"software", "snp"}


def test_config_without_software_verification(tmp_path):
    request = FederationRequest([SiteRequest("server")])
    provision(request, {"server": tmp_path}, tmp_path / "root", datetime.now(UTC))
    import yaml

    data = yaml.safe_load((tmp_path / "cc_config.yaml").read_text())
    data["verify"] = {}
    agent = build_agent(CCConfig.model_validate(data), tmp_path)
    assert agent.verifiers == {} and agent.cc_enabled


def test_config_builds_tdx_attester_and_verifier(tmp_path):
    from ccattest.platforms.tdx.collateral_json import collateral_to_json
    from ccattest.testing.tdx import TdxFixture

    request = FederationRequest([SiteRequest("server")])
    provision(request, {"server": tmp_path}, tmp_path / "root", datetime.now(UTC))
    fixture = TdxFixture.create()
    (tmp_path / "tdx-collateral.json").write_bytes(collateral_to_json(fixture.collateral()))
    import yaml

    data = yaml.safe_load((tmp_path / "cc_config.yaml").read_text())
    data["collect"]["tdx"] = {"tsm_root": str(tmp_path / "tsm")}
    data["verify"]["tdx"] = {"collateral": "tdx-collateral.json"}
    agent = build_agent(CCConfig.model_validate(data), tmp_path)
    assert [a.platform for a in agent.attesters] == ["software", "tdx"]
    assert agent.verifiers["tdx"].collateral is not None
    data["verify"]["tdx"] = {"collateral": "missing.json"}
    from ccattest.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot read TDX collateral"):
        build_agent(CCConfig.model_validate(data), tmp_path)
    data["verify"]["tdx"] = {}
    assert build_agent(CCConfig.model_validate(data), tmp_path).verifiers["tdx"].collateral is None


def test_config_builds_nvgpu_attester_and_verifier(tmp_path):
    request = FederationRequest([SiteRequest("server")])
    provision(request, {"server": tmp_path}, tmp_path / "root", datetime.now(UTC))
    import yaml

    (tmp_path / "driver.swidtag").write_bytes(b"<xml/>")
    data = yaml.safe_load((tmp_path / "cc_config.yaml").read_text())
    data["collect"]["nvgpu"] = {}
    data["verify"]["nvgpu"] = {"rims": ["driver.swidtag"], "rim_cache": "rims"}
    agent = build_agent(CCConfig.model_validate(data), tmp_path)
    assert [a.platform for a in agent.attesters] == ["software", "nvgpu"]
    assert agent.verifiers["nvgpu"].rim is not None
    data["verify"]["nvgpu"] = {"rims": ["missing.swidtag"]}
    from ccattest.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot read RIM"):
        build_agent(CCConfig.model_validate(data), tmp_path)


def test_config_builds_azure_attesters_and_verifiers(tmp_path):
    request = FederationRequest([SiteRequest("server")])
    provision(request, {"server": tmp_path}, tmp_path / "root", datetime.now(UTC))
    import json

    import yaml

    from ccattest.testing.maa import MaaFixture

    (tmp_path / "maa-jwks.json").write_text(json.dumps(MaaFixture.create().jwks()))
    data = yaml.safe_load((tmp_path / "cc_config.yaml").read_text())
    data["collect"]["azure_cvm"] = {"tpm_device": str(tmp_path / "tpm")}
    data["collect"]["aci"] = {"maa_endpoint": "example.attest.azure.net"}
    data["verify"]["azure_cvm"] = True
    data["verify"]["maa"] = {"instances": ["https://example.attest.azure.net"],
                             "jwks": "maa-jwks.json"}
    agent = build_agent(CCConfig.model_validate(data), tmp_path)
    assert [a.platform for a in agent.attesters][1:] == ["azure-snp", "maa"]
    assert {"azure-snp", "azure-tdx", "maa"} <= set(agent.verifiers)
    data["verify"]["maa"] = {"instances": ["https://example.attest.azure.net"]}
    assert "maa" in build_agent(CCConfig.model_validate(data), tmp_path).verifiers
