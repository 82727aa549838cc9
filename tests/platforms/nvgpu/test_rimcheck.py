"""The verifier's RIM step against NVIDIA's real test RIMs and a local RIM service."""

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccattest.collateral import CollateralCache
from ccattest.errors import CollateralUnavailable
from ccattest.evidence import Evidence
from ccattest.platforms.nvgpu import rimcheck
from ccattest.platforms.nvgpu.rim import verify_rim
from ccattest.platforms.nvgpu.rimcheck import RimCheck
from ccattest.platforms.nvgpu.rimservice import RimClient
from ccattest.platforms.nvgpu.verify import NvgpuVerifier
from ccattest.testing.nvidia_server import NvidiaServer

AT = datetime(2023, 7, 15, tzinfo=UTC)
NONCE = bytes.fromhex("4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e")
DRIVER = "gpu/nvtrust-lgv/samples/Driver_RIM_test_no_gpu.swidtag"
VBIOS = "gpu/nvtrust-lgv/samples/1010_0200_882_96005E0001_test_no_gpu.swidtag"


def _evidence(vectors: Path) -> Evidence:
    base = vectors / "gpu/nvtrust-lgv-2023/samples"
    return Evidence("nvgpu", (base / "attestationReport.txt").read_bytes(),
                    {"cert_chain": (base / "gpuAkCertChain.txt").read_bytes()})


@pytest.mark.vectors
def test_rim_files_match_by_version(vectors):
    check = RimCheck([(vectors / VBIOS).read_bytes(), (vectors / DRIVER).read_bytes()])
    claims = NvgpuVerifier(rim=check).verify(_evidence(vectors), report_data=NONCE,
                                             at=AT).claims
    assert claims["measurements"]["matched"] is True
    assert claims["measurements"]["rim"]["driver"]["version_match"] is True


@pytest.mark.vectors
def test_rims_from_a_local_rim_service_are_cached(vectors, tmp_path):
    with NvidiaServer(now=AT) as server:
        server.serve_rim("NV_GPU_DRIVER_GH100_545.00", (vectors / DRIVER).read_bytes())
        server.serve_rim("NV_GPU_VBIOS_1010_0200_882_96005E0001", (vectors / VBIOS).read_bytes())
        client = RimClient(server.url, cache=CollateralCache(tmp_path))
        verifier = NvgpuVerifier(rim=RimCheck(client=client))
        claims = verifier.verify(_evidence(vectors), report_data=NONCE, at=AT).claims
        assert claims["measurements"]["matched"] is True
        offline = RimClient(server.url, cache=CollateralCache(tmp_path), offline=True)
        again = NvgpuVerifier(rim=RimCheck(client=offline)).verify(
            _evidence(vectors), report_data=NONCE, at=AT).claims
    assert again["measurements"]["matched"] is True


@pytest.mark.vectors
def test_missing_rims_are_collateral_errors(vectors):
    with pytest.raises(CollateralUnavailable, match="no RIM for this report"):
        NvgpuVerifier(rim=RimCheck()).verify(_evidence(vectors), report_data=NONCE, at=AT)


def test_reports_that_cannot_name_their_rims():
    check = RimCheck()
    with pytest.raises(CollateralUnavailable, match="lacks what names its RIMs"):
        check(None, {"driver_version": "1.0"}, AT)  # type: ignore[arg-type]
    claims = {"driver_version": 5, "vbios_version": "96.00.5E.00.01", "project": "x",
              "project_sku": "y", "chip_sku": "z"}
    with pytest.raises(CollateralUnavailable, match="cannot name this report's RIMs"):
        check(None, claims, AT)  # type: ignore[arg-type]


@pytest.mark.vectors
def test_a_rim_of_another_version_is_still_compared_and_reported(vectors):
    check = RimCheck([(vectors / DRIVER).read_bytes()])
    rim = check._find(check._given(AT), "NV_GPU_DRIVER_GH100_999.00", "driver", "999.00", AT)
    assert rim is not None and rim.colloquial_version != "999.00"  # version_match then fails


@pytest.mark.vectors
def test_each_rim_file_is_verified_once_per_verification(vectors, monkeypatch):
    calls = []

    def counting(xml, **options):
        calls.append(xml)
        return verify_rim(xml, **options)

    monkeypatch.setattr(rimcheck, "verify_rim", counting)
    files = [(vectors / DRIVER).read_bytes(), (vectors / VBIOS).read_bytes()]
    verifier = NvgpuVerifier(rim=RimCheck(files))
    for round_ in (1, 2):
        claims = verifier.verify(_evidence(vectors), report_data=NONCE, at=AT).claims
        assert claims["measurements"]["matched"] is True
        assert sorted(calls) == sorted(files * round_)  # each file once per verification


@pytest.mark.vectors
@pytest.mark.parametrize("given", [(), (DRIVER,)])
def test_unreachable_rim_service_is_one_error_naming_the_needed_rims(vectors, given):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        client = RimClient(f"http://127.0.0.1:{sock.getsockname()[1]}", sleep=_no_sleep)
        check = RimCheck([(vectors / path).read_bytes() for path in given], client=client)
        with pytest.raises(CollateralUnavailable) as caught:
            NvgpuVerifier(rim=check).verify(_evidence(vectors), report_data=NONCE, at=AT)
    error = caught.value
    assert "could not be fetched from NVIDIA's RIM service" in error.message
    needed = ["NV_GPU_VBIOS_1010_0200_882_96005E0001"]
    if not given:
        needed.insert(0, "NV_GPU_DRIVER_GH100_545.00")
    assert error.expected == " and ".join(needed)
    assert "--rim FILE" in (error.hint or "") and ";" not in str(error.found)


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"retried after {seconds} s")
