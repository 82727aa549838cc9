"""NVIDIA RIMs: the real samples (vectors/MANIFEST.md, "NVIDIA GPU") verify at their pinned
times and compare with the real reports' measurements as MANIFEST records; tampered,
unsigned, expired and wrongly rooted RIMs are refused; synthetic RIMs signed by a test PKI
(ccattest.testing.nvidia_server.RimAuthority) reach every rule of the comparison.

Sources: NVIDIA/nvtrust (BSD-3-Clause), NVIDIA/attestation-sdk and
confidential-containers/trustee (Apache-2.0).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signxml import CanonicalizationMethod, SignatureMethod

from ccattest.errors import CCAttestError, ConfigError, MalformedEvidence, VerificationFailed
from ccattest.platforms.nvgpu import rim as rim_module
from ccattest.platforms.nvgpu.rim import (
    NVDEC0_INDEX,
    Measurement,
    Rim,
    RimIds,
    check_rim_id,
    compare,
    embedded_certificates,
    golden_measurements,
    id_kind,
    parse_rim,
    pinned_rim_root,
    rim_ids,
    verify_chain,
    verify_rim,
)
from ccattest.testing.nvidia_server import RimAuthority, RimRecord, issue, swid_xml

LGV = "gpu/nvtrust-lgv/samples/"
SDK = "gpu/nvattest-sdk/nv-attestation-sdk-cpp/unit-tests/testdata/"
TRUSTEE = "gpu/trustee/"
RIM_ROOT = "gpu/nvtrust-lgv/certs/verifier_RIM_root.pem"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
AT = T0 + timedelta(days=30)
SHA = {n: hashlib.sha384(bytes([n])).digest() for n in range(256)}


def pinned(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Every RIM MANIFEST lists, with the time it pins and whether it verifies there.
GOOD = [
    (SDK + "NV_GPU_DRIVER_GH100_550.144.03.xml", "2025-01-14 16:56:50"),
    (SDK + "sample_rims/NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml",
     "2023-12-28 23:58:03"),
    (SDK + "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml", "2026-06-04 22:02:51"),
    (LGV + "1010_0200_882_96005E0001_PROD.swidtag", "2023-07-08 09:30:33"),
    (LGV + "1010_0200_882_96005E0001_test_no_gpu.swidtag", "2023-07-08 09:38:54"),
    (LGV + "1010_0200_882_96005E0003_PROD.swidtag", "2023-09-21 08:28:52"),
    (LGV + "1010_0200_882_960074001A_PROD.swidtag", "2023-09-21 08:35:22"),
    (LGV + "1010_0200_882_960074001C_PROD.swidtag", "2023-09-21 08:37:29"),
    (LGV + "1010_0205_862_96005E0002_PROD.swidtag", "2023-07-13 11:26:51"),
    (LGV + "1010_0205_862_96005E0004_PROD.swidtag", "2023-09-21 08:39:09"),
    (LGV + "1010_0205_862_960074001F_PROD.swidtag", "2023-09-21 08:45:21"),
    (LGV + "1010_0205_862_9600740020_PROD.swidtag", "2023-09-21 08:46:45"),
    (LGV + "1010_0210_886_9600740011_PROD.swidtag", "2023-09-21 08:48:06"),
    (LGV + "1010_0215_866_9600740010_PROD.swidtag", "2023-09-21 08:49:24"),
    (LGV + "Driver_RIM_test_no_gpu.swidtag", "2023-07-12 06:10:12"),
    (LGV + "g520_0200_885_9600740001_PROD.swidtag", "2023-09-09 09:52:07"),
    (LGV + "g520_0200_885_960074000D_PROD.swidtag", "2023-09-09 09:55:37"),
    (LGV + "g520_0202_885_96006D0008_PROD.swidtag", "2023-09-09 09:56:56"),
    (LGV + "g520_0202_885_96006D0027_PROD.swidtag", "2023-09-09 09:58:57"),
    (LGV + "g520_0202_885_9600740014_PROD.swidtag", "2023-09-09 10:01:06"),
    (LGV + "g520_0202_885_9600740018_PROD.swidtag", "2023-09-09 10:03:48"),
    (LGV + "g520_0205_865_9600740006_PROD.swidtag", "2023-09-09 10:05:03"),
    (LGV + "g520_0205_865_960074000F_PROD.swidtag", "2023-09-09 10:06:05"),
    (LGV + "g520_0207_865_9600740015_PROD.swidtag", "2023-09-09 10:07:08"),
    (LGV + "g520_0207_865_9600740019_PROD.swidtag", "2023-09-09 10:08:26"),
    (LGV + "g520_0213_881_96006D0007_PROD.swidtag", "2023-09-09 10:09:47"),
    (LGV + "g520_0213_881_96006D0026_PROD.swidtag", "2023-09-09 10:11:53"),
    (LGV + "g520_0228_889_96006D000A_PROD.swidtag", "2023-09-09 10:13:05"),
    (LGV + "g520_0228_889_96006D0029_PROD.swidtag", "2023-09-09 10:14:49"),
    (TRUSTEE + "rvps/src/extractors/swid/test-rim.b64", "2023-12-20 08:02:39"),
]
BAD = [  # MANIFEST: NEGATIVE
    (SDK + "incorrect_cert_chain_driver_rim.xml", "2025-02-16 04:53:44", "chain"),
    (SDK + "incorrect_signature_driver_rim.xml", "2025-01-14 16:56:50", "signature"),
    (SDK + "sample_rims/NV_GPU_DRIVER_GH100_535.86.09_measurement_mismatch.xml",
     "2025-06-08 06:41:05", "signature"),
    (SDK + "sample_rims/NV_GPU_DRIVER_GH100_570.124.03_expired.xml", "2025-01-01 12:00:00",
     "signature"),
    (SDK + "sample_rims/NV_SWITCH_BIOS_5612_0002_890_9610550001_invalid_signature.xml",
     "2024-06-04 17:59:06", "signature"),
    (SDK + "sample_rims/NV_SWITCH_BIOS_5612_0002_890_9610550001_measurement_mismatch.xml",
     "2023-12-28 23:58:03", "signature"),
]


def read_rim(vectors: Path, relative: str) -> bytes:
    data = (vectors / relative).read_bytes()
    return base64.b64decode(data) if relative.endswith(".b64") else data


def manifest_row(vectors: Path, relative: str) -> str:
    """MANIFEST's row for a gpu/ file."""
    name = relative.removeprefix("gpu/")
    for line in (vectors / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3 and cells[1] == name:
            return line
    raise AssertionError(f"no MANIFEST row for {relative}")


def manifest_cell(vectors: Path, relative: str) -> str:
    """The last column of MANIFEST's row: whether it verifies, at which pinned time."""
    return manifest_row(vectors, relative).split("|")[-2].strip()


# --- a tiny SPDM reader for the tests (FORMATS.md, "NVIDIA GPU") --------------------------------

def spdm(vectors: Path, relative: str) -> tuple[dict[int, bytes], dict[int, bytes]]:
    """({block index: value}, {opaque type: value}) of a hex NVML attestation report."""
    raw = bytes.fromhex((vectors / relative).read_text().strip())
    length = int.from_bytes(raw[42:45], "little")
    blocks, at = {}, 45
    while at < 45 + length:
        index, size = raw[at], int.from_bytes(raw[at + 2:at + 4], "little")
        value_size = int.from_bytes(raw[at + 5:at + 7], "little")
        blocks[index] = raw[at + 7:at + 7 + value_size]
        at += 4 + size
    at += 32
    end = at + 2 + int.from_bytes(raw[at:at + 2], "little")
    opaque, at = {}, at + 2
    while at + 4 <= end:
        kind, size = struct.unpack_from("<HH", raw, at)
        opaque[kind] = raw[at + 4:at + 4 + size]
        at += 4 + size
    return blocks, opaque


def text(value: bytes) -> str:
    return value.split(b"\x00")[0].decode()


def vbios_text(value: bytes) -> str:
    word = f"{int.from_bytes(value[:4], 'little'):08X}"
    return ".".join([word[0:2], word[2:4], word[4:6], word[6:8], f"{value[4]:02X}"])


def report_claims(vectors: Path, relative: str) -> dict[str, object]:
    blocks, opaque = spdm(vectors, relative)
    return {"blocks": blocks, "driver": text(opaque[3]), "vbios": vbios_text(opaque[6]),
            "nvdec0": opaque[11] == b"\xaa", "chip_sku": text(opaque[15]),
            "project": text(opaque[17]), "project_sku": text(opaque[18])}


# --- the real samples -----------------------------------------------------------------------------

@pytest.mark.vectors
@pytest.mark.parametrize(("relative", "when"), GOOD, ids=[Path(p).name for p, _ in GOOD])
def test_real_rims_verify_at_the_pinned_time(vectors: Path, relative: str, when: str) -> None:
    assert f"OK (OCSP stubbed) at pinned {when}" in manifest_cell(vectors, relative)
    rim = verify_rim(read_rim(vectors, relative), at=pinned(when))
    assert rim.verified and rim.chain[-1] == pinned_rim_root()
    assert rim.chain[0].not_valid_before_utc <= pinned(when) <= rim.not_after
    assert rim.colloquial_version and rim.active
    assert all(len(value) == 48 for m in rim.measurements for value in m.alternatives)


@pytest.mark.vectors
@pytest.mark.parametrize(("relative", "when", "what"), BAD, ids=[Path(p).name for p, *_ in BAD])
def test_negative_rims_are_refused(vectors: Path, relative: str, when: str, what: str) -> None:
    assert "NEGATIVE" in manifest_cell(vectors, relative)
    assert when in manifest_cell(vectors, relative)
    with pytest.raises(VerificationFailed) as caught:
        verify_rim(read_rim(vectors, relative), at=pinned(when))
    assert what in caught.value.message


@pytest.mark.vectors
def test_real_rim_contents(vectors: Path) -> None:
    driver = verify_rim(read_rim(vectors, LGV + "Driver_RIM_test_no_gpu.swidtag"),
                        at=pinned("2023-07-12 06:10:12"), expected_id="NV_GPU_DRIVER_GH100_545.00")
    assert (driver.kind, driver.colloquial_version, driver.product) == ("driver", "545.00", "GH100")
    assert driver.id == "NV_GPU_DRIVER_GH100_545.00" and driver.version == "1.0"
    assert sorted(driver.active) == [7, *range(21, 41)]
    assert len(driver.active[35].alternatives) == 2
    vbios = verify_rim(read_rim(vectors, LGV + "1010_0200_882_96005E0001_PROD.swidtag"),
                       at=pinned("2023-07-08 09:30:33"))
    assert vbios.kind == "vbios" and vbios.id == vbios.tag_id
    assert sorted(vbios.active) == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    assert len(vbios.active[12].alternatives) == 4
    assert [_cn(cert) for cert in vbios.chain] == [
        "HCC RIM L4 Signer", "NVIDIA Reference Value L3 GH100 001",
        "NVIDIA Reference Value GH100 CA", "NVIDIA CoRIM signing Root CA"]


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


@pytest.mark.vectors
def test_trustee_rim_is_a_later_74001c_with_another_index_9(vectors: Path) -> None:
    """trustee's RIM is NVIDIA's 96.00.74.00.1C RIM re-signed in December 2023: same tag,
    same records but index 9, the index where the bundled nvtrust RIMs mismatch real reports."""
    trustee = verify_rim(read_rim(vectors, TRUSTEE + "rvps/src/extractors/swid/test-rim.b64"),
                         at=pinned("2023-12-20 08:02:39"))
    nvtrust = verify_rim(read_rim(vectors, LGV + "1010_0200_882_960074001C_PROD.swidtag"),
                         at=pinned("2023-09-21 08:37:29"))
    assert (trustee.tag_id, trustee.colloquial_version) == (nvtrust.tag_id, "96.00.74.00.1C")
    differing = [index for index in nvtrust.active
                 if trustee.active[index] != nvtrust.active[index]]
    assert differing == [9] and trustee.active.keys() == nvtrust.active.keys()


@pytest.mark.vectors
def test_expired_and_not_yet_valid_signers_are_refused(vectors: Path) -> None:
    data = read_rim(vectors, LGV + "1010_0200_882_96005E0001_PROD.swidtag")
    for when in ("2025-06-23 00:00:00", "2026-11-26 00:00:00", "2023-06-01 00:00:00"):
        with pytest.raises(VerificationFailed, match="is not valid at") as caught:
            verify_rim(data, at=pinned(when))
        assert "1-2 years" in (caught.value.hint or "")


@pytest.mark.vectors
def test_other_roots_are_refused(vectors: Path) -> None:
    data = read_rim(vectors, LGV + "1010_0200_882_96005E0001_PROD.swidtag")
    when = pinned("2023-07-08 09:30:33")
    for relative in ("gpu/nvtrust-lgv/certs/verifier_device_root.pem",
                     SDK + "incorrect_rim_root.crt"):
        other = x509.load_pem_x509_certificate((vectors / relative).read_bytes())
        with pytest.raises(VerificationFailed, match="does not reach the trusted root"):
            verify_rim(data, at=when, root=other)
    assert verify_rim(data, at=when, root=pinned_rim_root()).verified


@pytest.mark.vectors
def test_pinned_root_is_nvidias_and_stored_re_encoded(vectors: Path) -> None:
    theirs = x509.load_pem_x509_certificate((vectors / RIM_ROOT).read_bytes())
    assert pinned_rim_root() == theirs
    assert pinned_rim_root().fingerprint(hashes.SHA256()).hex() == (
        "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1")
    ours = (Path(rim_module.__file__).parent / "rim_roots" / rim_module.ROOT_FILE).read_bytes()
    digest = hashlib.sha256(ours).digest()
    assert all(hashlib.sha256(path.read_bytes()).digest() != digest
               for path in vectors.rglob("*") if path.is_file())


@pytest.mark.vectors
@pytest.mark.parametrize("mutate", ["hash", "version", "index", "activate", "signature_value"])
def test_tampered_real_rim_is_refused(vectors: Path, mutate: str) -> None:
    data = read_rim(vectors, LGV + "1010_0200_882_96005E0001_PROD.swidtag")
    tampered = {
        "hash": data.replace(b'Hash0="c3f65ef7', b'Hash0="c3f65ef8', 1),
        "version": data.replace(b'colloquialVersion="96.00.5E.00.01"',
                                b'colloquialVersion="96.00.5E.00.02"'),
        "index": data.replace(b'index="9"', b'index="99"', 1),
        "activate": data.replace(b'index="7" active="False"', b'index="7" active="True"'),
        "signature_value": re.sub(rb"<ds:SignatureValue>(.)", lambda m: b"<ds:SignatureValue>" + (
            b"A" if m.group(1) != b"A" else b"B"), data, count=1),
    }[mutate]
    assert tampered != data
    with pytest.raises(VerificationFailed, match="XML signature does not verify"):
        verify_rim(tampered, at=pinned("2023-07-08 09:30:33"))


@pytest.mark.vectors
def test_unsigned_real_rim_is_refused(vectors: Path) -> None:
    data = read_rim(vectors, LGV + "1010_0200_882_96005E0001_PROD.swidtag")
    unsigned = re.sub(rb"<ds:Signature .*</ds:Signature>", b"", data, flags=re.S)
    assert parse_rim(unsigned).active == parse_rim(data).active
    with pytest.raises(VerificationFailed, match="not signed"):
        verify_rim(unsigned, at=pinned("2023-07-08 09:30:33"))


@pytest.mark.vectors
def test_broken_certificate_in_keyinfo_is_refused(vectors: Path) -> None:
    data = read_rim(vectors, LGV + "1010_0200_882_96005E0001_PROD.swidtag")
    broken = data.replace(b"<ds:X509Certificate>MII", b"<ds:X509Certificate>!II", 1)
    with pytest.raises(MalformedEvidence, match="does not parse"):
        verify_rim(broken, at=pinned("2023-07-08 09:30:33"))


# --- measurements of the real reports (MANIFEST: which RIM goes with which report) ---------------

@pytest.mark.vectors
def test_2023_report_matches_its_driver_and_vbios_rims(vectors: Path) -> None:
    claims = report_claims(vectors, "gpu/nvtrust-lgv-2023/samples/attestationReport.txt")
    assert (claims["driver"], claims["vbios"], claims["nvdec0"]) == ("545.00", "96.00.5E.00.01",
                                                                     False)
    ids = rim_ids(driver_version=claims["driver"], vbios_version=claims["vbios"],
                  project=claims["project"], project_sku=claims["project_sku"],
                  chip_sku=claims["chip_sku"])
    assert ids == RimIds("NV_GPU_DRIVER_GH100_545.00", "NV_GPU_VBIOS_1010_0200_882_96005E0001")
    driver = verify_rim(read_rim(vectors, LGV + "Driver_RIM_test_no_gpu.swidtag"),
                        at=pinned("2023-07-12 06:10:12"), expected_id=ids.driver)
    vbios = verify_rim(read_rim(vectors, LGV + "1010_0200_882_96005E0001_test_no_gpu.swidtag"),
                       at=pinned("2023-07-08 09:38:54"), expected_id=ids.vbios)
    result = compare(driver, vbios, claims["blocks"], nvdec0_enabled=False,
                     driver_version=claims["driver"], vbios_version=claims["vbios"])
    assert result["matched"] is True
    assert (result["mismatched"], result["missing"], result["skipped"]) == ([], [], [35])
    assert result["compared"] == 21 + 12 - 1
    assert result["rim"]["driver"] == {
        "id": ids.driver, "tag_id": driver.tag_id, "version": "545.00", "signature": "verified",
        "chain": "verified", "version_match": True,
        "signer_not_after": driver.not_after.isoformat()}
    assert result["rim"]["vbios"]["version_match"] is True
    with_nvdec = compare(driver, vbios, claims["blocks"], nvdec0_enabled=True,
                         driver_version="545.00", vbios_version="96.00.5E.00.01")
    assert with_nvdec["matched"] and with_nvdec["skipped"] == []


@pytest.mark.vectors
def test_2025_sample_matches_the_prod_vbios_rim_and_not_the_negative(vectors: Path) -> None:
    report = SDK + "sample_attestation_data/gpu/hopperAttestationReport.txt"
    claims = report_claims(vectors, report)
    assert (claims["driver"], claims["vbios"]) == ("535.86.09", "96.00.5E.00.01")
    prod = verify_rim(read_rim(vectors, LGV + "1010_0200_882_96005E0001_PROD.swidtag"),
                      at=pinned("2023-07-08 09:30:33"))
    result = compare(None, prod, claims["blocks"], nvdec0_enabled=claims["nvdec0"],
                     driver_version=claims["driver"], vbios_version=claims["vbios"])
    assert result["matched"] and result["compared"] == 12 and result["rim"]["driver"] is None
    negative = verify_rim(read_rim(vectors, SDK + "sample_rims/NV_GPU_VBIOS_1010_0200_882_"
                                   "96005E0001_measurement_mismatch.xml"),
                          at=pinned("2023-12-28 23:58:03"))
    result = compare(None, negative, claims["blocks"], nvdec0_enabled=False,
                     driver_version=claims["driver"], vbios_version=claims["vbios"])
    assert (result["matched"], result["mismatched"]) == (False, [9])
    driver = parse_rim(read_rim(vectors, SDK + "sample_rims/NV_GPU_DRIVER_GH100_535.86.09_"
                                "measurement_mismatch.xml"))
    result = compare(driver, prod, claims["blocks"], nvdec0_enabled=False, allow_unverified=True,
                     driver_version=claims["driver"], vbios_version=claims["vbios"])
    assert not result["matched"] and result["rim"]["driver"]["signature"] == "unverified"
    assert 7 in result["mismatched"] and result["rim"]["driver"]["version_match"] is True


@pytest.mark.vectors
@pytest.mark.parametrize(("report", "rim", "when", "rim_id"), [
    (TRUSTEE + "deps/verifier/test_data/nvidia/hopper_coco_report1.txt",
     LGV + "1010_0200_882_960074001A_PROD.swidtag", "2023-09-21 08:35:22",
     "NV_GPU_VBIOS_1010_0200_882_960074001A"),
    (SDK + "hopperAttestationReport.txt", LGV + "1010_0205_862_9600740020_PROD.swidtag",
     "2023-09-21 08:46:45", "NV_GPU_VBIOS_1010_0205_862_9600740020"),
])
def test_bundled_vbios_rims_mismatch_at_index_9(vectors: Path, report: str, rim: str, when: str,
                                                 rim_id: str) -> None:
    assert "mismatches at RIM idx 9" in manifest_row(vectors, report)
    claims = report_claims(vectors, report)
    ids = rim_ids(driver_version=claims["driver"], vbios_version=claims["vbios"],
                  project=claims["project"], project_sku=claims["project_sku"],
                  chip_sku=claims["chip_sku"])
    assert ids.vbios == rim_id
    vbios = verify_rim(read_rim(vectors, rim), at=pinned(when), expected_id=ids.vbios)
    result = compare(None, vbios, claims["blocks"], nvdec0_enabled=claims["nvdec0"],
                     driver_version=claims["driver"], vbios_version=claims["vbios"])
    assert (result["matched"], result["mismatched"], result["missing"]) == (False, [9], [])
    assert result["rim"]["vbios"]["version_match"] is True


@pytest.mark.vectors
def test_manifest_names_the_index_9_mismatches(vectors: Path) -> None:
    rows = (vectors / "MANIFEST.md").read_text(encoding="utf-8")
    assert rows.count("mismatches at RIM idx 9") == 2


@pytest.mark.vectors
def test_rim_ids_of_the_blackwell_report(vectors: Path) -> None:
    report = SDK + "sample_attestation_data/gpu/blackwellAttestationReport.txt"
    claims = report_claims(vectors, report)
    ids = rim_ids(driver_version=claims["driver"], vbios_version=claims["vbios"],
                  project=claims["project"], project_sku=claims["project_sku"],
                  chip_sku=claims["chip_sku"], arch="blackwell")
    assert ids == RimIds("NV_GPU_CC_DRIVER_GB100_575.32", "NV_GPU_VBIOS_G525_0220_886_970088000F")


# --- synthetic RIMs: signatures and chains --------------------------------------------------------

@pytest.fixture(scope="module")
def authority() -> RimAuthority:
    return RimAuthority(not_before=T0, not_after=T0 + timedelta(days=365))


def driver_xml(version: str = "550.90.07", **extra: RimRecord) -> bytes:
    records = [RimRecord(7, True, (SHA[7],)), RimRecord(21, True, (SHA[21], SHA[121])),
               RimRecord(NVDEC0_INDEX, True, (SHA[35],)), RimRecord(40, False, (SHA[40],))]
    return swid_xml(colloquial_version=version, records=[*records, *extra.values()])


def vbios_xml(version: str = "96.00.9F.00.01", records: list[RimRecord] | None = None) -> bytes:
    default = [RimRecord(0, True, (SHA[0],)), RimRecord(1, True, (SHA[1],)),
               RimRecord(7, False, (SHA[77],))]
    return swid_xml(colloquial_version=version, records=default if records is None else records)


def blocks_for(*indices: int, value: dict[int, bytes] | None = None) -> dict[int, bytes]:
    """SPDM blocks (from 1) carrying the golden value of each RIM index."""
    return {index + 1: (value or {}).get(index, SHA[index]) for index in indices}


def test_synthetic_rims_verify_and_compare(authority: RimAuthority) -> None:
    driver = verify_rim(authority.sign(driver_xml()), at=AT, root=authority.root.cert,
                        expected_id="NV_GPU_DRIVER_GH100_550.90.07")
    vbios = verify_rim(authority.sign(vbios_xml()), at=AT, root=authority.root.cert,
                       expected_id="NV_GPU_VBIOS_1010_0200_882_96009F0001")
    assert driver.kind == "driver" and vbios.kind == "vbios"
    assert driver.chain == tuple(authority.chain) and driver.not_after == T0 + timedelta(days=365)
    blocks = blocks_for(0, 1, 7, 21, 35, value={21: SHA[121]})
    result = compare(driver, vbios, blocks, nvdec0_enabled=True, driver_version="550.90.07",
                     vbios_version="96.00.9f.00.01")
    assert result["matched"] and result["compared"] == 5 and result["skipped"] == []
    assert result["rim"]["vbios"]["version_match"] is True


def test_validity_names_every_certificate_of_the_verified_chain(authority: RimAuthority
                                                                ) -> None:
    driver = verify_rim(authority.sign(driver_xml()), at=AT, root=authority.root.cert)
    vbios = verify_rim(authority.sign(vbios_xml()), at=AT, root=authority.root.cert)
    ends = [cert.not_valid_after_utc for cert in authority.chain]
    assert driver.validity == (
        ("driver RIM signing certificate notAfter", ends[0]),
        ("driver RIM chain: Test Reference Value CA notAfter", ends[1]),
        ("driver RIM chain: Test CoRIM signing Root CA notAfter", ends[2]))
    assert vbios.validity[0][0] == "VBIOS RIM signing certificate notAfter"
    assert parse_rim(driver_xml()).validity == ()  # parsed, not verified: nothing rested on it


def test_index_i_compares_with_block_i_plus_one(authority: RimAuthority) -> None:
    vbios = verify_rim(authority.sign(vbios_xml()), at=AT, root=authority.root.cert)
    shifted = {index: SHA[index] for index in (0, 1)}  # block i carrying RIM index i: wrong
    result = compare(None, vbios, shifted, nvdec0_enabled=True, driver_version="",
                     vbios_version="96.00.9F.00.01")
    assert result["mismatched"] == [0] and result["missing"] == [1] and not result["matched"]


def test_nvdec0_index_is_skipped_only_when_disabled(authority: RimAuthority) -> None:
    driver = verify_rim(authority.sign(driver_xml()), at=AT, root=authority.root.cert)
    blocks = blocks_for(7, 21, value={})
    blocks[NVDEC0_INDEX + 1] = b"\x00" * 48
    enabled = compare(driver, None, blocks, nvdec0_enabled=True, driver_version="550.90.07",
                      vbios_version="")
    assert enabled["mismatched"] == [35] and not enabled["matched"]
    disabled = compare(driver, None, blocks, nvdec0_enabled=False, driver_version="550.90.07",
                       vbios_version="")
    assert disabled["matched"] and disabled["skipped"] == [35] and disabled["compared"] == 2


def test_overlapping_active_indices_are_refused(authority: RimAuthority) -> None:
    driver = verify_rim(authority.sign(driver_xml()), at=AT, root=authority.root.cert)
    overlapping = vbios_xml(records=[RimRecord(0, True, (SHA[0],)), RimRecord(21, True, (SHA[1],))])
    vbios = verify_rim(authority.sign(overlapping), at=AT, root=authority.root.cert)
    with pytest.raises(VerificationFailed, match="same measurements") as caught:
        compare(driver, vbios, {}, nvdec0_enabled=True, driver_version="", vbios_version="")
    assert caught.value.found == [21]
    inactive_overlap = vbios_xml()  # index 7 inactive in the VBIOS RIM, active in the driver's
    vbios = verify_rim(authority.sign(inactive_overlap), at=AT, root=authority.root.cert)
    assert sorted(golden_measurements(driver, vbios)) == [0, 1, 7, 21, 35]


def test_missing_blocks_version_mismatch_and_no_rims(authority: RimAuthority) -> None:
    driver = verify_rim(authority.sign(driver_xml()), at=AT, root=authority.root.cert)
    result = compare(driver, None, {8: SHA[7]}, nvdec0_enabled=True, driver_version="550.90.08",
                     vbios_version="")
    assert result["missing"] == [21, 35] and not result["matched"]
    assert result["rim"]["driver"]["version_match"] is False
    nothing = compare(None, None, {1: b"x"}, nvdec0_enabled=True, driver_version="",
                      vbios_version="")
    assert nothing["matched"] is False and nothing["compared"] == 0


def test_compare_refuses_unverified_wrong_kind_and_bad_input(authority: RimAuthority) -> None:
    parsed = parse_rim(driver_xml())
    with pytest.raises(VerificationFailed, match="not verified"):
        compare(parsed, None, {}, nvdec0_enabled=True, driver_version="", vbios_version="")
    verified = verify_rim(authority.sign(driver_xml()), at=AT, root=authority.root.cert)
    with pytest.raises(VerificationFailed, match="is a driver RIM"):
        compare(None, verified, {}, nvdec0_enabled=True, driver_version="", vbios_version="")
    with pytest.raises(ConfigError, match="must be a Rim"):
        compare("rim", None, {}, nvdec0_enabled=True,  # type: ignore[arg-type]
                driver_version="", vbios_version="")
    with pytest.raises(ConfigError, match="must be bytes"):
        compare(verified, None, {8: "ab"}, nvdec0_enabled=True,  # type: ignore[dict-item]
                driver_version="", vbios_version="")
    with pytest.raises(ConfigError, match="must be a string"):
        compare(verified, None, {}, nvdec0_enabled=True,
                driver_version=None, vbios_version="")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must be a mapping"):
        compare(verified, None, [SHA[7]], nvdec0_enabled=True,  # type: ignore[arg-type]
                driver_version="", vbios_version="")
    assert compare(verified, None, {8: bytearray(SHA[7]), 22: memoryview(SHA[121]),
                                    36: SHA[35]}, nvdec0_enabled=True,
                   driver_version=" 550.90.07\x00", vbios_version="")["matched"]


def test_unexpected_algorithms_are_refused(authority: RimAuthority) -> None:
    for signed in (authority.sign(driver_xml(), signature=SignatureMethod.ECDSA_SHA256),
                   authority.sign(driver_xml(), c14n=CanonicalizationMethod.CANONICAL_XML_1_0)):
        with pytest.raises(VerificationFailed, match="not ecdsa-sha384") as caught:
            verify_rim(signed, at=AT, root=authority.root.cert)
        assert caught.value.found
    two_refs = authority.sign(driver_xml()).replace(b"</ds:SignedInfo>", b"<ds:Reference URI="
                                                    b'"#x"/></ds:SignedInfo>')
    with pytest.raises(VerificationFailed, match="not ecdsa-sha384"):
        verify_rim(two_refs, at=AT, root=authority.root.cert)
    no_info = re.sub(rb"<ds:SignedInfo>.*</ds:SignedInfo>", b"", authority.sign(driver_xml()),
                     flags=re.S)
    with pytest.raises(VerificationFailed, match="not ecdsa-sha384"):
        verify_rim(no_info, at=AT, root=authority.root.cert)


def test_only_the_enveloped_transform_is_accepted(authority: RimAuthority) -> None:
    signed = authority.sign(driver_xml())
    without_c14n = re.sub(rb'<ds:Transform Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>',
                          b"", signed)
    assert without_c14n != signed
    with pytest.raises(VerificationFailed, match="XML signature does not verify"):
        verify_rim(without_c14n, at=AT, root=authority.root.cert)  # SignedInfo changed


def test_signature_placement_is_checked(authority: RimAuthority) -> None:
    signed = authority.sign(driver_xml())
    signature = re.search(rb"<ds:Signature .*</ds:Signature>", signed, flags=re.S).group(0)
    doubled = signed.replace(b"</SoftwareIdentity>", signature + b"</SoftwareIdentity>")
    nested = signed.replace(signature, b"").replace(b"</Payload>", signature + b"</Payload>")
    assert nested.count(b"<ds:Signature ") == 1
    for broken in (doubled, nested):
        with pytest.raises(VerificationFailed, match="single enveloped signature"):
            verify_rim(broken, at=AT, root=authority.root.cert)


def test_keyinfo_without_certificates_is_refused(authority: RimAuthority) -> None:
    no_certs = authority.sign(driver_xml(), certificates=())  # a KeyValue only
    with pytest.raises(VerificationFailed, match="carries no certificate"):
        verify_rim(no_certs, at=AT, root=authority.root.cert)
    with pytest.raises(VerificationFailed, match="carries no certificate"):
        embedded_certificates(no_certs)
    many = authority.sign(driver_xml(), certificates=[authority.signer.cert] * 9)
    with pytest.raises(VerificationFailed, match="too many"):
        verify_rim(many, at=AT, root=authority.root.cert)


def test_keyinfo_order_does_not_matter_and_root_copy_is_optional(authority: RimAuthority) -> None:
    signer, ca, root = authority.chain
    for certificates in ([signer, root, ca], [signer, ca]):
        signed = authority.sign(driver_xml(), certificates=certificates)
        assert verify_rim(signed, at=AT, root=root).chain == (signer, ca, root)
    assert embedded_certificates(authority.sign(driver_xml())) == tuple(authority.chain)


def test_signature_by_another_key_is_refused(authority: RimAuthority) -> None:
    other = RimAuthority(not_before=T0, not_after=T0 + timedelta(days=365))
    forged = authority.sign(driver_xml(), key=other.signer.key)
    with pytest.raises(VerificationFailed, match="XML signature does not verify"):
        verify_rim(forged, at=AT, root=authority.root.cert)
    with pytest.raises(VerificationFailed, match="does not reach the trusted root"):
        verify_rim(other.sign(driver_xml()), at=AT, root=authority.root.cert)


def test_chain_constraints(authority: RimAuthority) -> None:
    root, ca = authority.root, authority.ca
    window = {"not_before": T0, "not_after": T0 + timedelta(days=365)}
    leaf_no_ku = issue("no key usage", issuer=ca, ca=False, key_usage=False, **window)
    assert verify_chain([leaf_no_ku.cert, ca.cert], root.cert, AT)[0] == leaf_no_ku.cert
    ca_as_signer = issue("a CA", issuer=ca, ca=True, path_length=0, **window)
    with pytest.raises(VerificationFailed, match="may not sign"):
        verify_chain([ca_as_signer.cert, ca.cert], root.cert, AT)
    not_ca = issue("not a CA", issuer=root, ca=False, **window)
    under_not_ca = issue("leaf", issuer=not_ca, ca=False, **window)
    with pytest.raises(VerificationFailed, match="is not a CA"):
        verify_chain([under_not_ca.cert, not_ca.cert], root.cert, AT)
    deep = issue("too deep", issuer=ca, ca=True, **window)  # ca has pathLen 0
    under_deep = issue("leaf", issuer=deep, ca=False, **window)
    with pytest.raises(VerificationFailed, match="longer than a CA allows"):
        verify_chain([under_deep.cert, deep.cert, ca.cert], root.cert, AT)
    no_sign = issue("CA without KU", issuer=root, ca=True, key_usage=False, **window)
    assert verify_chain([issue("leaf", issuer=no_sign, ca=False, **window).cert, no_sign.cert],
                        root.cert, AT)
    with pytest.raises(VerificationFailed, match="no certificate"):
        verify_chain([], root.cert, AT)
    with pytest.raises(ConfigError, match="root must be"):
        verify_chain([ca.cert], b"root", AT)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="naive"):
        verify_chain([ca.cert], root.cert, datetime(2025, 1, 1))


