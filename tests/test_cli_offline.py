"""`--offline` means no network, for every platform.

Each case runs the real `ccattest verify --offline` on real evidence that lacks its
collateral, in a process whose sockets refuse to resolve or connect and log every attempt
(tests/nonet/sitecustomize.py). It must fail (or succeed) at once without one attempt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.vectors]

SRC = Path(__file__).resolve().parents[1] / "src"
NONET = Path(__file__).resolve().parent / "nonet"
SNP = "sev-snp/virtee-sev/tests/certs_data/"
SNP_REPORT_DATA = ("d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581"
                   "0b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd")
TDX = "tdx/dcap-qvl/sample/"
TDX_REPORT_DATA = ("9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
                   "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20")
GPU = "gpu/nvtrust-lgv-2023/samples/"
GPU_NONCE = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e"
NRAS = ("gpu/nvattest-sdk/nv-attestation-sdk-cpp/unit-tests/testdata/sample_attestation_data/"
        "hopperClaimsv3_detached_eat.json")
AZURE = "azure/trustee/deps/verifier/test_data/"
MAA = "azure/azure-attestation-samples/maa.jwt.verifier.dotnet/sev-snp-jwt.txt"
MAA_INSTANCE = "https://sharedweu.weu.test.attest.azure.net"
ITA = "ita/trustauthority-client-for-java/extracted/"

CASES = {
    "snp": (SNP + "report_milan.hex", "--platform", "snp", "--report-data", SNP_REPORT_DATA,
            "--at", "2026-11-26"),
    "tdx": (TDX + "tdx_quote", "--report-data", TDX_REPORT_DATA, "--at",
            "2025-07-19T10:00:34Z"),
    "nvgpu": (GPU + "attestationReport.txt", "--platform", "nvgpu", "--certs",
              GPU + "gpuAkCertChain.txt", "--nonce", GPU_NONCE, "--at", "2023-07-15"),
    "nvgpu-nras": (NRAS, "--platform", "nvgpu-nras", "--allow-unbound"),
    "azure-snp": (AZURE + "az-snp-vtpm/evidence-v0.json", "--platform", "azure-snp",
                  "--nonce", b"challenge".hex(), "--at", "2025-10-01"),
    "azure-tdx": (AZURE + "az-tdx-vtpm/evidence-v0.json", "--platform", "azure-tdx",
                  "--nonce", b"challenge".hex(), "--at", "2025-10-01"),
    "maa": (MAA, "--platform", "maa", "--instance", MAA_INSTANCE, "--allow-unbound",
            "--at", "2025-04-08T06:00:00Z"),
}


def offline_run(args: list[str], cwd: Path, log: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(cwd), "COLUMNS": "80", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(NONET), str(SRC)]),
           "CCATTEST_NONET_LOG": str(log), "CCATTEST_COLLATERAL": str(cwd / "empty-cache")}
    return subprocess.run([sys.executable, "-m", "ccattest", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_guard_catches_network_use(tmp_path):
    """Without --offline, SNP evidence without certificates would ask AMD KDS: the guard
    must see that, or the other cases prove nothing."""
    log = tmp_path / "network.log"
    code = "import socket; socket.create_connection(('127.0.0.1', 9))"
    env = {**os.environ, "PYTHONPATH": str(NONET), "CCATTEST_NONET_LOG": str(log)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode != 0 and "network use in an --offline test" in proc.stderr
    assert log.read_text().startswith(("getaddrinfo", "connect"))


@pytest.mark.parametrize("platform", sorted(CASES))
def test_offline_makes_no_network_attempt(vectors, tmp_path, platform):
    first, *rest = CASES[platform]
    args = ["verify", str(vectors / first), *[
        str(vectors / value) if value.startswith(("gpu/", "sev-snp/")) else value
        for value in rest], "--offline"]
    log = tmp_path / "network.log"
    start = time.monotonic()
    proc = offline_run(args, tmp_path, log)
    elapsed = time.monotonic() - start
    assert not log.exists(), log.read_text()
    assert "network use" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 1, 2, 3)
    if proc.returncode == 2:  # the collateral is missing: say so, and how to provide it
        first_line = proc.stderr.splitlines()[0]
        assert first_line.startswith("error: ") and "; " in first_line, proc.stderr
    assert elapsed < 20  # no retry loop behind the error (a generous bound for 2 cores)


def test_offline_software_evidence_verifies(tmp_path):
    log = tmp_path / "network.log"
    nonce = "33" * 32
    assert offline_run(["collect", "--nonce", nonce, "--site", "site-1", "--key-dir", "keys",
                        "-o", "evidence.json"], tmp_path, log).returncode == 0
    (tmp_path / "policy.yaml").write_text("software:\n  allow: true\n")
    proc = offline_run(["verify", "evidence.json", "--nonce", nonce, "--key-dir", "keys",
                        "--policy", "policy.yaml", "--offline"], tmp_path, log)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # no reference measurement: warning
    assert not log.exists()


def test_offline_token_platforms_ask_for_their_keys(vectors, tmp_path):
    log = tmp_path / "network.log"
    proc = offline_run(["verify", str(vectors / ITA / "validToken.jwt"), "--platform", "ITA",
                        "--allow-unbound", "--offline"], tmp_path, log)
    assert proc.returncode == 2 and "--jwks" in proc.stderr.splitlines()[0]
    assert not log.exists()


def test_gpu_rims_without_network_fail_at_once_with_the_fixes(vectors, tmp_path):
    """No --rim and no network: one error line naming the fixes, not a retry loop."""
    log = tmp_path / "network.log"
    start = time.monotonic()
    proc = offline_run(["verify", str(vectors / GPU / "attestationReport.txt"), "--platform",
                        "nvgpu", "--certs", str(vectors / GPU / "gpuAkCertChain.txt"),
                        "--nonce", GPU_NONCE, "--at", "2023-07-15"], tmp_path, log)
    elapsed = time.monotonic() - start
    assert proc.returncode in (1, 2), proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert "RIMs could not be fetched" in text
    for fix in ("--rim", "--offline", "collateral export"):
        assert fix in text
    assert text.count("Name or service not known") <= 1 and "Traceback" not in text
    assert len(log.read_text().splitlines()) == 1  # one attempt, no retries
    assert elapsed < 8
