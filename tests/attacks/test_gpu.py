"""Attacks on NVIDIA GPU evidence and its reference values (RIMs)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccattest.errors import MalformedEvidence, VerificationFailed
from ccattest.platforms.nvgpu.rim import parse_rim, verify_rim
from ccattest.testing.nvidia_server import RimAuthority, RimRecord, swid_xml

from .catalog import attack

T0 = datetime(2025, 1, 1, tzinfo=UTC)
AT = T0 + timedelta(days=30)
GOLDEN = hashlib.sha384(b"driver measurement 7").digest()


@pytest.fixture(scope="module")
def authority() -> RimAuthority:
    return RimAuthority(not_before=T0, not_after=T0 + timedelta(days=365))


def _driver_rim(value: bytes = GOLDEN) -> bytes:
    return swid_xml(colloquial_version="550.90.07", records=[RimRecord(7, True, (value,))])


@attack("GPU report with a forged FWID",
        does="signs a GPU report whose firmware ID (in the opaque data) differs from the FWID "
             "the device certificate binds, e.g. to hide modified firmware",
        stopped_by="the FWID in the report must equal the one in the leaf certificate's DICE "
                   "extension")
def test_forged_fwid(hopper):
    case = {c.name: c for c in hopper.broken_cases()}["fwid_differs"]
    with pytest.raises(VerificationFailed, match="FWID"):
        hopper.verifier().verify(case.evidence, report_data=case.report_data, at=case.at)


@attack("GPU nonce mismatch",
        does="presents a genuine GPU report that answers another (older) nonce",
        stopped_by="the SPDM request nonce in the signed report must equal the 32-byte nonce "
                   "bound to this challenge")
def test_gpu_nonce_mismatch(hopper):
    evidence, nonce = hopper.evidence()
    hopper.verifier().verify(evidence, report_data=nonce, at=hopper.now)
    with pytest.raises(VerificationFailed, match="nonce"):
        hopper.verifier().verify(evidence, report_data=bytes(32), at=hopper.now)


@attack("RIM signed by another key",
        does="serves a driver RIM with the attacker's golden values, signed with its own key "
             "(with or without the genuine certificate chain in KeyInfo)",
        stopped_by="XML-DSig over the RIM verifies only with the signing certificate that "
                   "chains to the pinned RIM root")
def test_rim_signature_tampering(authority):
    genuine = authority.sign(_driver_rim())
    assert verify_rim(genuine, at=AT, root=authority.root.cert).verified
    rogue = RimAuthority(not_before=T0, not_after=T0 + timedelta(days=365))
    forged = authority.sign(_driver_rim(bytes(48)), key=rogue.signer.key)
    with pytest.raises(VerificationFailed, match="XML signature does not verify"):
        verify_rim(forged, at=AT, root=authority.root.cert)
    with pytest.raises(VerificationFailed, match="does not reach the trusted root"):
        verify_rim(rogue.sign(_driver_rim(bytes(48))), at=AT, root=authority.root.cert)


@attack("RIM measurement tampering",
        does="edits a golden measurement (or its active flag) inside a genuinely signed RIM "
             "so that modified firmware matches",
        stopped_by="the enveloped XML signature covers every measurement: 'XML signature does "
                   "not verify'")
def test_rim_measurement_tampering(authority):
    signed = authority.sign(_driver_rim())
    for old, new in ((GOLDEN.hex().encode(), bytes(48).hex().encode()),
                     (b'active="True"', b'active="False"')):
        tampered = signed.replace(old, new, 1)
        assert tampered != signed
        with pytest.raises(VerificationFailed, match="XML signature does not verify"):
            verify_rim(tampered, at=AT, root=authority.root.cert)


@attack("XML RIM with entity expansion (billion laughs)",
        does="serves a RIM with a DTD whose nested entities expand to gigabytes",
        stopped_by="entities are never resolved: libxml2's amplification guard refuses the "
                   "document while parsing, and any DTD is refused after it (MalformedEvidence)")
def test_billion_laughs():
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{n} "{("&l" + str(n - 1) + ";") * 10}">' for n in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE a [{entities}]><a>&l9;</a>'.encode()
    with pytest.raises(MalformedEvidence, match=r"amplification|DTD"):
        parse_rim(bomb)
    small = b'<!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;">]><a>&l2;</a>'
    with pytest.raises(MalformedEvidence, match="RIM has a DTD"):
        parse_rim(small)


@attack("XML RIM with an external entity",
        does="serves a RIM whose DTD declares an external entity (a local file or URL) to read "
             "the verifier's files or reach its network",
        stopped_by="DTDs are refused, entities are not resolved and the parser has no network "
                   "access: MalformedEvidence 'RIM has a DTD', nothing is read")
def test_external_entity(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("verifier secret")
    for target in (f"file://{secret}", "http://127.0.0.1:9/x"):
        xxe = f'<!DOCTYPE a [<!ENTITY x SYSTEM "{target}">]><a>&x;</a>'.encode()
        with pytest.raises(MalformedEvidence, match="DTD") as caught:
            parse_rim(xxe)
        assert "verifier secret" not in str(caught.value)


@attack("GPU evidence paired with another machine's CPU evidence",
        does="a site presents its CPU TEE evidence with a GPU report collected for another "
             "challenge (e.g. another machine's GPU)",
        stopped_by="the GPU's 32-byte nonce and the CPU's report_data derive from the same "
                   "bind(nonce, site, context); a GPU report for any other challenge fails "
                   "its nonce check")
def test_gpu_from_another_machine(hopper):
    from ccattest.evidence import bind

    nonce, context = b"c" * 32, "ccattest/round/pair"
    mine = bind(nonce, "site-1", context, size=32)
    other_machine, _ = hopper.evidence(bind(nonce, "site-9", context, size=32))
    with pytest.raises(VerificationFailed, match="nonce"):
        hopper.verifier().verify(other_machine, report_data=mine, at=hopper.now)