def test_ca_without_cert_sign_usage_is_refused() -> None:
    window = {"not_before": T0, "not_after": T0 + timedelta(days=365)}
    root = issue("root", **window)
    ca = issue("signing-only CA", issuer=root, **window)
    builder = (x509.CertificateBuilder().subject_name(ca.cert.subject)
               .issuer_name(root.cert.subject).public_key(ca.key.public_key())
               .serial_number(7).not_valid_before(T0).not_valid_after(T0 + timedelta(days=90))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                            False, False), critical=True))
    no_cert_sign = builder.sign(root.key, hashes.SHA384())
    leaf = issue("leaf", issuer=ca, ca=False, **window)
    with pytest.raises(VerificationFailed, match="may not sign certificates"):
        verify_chain([leaf.cert, no_cert_sign], root.cert, AT)


def test_chain_length_is_bounded() -> None:
    window = {"not_before": T0, "not_after": T0 + timedelta(days=365)}
    root = issue("root", **window)
    levels = [issue("level 0", issuer=root, **window)]
    for level in range(1, 9):
        levels.append(issue(f"level {level}", issuer=levels[-1], **window))
    deep_leaf = issue("deep leaf", issuer=levels[-1], ca=False, **window)
    with pytest.raises(VerificationFailed, match="does not reach"):
        verify_chain([deep_leaf.cert, *(ca.cert for ca in reversed(levels))], root.cert, AT)
    leaf = issue("leaf", issuer=levels[4], ca=False, **window)
    path = verify_chain([leaf.cert, *(ca.cert for ca in levels[:5])], root.cert, AT)
    assert len(path) == 7 and path[-1] == root.cert


