"""The command line as a person feels it: whole `ccattest` processes beside a floor process.

The floor is a Python process that imports `cryptography` and does one ECDSA P-384 verify:
no CLI can start faster. Byte-code caches are allowed and warmed first (as on a user's
machine; this workplace sets PYTHONDONTWRITEBYTECODE, which would make every run recompile
the package). Each command runs `RUNS` times, interleaved with the floor; the figure is the
median wall time and the peak resident memory of the child process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .harness import Row

RUNS = 7
VECTORS = Path(os.environ.get("CCATTEST_VECTORS", Path(__file__).resolve().parents[2]
                              / "shared" / "vectors"))
FLOOR = """
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP384R1())
signature = key.sign(b"floor", ec.ECDSA(hashes.SHA384()))
key.public_key().verify(signature, b"floor", ec.ECDSA(hashes.SHA384()))
"""
SNP = "sev-snp/virtee-sev/tests/certs_data/"
SNP_REPORT_DATA = ("d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581"
                   "0b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd")
TDX = "tdx/dcap-qvl/sample/"
GPU = "gpu/nvtrust-lgv-2023/samples/"
RIMS = "gpu/nvtrust-lgv/samples/"
GPU_NONCE = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e"


@dataclass(frozen=True)
class Timing:
    seconds: float
    max_rss_mib: float


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> Timing:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 3):  # affirming or warning: the command did its whole job
        raise RuntimeError(f"{' '.join(argv[2:6])}... exited {proc.returncode}")
    return Timing(elapsed, usage.ru_maxrss / 1024)


def commands(workdir: Path) -> dict[str, list[str]]:
    """The commands to time; those needing vectors only when the vectors are here."""
    ccattest = [sys.executable, "-m", "ccattest"]
    found = {"ccattest --help": [*ccattest, "--help"]}
    if not (VECTORS / "MANIFEST.md").is_file():
        return found
    snp_policy = workdir / "snp.yaml"
    snp_policy.write_text("snp:\n  allow: true\n")
    found["ccattest verify (SNP report)"] = [
        *ccattest, "verify", str(VECTORS / SNP / "report_milan.hex"), "--platform", "snp",
        "--certs", str(VECTORS / SNP / "vcek_milan.der"), "--report-data", SNP_REPORT_DATA,
        "--at", "2026-11-26", "--policy", str(snp_policy)]
    from ccattest.platforms.tdx.abi import parse_quote

    quote = VECTORS / TDX / "tdx_quote"
    tdx_policy = workdir / "tdx.yaml"
    tdx_policy.write_text("tdx:\n  allow: true\n")
    found["ccattest verify (TDX quote + collateral)"] = [
        *ccattest, "verify", str(quote), "--collateral",
        str(VECTORS / TDX / "tdx_quote_collateral.json"), "--at", "2025-07-19T10:00:34Z",
        "--report-data", parse_quote(quote.read_bytes()).body.report_data.hex(),
        "--policy", str(tdx_policy)]
    gpu_policy = workdir / "gpu.yaml"
    gpu_policy.write_text("nvgpu:\n  allow: true\n  require_cc_mode: false\n")
    found["ccattest verify (GPU report + 2 RIMs)"] = [
        *ccattest, "verify", str(VECTORS / GPU / "attestationReport.txt"), "--platform",
        "nvgpu", "--certs", str(VECTORS / GPU / "gpuAkCertChain.txt"), "--nonce", GPU_NONCE,
        "--rim", str(VECTORS / RIMS / "Driver_RIM_test_no_gpu.swidtag"),
        "--rim", str(VECTORS / RIMS / "1010_0200_882_96005E0001_test_no_gpu.swidtag"),
        "--at", "2023-07-15", "--offline", "--policy", str(gpu_policy)]
    return found


def rows() -> list[Row]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    floor = [sys.executable, "-c", FLOOR]
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        timed = commands(workdir)
        for argv in [floor, *timed.values()]:  # warm the byte-code caches and the OS
            run_once(argv, env, workdir)
        floor_runs: list[Timing] = []
        ours: dict[str, list[Timing]] = {name: [] for name in timed}
        for _ in range(RUNS):
            floor_runs.append(run_once(floor, env, workdir))
            for name, argv in timed.items():
                ours[name].append(run_once(argv, env, workdir))
    floor_s = statistics.median(t.seconds for t in floor_runs)
    result = []
    for name, runs in ours.items():
        seconds = statistics.median(t.seconds for t in runs)
        result.append(Row(f"{name}: wall", round(seconds * 1000, 1), "ms",
                          "python + cryptography + one P-384 verify", round(floor_s * 1000, 1),
                          round(seconds / floor_s, 2)))
        rss = max(t.max_rss_mib for t in runs)
        floor_rss = max(t.max_rss_mib for t in floor_runs)
        result.append(Row(f"{name}: peak memory", round(rss, 1), "MiB",
                          "the same floor process", round(floor_rss, 1),
                          round(rss / floor_rss, 2)))
    return result
