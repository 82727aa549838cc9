from datetime import timedelta

import pytest

from ccattest.errors import MalformedEvidence, PolicyRejected, StaleEvidence
from ccattest.mesh.registration import RegistrationClient
from ccattest.mesh.wire import evidence_to_wire
from ccattest.testing.federation import SERVER, SimulatedFederation
from ccattest.timeutil import utcnow


@pytest.fixture
def fed():
    federation = SimulatedFederation.create(3, tampered=["site-3"], not_cc=["site-2"])
    yield federation
    federation.close()


def _client(fed, name):
    site = fed.sites[name]
    return RegistrationClient(site.agent, SERVER, site.trust)


def test_mutual_attestation_and_definitive_only_after_confirm(fed):
    at = utcnow()
    client = _client(fed, "site-1")
    reply = fed.registration.on_hello("site-1", client.hello(at), at)
    server_trust = fed.sites[SERVER].trust
    assert not server_trust.entry("site-1").definitive  # provisional until our challenge
    assert not server_trust.is_trusted("site-1", at)
    verdict = client.on_reply(reply, at)
    assert verdict.affirming and fed.sites["site-1"].trust.is_trusted(SERVER, at)
    fed.registration.on_confirm("site-1", client.confirm(reply), at)
    assert server_trust.is_trusted("site-1", at)


def test_tampered_client_is_refused_at_registration(fed):
    accepted, why = fed.register("site-3")
    assert not accepted
    assert "measurement matches no reference value" in why


def test_non_cc_client_is_skipped_not_refused(fed):
    accepted, _ = fed.register("site-2")
    assert accepted
    entry = fed.sites[SERVER].trust.entry("site-2")
    assert entry.verdict.status == "not-cc"


def test_evidence_bound_to_another_identity_is_refused(fed):
    at = utcnow()
    hello = _client(fed, "site-1").hello(at)
    # site-1's hello replayed by a client authenticated as site-3 (transport identity)
    with pytest.raises(PolicyRejected, match="site-3"):
        fed.registration.on_hello("site-3", hello, at)


def test_replayed_or_stale_hello_is_refused(fed):
    at = utcnow()
    hello = _client(fed, "site-1").hello(at)
    fed.registration.on_hello("site-1", hello, at)
    with pytest.raises(StaleEvidence, match="replayed"):
        fed.registration.on_hello("site-1", hello, at)
    old = _client(fed, "site-1").hello(at - timedelta(minutes=10))
    with pytest.raises(StaleEvidence, match="too old"):
        fed.registration.on_hello("site-1", old, at)


def test_confirmation_must_answer_our_challenge_once(fed):
    at = utcnow()
    client = _client(fed, "site-1")
    reply = fed.registration.on_hello("site-1", client.hello(at), at)
    client.on_reply(reply, at)
    confirm = client.confirm(reply)
    fed.registration.on_confirm("site-1", confirm, at)
    with pytest.raises(StaleEvidence, match="unknown or already used"):
        fed.registration.on_confirm("site-1", confirm, at)
    forged = {"challenge": "00" * 32, "evidence": confirm["evidence"]}
    with pytest.raises(StaleEvidence):
        fed.registration.on_confirm("site-1", forged, at)


def test_client_refuses_a_server_that_sends_no_evidence(fed):
    at = utcnow()
    client = _client(fed, "site-1")
    client.hello(at)
    with pytest.raises(PolicyRejected, match="sent no attestation evidence"):
        client.on_reply({}, at)
    with pytest.raises(StaleEvidence, match="no registration challenge"):
        client.on_reply({}, at)


def test_client_refuses_a_server_with_bad_evidence(fed):
    at = utcnow()
    client = _client(fed, "site-1")
    client.hello(at)
    evidence = fed.sites["site-3"].agent.collect(b"x" * 32, "ctx")  # not bound to our challenge
    with pytest.raises(PolicyRejected, match="the server failed attestation"):
        client.on_reply({"evidence": evidence_to_wire(evidence)}, at)


@pytest.mark.parametrize("hello", [None, [], {"challenge": "zz"},
                                   {"challenge": "00" * 32, "time": "yesterday"}])
def test_malformed_hello(fed, hello):
    with pytest.raises(MalformedEvidence):
        fed.registration.on_hello("site-1", hello, utcnow())


def test_malformed_confirm(fed):
    with pytest.raises(MalformedEvidence):
        fed.registration.on_confirm("site-1", "nope", utcnow())