def test_expected_id_must_name_the_rim(authority: RimAuthority) -> None:
    signed = authority.sign(driver_xml())
    for wrong in ("NV_GPU_DRIVER_GH100_550.90.08", "NV_GPU_VBIOS_1010_0200_882_55090070000"):
        with pytest.raises(VerificationFailed, match="not the one asked for"):
            verify_rim(signed, at=AT, root=authority.root.cert, expected_id=wrong)
    with pytest.raises(ConfigError, match="not an NVIDIA GPU RIM id"):
        verify_rim(signed, at=AT, root=authority.root.cert, expected_id="NV_SWITCH_BIOS_1")
    blackwell = verify_rim(signed, at=AT, root=authority.root.cert,
                           expected_id="NV_GPU_CC_DRIVER_GB100_550.90.07")
    assert blackwell.id == "NV_GPU_CC_DRIVER_GB100_550.90.07"


def test_verify_rim_refuses_naive_time(authority: RimAuthority) -> None:
    with pytest.raises(ConfigError, match="naive"):
        verify_rim(authority.sign(driver_xml()), at=datetime(2025, 2, 1))


# --- parsing --------------------------------------------------------------------------------------

def test_kind_comes_from_argument_id_tag_or_version_shape() -> None:
    assert parse_rim(driver_xml()).kind == "driver"
    assert parse_rim(vbios_xml()).kind == "vbios"
    assert parse_rim(driver_xml(), kind="vbios").kind == "vbios"
    assert parse_rim(driver_xml(), rim_id="NV_GPU_VBIOS_1_2_3_4").kind == "vbios"
    tagged = swid_xml(colloquial_version="1.0", records=[], tag_id="NV_GPU_VBIOS_1_2_3_4")
    assert parse_rim(tagged).kind == "vbios"
    assert parse_rim(tagged, rim_id="something else").kind == "vbios"
    with pytest.raises(ConfigError, match="unknown RIM kind"):
        parse_rim(driver_xml(), kind="switch")  # type: ignore[arg-type]


