"""Sealing keys bound into evidence, on the mesh core: every CC site's evidence commits to
its in-memory key at registration and in every round; a verdict holds the key its evidence
bound; only a trusted verdict's key is ever returned for sealing; rotation announces a new
key with the next evidence."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ccattest.mesh.wire import bundle_from_wire, bundle_to_wire
from ccattest.seal.envelope import SealContext, SealedPayloadInvalid, open_sealed, seal
from ccattest.seal.keys import SealingKeys, SuiteName
from ccattest.testing.federation import SERVER, SimulatedFederation
from ccattest.timeutil import utcnow


@pytest.fixture
def fed() -> SimulatedFederation:
    federation = SimulatedFederation.create(2, sealing=SuiteName.X25519, tampered=["site-2"])
    yield federation
    federation.close()


def _key(fed: SimulatedFederation, site: str):
    keys = fed.sites[site].agent.sealing
    assert keys is not None
    return keys.current(utcnow()).public


def test_registration_and_rounds_bind_each_site_key_and_trust_returns_it(fed) -> None:
    assert fed.register("site-1")[0]
    assert not fed.register("site-2")[0]  # tampered: refused, no key for it
    server = fed.sites[SERVER]
    assert server.trust.sealing_key("site-1", utcnow()) == _key(fed, "site-1")
    assert server.trust.sealing_key("site-2", utcnow()) is None
    fed.round()
    site_1 = fed.sites["site-1"]
    assert site_1.trust.sealing_key(SERVER, utcnow()) == _key(fed, SERVER)
    assert site_1.trust.sealing_key("site-2", utcnow()) is None  # judged, not trusted
    # What the server seals to site-1's attested key, site-1's process opens; nobody else.
    context = SealContext("job-1", "train", 1, SERVER, "site-1")
    sealed = seal(b"weights", server.trust.sealing_key("site-1", utcnow()), context)
    keys = site_1.agent.sealing
    assert open_sealed(sealed, keys.openers(utcnow()), context) == b"weights"
    with pytest.raises(SealedPayloadInvalid, match="for another key"):
        open_sealed(sealed, fed.sites[SERVER].agent.sealing.openers(utcnow()), context)


def test_a_key_swapped_in_transit_breaks_the_binding(fed) -> None:
    site = fed.sites["site-1"].agent
    nonce, context = b"n" * 32, "ccattest/round/x"
    evidence, key = site.collect_bound(nonce, context)
    other = SealingKeys(SuiteName.X25519, utcnow()).current(utcnow()).public
    bundle = bundle_to_wire(evidence, key)
    bundle["seal_key"] = other.to_wire()
    swapped, presented = bundle_from_wire(bundle)
    judge = fed.sites[SERVER].agent
    verdict = judge.judge("site-1", swapped, nonce=nonce, context=context, at=utcnow(),
                          seal_key=presented)
    assert not verdict.affirming and any("report_data" in f for f in verdict.failures())
    honest = judge.judge("site-1", evidence, nonce=nonce, context=context, at=utcnow(),
                         seal_key=key)
    assert honest.affirming and honest.seal_key == key
    stripped = judge.judge("site-1", evidence, nonce=nonce, context=context, at=utcnow())
    assert not stripped.affirming  # the key cannot be dropped either


def test_a_verdict_entry_records_the_attested_key(tmp_path) -> None:
    fed = SimulatedFederation.create(1, sealing=SuiteName.MLKEM768_X25519,
                                     record_dir=tmp_path)
    try:
        assert fed.register("site-1")[0]
        fed.flush()
        journal = fed.sites[SERVER].record.journal
        assert journal.log is not None
        from ccattest.record.entry import decode
        entries = [decode(e.body) for e in journal.log.store.entries(kind="verdict")]
        keys = [e.data.get("seal_key") for e in entries if e.data["peer"] == "site-1"]
        assert keys[-1] == {"suite": "mlkem768-x25519", "id": _key(fed, "site-1").key_id}
    finally:
        fed.close()


def test_rotation_binds_a_new_key_and_drops_the_old_after_its_grace() -> None:
    start = utcnow()
    keys = SealingKeys(SuiteName.X25519, start, rotate=timedelta(hours=1),
                       grace=timedelta(minutes=5))
    first = keys.current(start)
    assert keys.current(start + timedelta(minutes=59)) is first
    second = keys.current(start + timedelta(hours=1))
    assert second is not first
    later = start + timedelta(hours=1, minutes=4)
    assert set(keys.openers(later)) == {first.public.key_id, second.public.key_id}
    assert set(keys.openers(later + timedelta(minutes=2))) == {second.public.key_id}
    assert set(keys.openers(later + timedelta(minutes=3))) == {second.public.key_id}
    never = SealingKeys(SuiteName.X25519, start)
    assert never.current(start + timedelta(days=365)) is never.current(start)


def test_a_malformed_bundle_is_refused() -> None:
    from ccattest.errors import MalformedEvidence

    for data in ({"envelopes": []}, {"envelopes": [], "seal_key": {}, "x": 1},
                 {"envelopes": [], "seal_key": {"suite": "x25519", "key": "00"}}):
        with pytest.raises(MalformedEvidence):
            bundle_from_wire(data)
    assert bundle_from_wire([]) == ([], None)
    assert bundle_to_wire([], None) == []
