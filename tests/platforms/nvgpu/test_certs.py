"""Device certificates: the pinned root, chain loading, FWID extensions, architecture names."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ccattest.errors import MalformedEvidence
from ccattest.platforms.nvgpu import certs
from ccattest.platforms.nvgpu.abi import parse_report
from ccattest.platforms.nvgpu.certs import (
    BLACKWELL_FWID_OID,
    HOPPER_FWID_OID,
    arch_from_name,
    certificate_fwid,
    common_name,
    load_chain,
    pinned_root,
)
from ccattest.testing.nvgpu import NvgpuFixture, der, dice_tcb_info, fwid_element, pem

from .conftest import ROOT_SAMPLE, SAMPLES, read

ROOT_SHA256 = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"


def test_pinned_root_is_nvidias(vectors: Path) -> None:
    root = pinned_root()
    assert root.fingerprint(hashes.SHA256()).hex() == ROOT_SHA256
    assert common_name(root) == "NVIDIA Device Identity CA"
    assert root == x509.load_pem_x509_certificate(read(vectors, ROOT_SAMPLE))


def test_packaged_root_is_not_a_copy_of_a_vector(vectors: Path) -> None:
    packaged = resources.files(certs.__package__).joinpath("roots", certs.ROOT_FILE).read_bytes()
    digest = hashlib.sha256(packaged).hexdigest()
    for path in (vectors / "gpu").rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() != digest, path
    readme = resources.files(certs.__package__).joinpath("roots", "README.md").read_text()
    assert ROOT_SHA256 in readme


def test_load_chain_rejections(hopper: NvgpuFixture) -> None:
    assert len(load_chain(hopper.chain())) == 5
    with pytest.raises(MalformedEvidence, match="not PEM"):
        load_chain(b"")
    with pytest.raises(MalformedEvidence, match="too long"):
        load_chain(pem(*[hopper.leaf] * 9))
    with pytest.raises(MalformedEvidence, match="does not parse"):
        load_chain(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(("name", "arch"), [
    ("GH100 A01 GSP FMC LF", "HOPPER"), ("NVIDIA GB100 Provisioner ICA 00000", "BLACKWELL"),
    ("GB202 A01 GSP BROM", "BLACKWELL"), ("NVIDIA Device Identity CA", None),
    ("XGH100", None),
])
def test_arch_from_name(name: str, arch: str | None) -> None:
    assert arch_from_name(name) == arch


@pytest.mark.parametrize(("chain", "report", "arch"), [
    ("nvtrust-lgv/samples/hopperCertChain.txt", "nvtrust-lgv/samples/hopperAttestationReport.txt",
     "HOPPER"),
    (SAMPLES + "blackwellCertChain.txt", SAMPLES + "blackwellAttestationReport.txt",
     "BLACKWELL"),
])
def test_vector_fwids_equal_the_reports(vectors: Path, chain: str, report: str,
                                        arch: str) -> None:
    leaf = load_chain(read(vectors, chain))[0]
    assert certificate_fwid(leaf) == (arch, parse_report(read(vectors, report)).fields.fwid)


def test_chain_without_fwid(vectors: Path) -> None:
    brom = load_chain(read(vectors, "nvtrust-lgv/samples/hopperCertChain.txt"))[1]
    assert certificate_fwid(brom) is None


def _with_extension(fixture: NvgpuFixture, oid: x509.ObjectIdentifier,
                    value: bytes) -> x509.Certificate:
    return fixture.issue_leaf(extensions=[x509.UnrecognizedExtension(oid, value)])


FWID = fwid_element(bytes(48))


@pytest.mark.parametrize(("oid", "value", "message"), [
    (HOPPER_FWID_OID, der(0x30, b""), "empty SEQUENCE"),
    (HOPPER_FWID_OID, der(0x30, der(0x02, b"\x01")), "does not end with an FWID"),
    (HOPPER_FWID_OID, der(0x31, FWID), "not the expected DER"),
    (HOPPER_FWID_OID, der(0x30, FWID) + b"\0", "not the expected DER"),
    (HOPPER_FWID_OID, b"\x30", "truncated DER"),
    (HOPPER_FWID_OID, b"\x30\x85\x01\x01\x01\x01\x01", "bad DER length"),
    (HOPPER_FWID_OID, b"\x30\x81\x05\x00", "truncated DER"),
    (HOPPER_FWID_OID, der(0x30, der(0x30, der(0x04, bytes(48)))), "hash OID and a 48-byte"),
    (HOPPER_FWID_OID, der(0x30, fwid_element(bytes(47))), "hash OID and a 48-byte"),
    (BLACKWELL_FWID_OID, der(0x30, der(0x80, b"NVIDIA")), "no fwids"),
    (BLACKWELL_FWID_OID, der(0x30, der(0xA6, b"")), "empty or not"),
    (BLACKWELL_FWID_OID, der(0x30, der(0xA6, der(0x04, b""))), "empty or not"),
])
def test_fwid_extension_rejections(hopper: NvgpuFixture, oid: x509.ObjectIdentifier,
                                   value: bytes, message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        certificate_fwid(_with_extension(hopper, oid, value))


def test_fwid_extensions_long_forms(hopper: NvgpuFixture) -> None:
    long_model = "GB100 " + "x" * 300  # two-byte DER lengths
    value = dice_tcb_info(b"\x07" * 48, long_model)
    leaf = _with_extension(hopper, BLACKWELL_FWID_OID, value)
    assert certificate_fwid(leaf) == ("BLACKWELL", b"\x07" * 48)


def test_common_name_absent(hopper: NvgpuFixture) -> None:
    builder = x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(
        hopper.root.subject)
    nameless = (builder.public_key(hopper.keys.leaf.public_key()).serial_number(1)
                .not_valid_before(hopper.now).not_valid_after(hopper.now)
                .sign(hopper.keys.root, hashes.SHA384()))
    assert common_name(nameless) == ""


def test_unparseable_extensions(hopper: NvgpuFixture) -> None:
    garbage = x509.UnrecognizedExtension(x509.oid.ExtensionOID.BASIC_CONSTRAINTS, b"\x05\0")
    leaf = hopper.issue_leaf(extensions=[garbage, hopper.fwid_extension()])
    with pytest.raises(MalformedEvidence, match="extensions do not parse"):
        certificate_fwid(leaf)