def test_id_helpers() -> None:
    assert id_kind("NV_GPU_DRIVER_GH100_550.90.07") == "driver"
    assert id_kind("NV_GPU_CC_DRIVER_GB100_575.32") == "driver"
    assert id_kind("NV_GPU_VBIOS_1010_0200_882_96009F0001") == "vbios"
    assert id_kind("NV_SWITCH_BIOS_5612_0002_890_9610550001") is None
    rim = parse_rim(vbios_xml())
    check_rim_id(rim, "NV_GPU_VBIOS_1010_0200_882_96009f0001")
    with pytest.raises(VerificationFailed):
        check_rim_id(rim, "NV_GPU_DRIVER_GH100_96.00.9F.00.01")


def test_rim_ids_rules() -> None:
    ids = rim_ids(driver_version="575.32\x00\x00", vbios_version="97.00.88.00.0f",
                  project="g525", project_sku="0220", chip_sku="886\x00", arch="Blackwell",
                  chip_info="gb202")
    assert ids == RimIds("NV_GPU_CC_DRIVER_GB202_575.32", "NV_GPU_VBIOS_G525_0220_886_970088000F")
    with pytest.raises(ConfigError, match="architecture"):
        rim_ids(driver_version="1", vbios_version="1", project="1", project_sku="1",
                chip_sku="1", arch="ampere")
    with pytest.raises(MalformedEvidence, match="project cannot form a RIM id"):
        rim_ids(driver_version="1", vbios_version="1", project="../x", project_sku="1",
                chip_sku="1")
    with pytest.raises(MalformedEvidence, match="driver version"):
        rim_ids(driver_version="", vbios_version="1", project="1", project_sku="1", chip_sku="1")
    with pytest.raises(ConfigError, match="must be a string"):
        rim_ids(driver_version=5, vbios_version="1", project="1",  # type: ignore[arg-type]
                project_sku="1", chip_sku="1")


def _resource(**attributes: str) -> bytes:
    fields = {"type": "Measurement", "index": "3", "active": "True", "alternatives": "1",
              "size": "48", "{ns2}Hash0": "ab" * 48, **attributes}
    text = " ".join(f'{name.replace("{ns2}", "ns2:")}="{value}"' for name, value in fields.items()
                    if value is not None)
    return f"<ns0:Resource {text}/>".encode()


def _document(*resources: bytes, meta: bytes | None = None, root: bytes | None = None) -> bytes:
    meta = b'<ns0:Meta colloquialVersion="1.2" product="GH100"/>' if meta is None else meta
    head = root or (b'<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema'
                    b'.xsd" xmlns:ns0="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" '
                    b'xmlns:ns2="http://www.w3.org/2001/04/xmlenc#sha384" tagId="t" version="1">')
    return head + meta + b"<ns0:Payload>" + b"".join(resources) + b"</ns0:Payload>" + (
        b"</SoftwareIdentity>")


def test_parse_reads_records() -> None:
    rim = parse_rim(_document(_resource(), _resource(index="70", **{"{ns2}Hash0": None}),
                              _resource(index="64", alternatives="2", **{"{ns2}Hash1": "cd" * 48}),
                              _resource(type="Other", index="x"), _resource(index="4",
                                                                             active="false")))
    assert [m.index for m in rim.measurements] == [3, 4, 64]
    assert rim.measurements[2] == Measurement(64, True, (b"\xab" * 48, b"\xcd" * 48), "")
    assert rim.active.keys() == {3, 64} and not rim.verified and rim.not_after is None
    assert isinstance(rim, Rim) and rim.id == "t" and rim.edition == ""


@pytest.mark.parametrize(("document", "message"), [
    (b"", "not well-formed"),
    (b"<a", "not well-formed"),
    (b"\xff\xfe<", "not well-formed"),
    (b"<a/>", "not a SWID tag"),
    (_document(meta=b""), "no Meta"),
    (_document(meta=b'<ns0:Meta product="GH100"/>'), "lacks colloquialVersion"),
    (_document(root=b'<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema'
               b'.xsd" xmlns:ns0="http://standards.iso.org/iso/19770/-2/2015/schema.xsd">'),
     "lacks tagId"),
    (_document(_resource(index="-1")), "bad index"),
    (_document(_resource(index="1234567")), "bad index"),
    (_document(_resource(index="٣")), "bad index"),
    (_document(_resource(active="yes")), "bad active"),
    (_document(_resource(alternatives="0")), "bad alternatives"),
    (_document(_resource(alternatives="65")), "bad alternatives"),
    (_document(_resource(alternatives="2")), "bad Hash1"),
    (_document(_resource(**{"{ns2}Hash0": "zz" * 48})), "bad Hash0"),
    (_document(_resource(**{"{ns2}Hash0": "ab" * 32})), "bad Hash0"),
    (_document(_resource(size="32")), "not SHA-384"),
    (_document(_resource(), _resource()), "twice"),
])
def test_malformed_rims(document: bytes, message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        parse_rim(document)


def test_too_many_records_and_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rim_module, "MAX_MEASUREMENTS", 2)
    with pytest.raises(MalformedEvidence, match="too many measurements"):
        parse_rim(_document(*(_resource(index=str(n)) for n in range(3))))
    monkeypatch.setattr(rim_module, "MAX_RIM_BYTES", 100)
    with pytest.raises(MalformedEvidence, match="too large"):
        parse_rim(_document(_resource()))
    with pytest.raises(ConfigError, match="must be bytes"):
        parse_rim("<xml/>")  # type: ignore[arg-type]


def test_dtds_and_entities_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    laughs = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;">]>'
              b"<a>&l2;</a>")
    external = (f'<!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]><a>&x;</a>').encode()
    swid_with_dtd = b"<!DOCTYPE SoftwareIdentity>" + _document(_resource())
    for document in (laughs, external, swid_with_dtd):
        with pytest.raises(MalformedEvidence, match="DTD") as caught:
            parse_rim(document)
        assert "do not read me" not in str(caught.value)
        with pytest.raises(MalformedEvidence, match="DTD"):
            verify_rim(document, at=AT)


# --- properties: any bytes give a Rim or a typed error ------------------------------------------

@pytest.fixture(scope="module")
def signed_driver(authority: RimAuthority) -> bytes:
    return authority.sign(driver_xml())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_signed_rim_gives_only_typed_errors(authority: RimAuthority, signed_driver: bytes,
                                                    data: st.DataObject) -> None:
    mutated = bytearray(signed_driver)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(mutated) // 2, len(mutated)))
    document = bytes(mutated[:cut])
    for call in (lambda: parse_rim(document),
                 lambda: verify_rim(document, at=AT, root=authority.root.cert)):
        with contextlib.suppress(CCAttestError):
            call()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_only_typed_errors(blob: bytes) -> None:
    for call in (lambda: parse_rim(blob), lambda: verify_rim(blob, at=AT)):
        with contextlib.suppress(CCAttestError):
            call()


@pytest.mark.vectors
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_real_rim_gives_only_typed_errors(vectors: Path, data: st.DataObject) -> None:
    original = read_rim(vectors, LGV + "Driver_RIM_test_no_gpu.swidtag")
    mutated = bytearray(original)
    position = data.draw(st.integers(0, len(mutated) - 1))
    mutated[position] = data.draw(st.integers(0, 255))
    try:
        rim = verify_rim(bytes(mutated), at=pinned("2023-07-12 06:10:12"))
    except CCAttestError:
        return
    assert rim.active == verify_rim(original, at=pinned("2023-07-12 06:10:12")).active
