"""ccattest beside NVIDIA's own verifier (nv-local-gpu-verifier 2.7.3) on the same real GPU
evidence: NVIDIA's 2023 sample report (nvtrust-lgv-2023/samples/attestationReport.txt), its
device chain (gpuAkCertChain.txt) and its two test RIMs (nvtrust-lgv/samples/
Driver_RIM_test_no_gpu.swidtag, 1010_0200_882_96005E0001_test_no_gpu.swidtag), with NVIDIA's
sample nonce, offline, at the pinned time 2023-07-15 (the RIM signing certificates expired in
2025).

NVIDIA's package pins cryptography 43, signxml 3.2, lxml 4.9 and PyJWT 2.7, which ccattest
(signxml >= 4, PyJWT >= 2.9) and nvflare (cryptography >= 45) cannot share an environment with,
so it lives in its own virtual environment (`make bench` makes it at .bench/nv-venv; set
CCATTEST_NV_VENV to use another). Nothing of NVIDIA's is copied here: this module writes a small
runner script to a temporary folder at run time, and that script imports the installed
`verifier` package and runs `verifier.cc_admin.attest()` -- NVIDIA's whole check for one GPU:
report parsing, device chain (with the FWID match), nonce, driver and VBIOS versions, report
signature, both RIMs (XSD schema, chain, XML signature) and the measurement comparison,
then its claims. What the runner changes at run time, and why:

- The evidence: `attest()` takes objects that normally wrap NVML; the runner hands it one
  that serves the report (hex decoded with NVIDIA's `convert_string_to_blob`), the chain
  (parsed with NVIDIA's `GpuCertificateChains`, which swaps the last certificate for NVIDIA's
  bundled device root, as on a GPU) and the driver and VBIOS versions the report's opaque
  data states (what NVML would report for the GPU that signed it; read once, up front). The
  hex decoding and the chain parsing are inside each timed call, as ccattest's side decodes
  and parses its evidence inside each call.
- RIMs from files, not the RIM service: `attest()` is called with `driver_rim` / `vbios_rim`
  set and `HopperSettings.set_driver_rim_path()` given the driver RIM's path (2.7.3's own
  command line never sets that path, so `--driver_rim` alone reads "").
- No OCSP: `CcAdminUtils.ocsp_certificate_chain_validation` is replaced by one returning
  "good" without a request, for the device chain and both RIM chains (ccattest's side runs
  `--offline`, also without revocation checks).
- The clock: NVIDIA checks certificate validity through pyOpenSSL stores (its own chain
  checks and signxml's); `OpenSSL.crypto.X509StoreContext` is replaced by a subclass that
  sets its store's verification time to the pinned time first.
- `test_no_gpu` is set in the arguments only so that a failed check returns (False, claims)
  instead of asking NVML for the GPU's ready state; with both RIMs given it changes no check.
  `user_mode` is set, so nothing touches a GPU. Each call gets a fresh HopperSettings (NVIDIA
  keeps one per architecture for the process) and empties cc_admin's per-run claim lists.
- NVIDIA's logging stays as shipped (INFO lines to stdout, which the benchmark discards, and
  a DEBUG log file, verifier.log, in the temporary working folder): it is part of its cost.

Before timing, both sides must accept the evidence, and NVIDIA's must reject the same report
with the first byte of its first non-zero measurement flipped (ccattest's must too). Figures:

- in-process, warm: verifications per second on a warm process, for the full check and for
  report + device chain only (NVIDIA: parse, chain with FWID, nonce / versions / signature);
  each twice for ccattest: its caches of parsed certificates and chain signatures warm (as a
  long-running verifier has them) and emptied before every call (NVIDIA's has none);
- in-process, cold: the first full verification in a fresh process, imports done before the
  clock starts (median of COLD_RUNS processes);
- command line: `ccattest verify ... --offline` against a process running the runner's
  check (imports included), median wall time of bench_cli.RUNS runs each, interleaved, byte
  code caches warmed, and the children's peak resident memory (os.wait4).

Ratios are ours / NVIDIA's: above 1 is better for ops/s, below 1 for ms and MiB. The two
sides run different cryptography builds (ccattest's environment and NVIDIA's pinned 43.0.1).
"""

from __future__ import annotations

import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from .bench_cli import GPU, GPU_NONCE, RIMS, RUNS, VECTORS, Timing, run_once
from .harness import Row, ops_per_second

NV_VERSION = "2.7.3"
NV_VENV = Path(os.environ.get("CCATTEST_NV_VENV", Path(__file__).resolve().parents[1] / ".bench"
                              / "nv-venv"))
NV = f"nv-local-gpu-verifier {NV_VERSION}"
PINNED = "2023-07-15"
COLD_RUNS = 5
REPORT = VECTORS / GPU / "attestationReport.txt"
CHAIN = VECTORS / GPU / "gpuAkCertChain.txt"
DRIVER_RIM = VECTORS / RIMS / "Driver_RIM_test_no_gpu.swidtag"
VBIOS_RIM = VECTORS / RIMS / "1010_0200_882_96005E0001_test_no_gpu.swidtag"

RUNNER = '''
"""NVIDIA's nv-local-gpu-verifier on files, offline, at a pinned time (see bench_nvidia)."""
import json, statistics, sys, time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import version
from OpenSSL import crypto

PINNED = datetime.fromisoformat(sys.argv[7]).replace(tzinfo=timezone.utc)


class PinnedContext(crypto.X509StoreContext):
    def __init__(self, store, certificate, chain=None):
        store.set_time(PINNED)
        super().__init__(store, certificate, chain)


crypto.X509StoreContext = PinnedContext

from verifier import cc_admin, config
from verifier.attestation import AttestationReport
from verifier.cc_admin_utils import CcAdminUtils
from verifier.config import BaseSettings, HopperSettings
from verifier.nvml.gpu_cert_chains import GpuCertificateChains
from verifier.nvml.test_handle import TestHandle
from verifier.utils import convert_string_to_blob, format_vbios_version

CcAdminUtils.ocsp_certificate_chain_validation = staticmethod(
    lambda chain, settings, mode: (True, "", "good", None))
HOPPER = 9
mode, report_path, chain_path, driver_rim, vbios_rim, nonce = sys.argv[1:7]
REPORT_TEXT = open(report_path, encoding="ascii").read()
CHAIN_PEM = open(chain_path, "rb").read()
HopperSettings.set_driver_rim_path(driver_rim)
ARGUMENTS = {"verbose": False, "test_no_gpu": True, "driver_rim": driver_rim,
             "vbios_rim": vbios_rim, "user_mode": True, "allow_hold_cert": False,
             "service_key": None, "nonce": nonce, "rim_root_cert": None,
             "rim_service_url": None, "ocsp_url": None, "ocsp_nonce_disabled": True,
             "claims_version": "2.0"}


BaseSettings.GPU_ARCH_NAME = "HOPPER"  # as NvmlHandler sets it for a Hopper GPU
OPAQUE = AttestationReport(convert_string_to_blob(REPORT_TEXT), HopperSettings()) \\
    .get_response_message().get_opaque_data()
DRIVER = OPAQUE.get_data("OPAQUE_FIELD_ID_DRIVER_VERSION").decode().rstrip("\\0")
VBIOS = format_vbios_version(OPAQUE.get_data("OPAQUE_FIELD_ID_VBIOS_VERSION")).lower()


class Evidence:
    """What NvmlHandler serves for a GPU, from the files; the versions NVML would report are
    read from the report once, up front, as NVML answers them without parsing a report."""

    def __init__(self, report):
        self.report = report
        self.driver, self.vbios = DRIVER, VBIOS
        self.chain = GpuCertificateChains(TestHandle(CHAIN_PEM)).GpuAttestationCertificateChain

    def get_gpu_architecture(self): return HOPPER
    def get_uuid(self): return "GPU-from-files"
    def get_driver_version(self): return self.driver
    def get_vbios_version(self): return self.vbios
    def get_attestation_report(self): return self.report
    def get_attestation_cert_chain(self): return self.chain


def full(report_text=REPORT_TEXT):
    """attest(): the whole check, as NVIDIA's tool runs it for one GPU."""
    config.GPU_ARCHITECTURE_MAP[HOPPER] = HopperSettings()
    for claims in (cc_admin.hwmodel, cc_admin.oemid, cc_admin.ueid,
                   cc_admin.gpu_driver_attestation_warning_list,
                   cc_admin.gpu_vbios_attestation_warning_list):
        claims.clear()
    evidence = Evidence(convert_string_to_blob(report_text))
    result, _ = cc_admin.attest(ARGUMENTS, nonce, [evidence])
    return result is True


def report_and_chain():
    """attest()'s steps up to the RIMs: parse, device chain (FWID), nonce, versions, signature."""
    settings = HopperSettings()
    evidence = Evidence(convert_string_to_blob(REPORT_TEXT))
    report = AttestationReport(evidence.report, settings)
    fwid = report.get_response_message().get_opaque_data().get_data("OPAQUE_FIELD_ID_FWID")
    chain = evidence.get_attestation_cert_chain()
    ok, _, _ = CcAdminUtils.verify_gpu_certificate_chain(chain, settings, fwid.hex())
    return ok and CcAdminUtils.verify_attestation_report(
        attestation_report_obj=report, gpu_leaf_certificate=chain[0],
        nonce=bytes.fromhex(nonce), driver_version=evidence.driver,
        vbios_version=evidence.vbios, settings=settings)


__OPS_PER_SECOND__

if mode == "check":
    sys.exit(0 if full() else 1)
start = time.perf_counter()
accepted = full()
first = time.perf_counter() - start
out = {"version": version("nv-local-gpu-verifier"), "accepted": accepted, "first_s": first}
if mode == "bench":
    raw = bytearray(convert_string_to_blob(REPORT_TEXT))
    measured = next(value for value in AttestationReport(bytes(raw), HopperSettings())
                    .get_measurements() if value.strip("0"))
    out["flipped"] = raw.index(bytes.fromhex(measured))  # a signed measurement's first byte
    raw[out["flipped"]] ^= 1
    out["mutated_accepted"] = full(raw.hex())
    out["accepted_again"] = full()
    out["report_and_chain"] = report_and_chain()
    out["full_ops"] = ops_per_second(full)
    out["report_and_chain_ops"] = ops_per_second(report_and_chain)
print(json.dumps(out), file=sys.__stderr__)
'''

OURS_COLD = '''
import sys, time
from datetime import UTC, datetime
from ccattest.evidence import Evidence
from ccattest.platforms.nvgpu.rimcheck import RimCheck
from ccattest.platforms.nvgpu.verify import NvgpuVerifier
report, chain, driver, vbios, nonce, at = sys.argv[1:7]
files = [open(path, "rb").read() for path in (report, chain, driver, vbios)]
at = datetime.fromisoformat(at).replace(tzinfo=UTC)
start = time.perf_counter()
verifier = NvgpuVerifier(rim=RimCheck(files[2:]))
claims = verifier.verify(Evidence("nvgpu", files[0], {"cert_chain": files[1]}),
                         report_data=bytes.fromhex(nonce), at=at).claims
elapsed = time.perf_counter() - start
assert claims["measurements"]["matched"] is True, claims["measurements"]
print(elapsed, file=sys.stderr)
'''


def _missing() -> str | None:
    if not all(path.is_file() for path in (REPORT, CHAIN, DRIVER_RIM, VBIOS_RIM)):
        return f"the GPU vectors are not under {VECTORS}"
    if not (NV_VENV / "bin" / "python").is_file():
        return f"no virtual environment for {NV} at {NV_VENV} (`make bench` makes it)"
    return None


def _inputs() -> list[str]:
    return [str(path) for path in (REPORT, CHAIN, DRIVER_RIM, VBIOS_RIM)] + [GPU_NONCE, PINNED]


def _last_json(argv: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run a script that reports on stderr (NVIDIA's logging owns stdout); its last line."""
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{argv[1]} exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def _ours(at: datetime, flipped: int) -> tuple[float, float, float, float]:
    """ccattest warm: full check, and report + chain only, each with its certificate caches
    warm and emptied before every call."""
    from ccattest.errors import VerificationFailed
    from ccattest.evidence import Evidence
    from ccattest.platforms.nvgpu import verify as nvgpu_verify
    from ccattest.platforms.nvgpu.rimcheck import RimCheck
    from ccattest.platforms.nvgpu.verify import NvgpuVerifier

    evidence = Evidence("nvgpu", REPORT.read_bytes(), {"cert_chain": CHAIN.read_bytes()})
    nonce = bytes.fromhex(GPU_NONCE)
    full = NvgpuVerifier(rim=RimCheck([DRIVER_RIM.read_bytes(), VBIOS_RIM.read_bytes()]))
    bare = NvgpuVerifier()

    def check() -> object:
        return full.verify(evidence, report_data=nonce, at=at)

    claims = check().claims
    if claims["measurements"]["matched"] is not True:
        raise RuntimeError(f"ccattest did not match the RIMs: {claims['measurements']}")
    raw = bytearray(bytes.fromhex(REPORT.read_text().strip()))
    raw[flipped] ^= 1  # the byte NVIDIA's side is shown to reject
    try:
        full.verify(Evidence("nvgpu", bytes(raw), evidence.endorsements), report_data=nonce,
                    at=at)
    except VerificationFailed:
        pass
    else:
        raise RuntimeError("ccattest accepted the mutated report")

    def clear() -> None:
        for cached in (nvgpu_verify._cert, nvgpu_verify._chain, nvgpu_verify._issued_by,
                       nvgpu_verify._fwid):
            cached.cache_clear()

    def uncached() -> object:
        clear()
        return check()

    def report_only() -> object:
        return bare.verify(evidence, report_data=nonce, at=at)

    def report_uncached() -> object:
        clear()
        return report_only()

    return (ops_per_second(check), ops_per_second(uncached), ops_per_second(report_only),
            ops_per_second(report_uncached))


def rows(console: Console) -> list[Row]:
    missing = _missing()
    if missing:
        console.print(f"[yellow]skipping ccattest vs {NV}: {missing}[/]")
        return []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    nv_python = str(NV_VENV / "bin" / "python")
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        runner = workdir / "nv_runner.py"
        # The same timing loop as ours, from its source: both sides are measured alike.
        runner.write_text(RUNNER.replace("__OPS_PER_SECOND__", inspect.getsource(ops_per_second)))
        ours_cold = workdir / "ours_cold.py"
        ours_cold.write_text(OURS_COLD)
        try:
            theirs = _last_json([nv_python, str(runner), "bench", *_inputs()], env, workdir)
        except (RuntimeError, json.JSONDecodeError) as error:
            console.print(f"[yellow]skipping ccattest vs {NV}: its runner failed: {error}[/]")
            return []
        if theirs["version"] != NV_VERSION:
            console.print(f"[yellow]skipping: {NV_VENV} has nv-local-gpu-verifier "
                          f"{theirs['version']}, not {NV_VERSION}[/]")
            return []
        if not (theirs["accepted"] and theirs["accepted_again"] and theirs["report_and_chain"]
                and theirs["mutated_accepted"] is False):
            raise RuntimeError(f"NVIDIA's side did not do the check: {theirs}")
        console.print(f"{NV} accepts the evidence and rejects it with one measurement byte "
                      "flipped; so does ccattest.")
        ours_full, ours_uncached, ours_report, ours_report_uncached = _ours(
            datetime.fromisoformat(PINNED).replace(tzinfo=UTC), theirs["flipped"])
        cold_ours, cold_theirs = [], []
        for _ in range(COLD_RUNS):
            done = subprocess.run([sys.executable, str(ours_cold), *_inputs()], env=env,
                                  cwd=workdir, capture_output=True, text=True, check=True)
            cold_ours.append(float(done.stderr.strip().splitlines()[-1]))
            cold_theirs.append(_last_json([nv_python, str(runner), "cold", *_inputs()], env,
                                          workdir)["first_s"])
        policy = workdir / "gpu.yaml"
        policy.write_text("nvgpu:\n  allow: true\n  require_cc_mode: false\n")
        ours_cli = [sys.executable, "-m", "ccattest", "verify", str(REPORT), "--platform",
                    "nvgpu", "--certs", str(CHAIN), "--nonce", GPU_NONCE, "--rim",
                    str(DRIVER_RIM), "--rim", str(VBIOS_RIM), "--at", PINNED, "--offline",
                    "--policy", str(policy)]
        theirs_cli = [nv_python, str(runner), "check", *_inputs()]
        for argv in (ours_cli, theirs_cli):  # warm the byte-code caches and the OS
            run_once(argv, env, workdir)
        cli: dict[str, list[Timing]] = {"ours": [], "theirs": []}
        for _ in range(RUNS):
            cli["ours"].append(run_once(ours_cli, env, workdir))
            cli["theirs"].append(run_once(theirs_cli, env, workdir))
    full_name = f"{NV} attest() (report, chain, 2 RIMs, measurements)"
    result = [
        Row("vs NVIDIA: GPU report + chain + 2 RIMs, warm (higher is better)",
            round(ours_full, 1), "ops/s", full_name, round(theirs["full_ops"], 1),
            round(ours_full / theirs["full_ops"], 2)),
        Row("vs NVIDIA: GPU report + chain + 2 RIMs, warm, ccattest's cert caches emptied "
            "per call (higher is better)", round(ours_uncached, 1), "ops/s", full_name,
            round(theirs["full_ops"], 1),
            round(ours_uncached / theirs["full_ops"], 2)),
        Row("vs NVIDIA: GPU report + chain only, warm (higher is better)",
            round(ours_report, 1), "ops/s", f"{NV} parse + chain + report checks",
            round(theirs["report_and_chain_ops"], 1),
            round(ours_report / theirs["report_and_chain_ops"], 2)),
        Row("vs NVIDIA: GPU report + chain only, warm, ccattest's cert caches emptied per "
            "call (higher is better)", round(ours_report_uncached, 1), "ops/s",
            f"{NV} parse + chain + report checks",
            round(theirs["report_and_chain_ops"], 1),
            round(ours_report_uncached / theirs["report_and_chain_ops"], 2)),
    ]
    ours_ms, theirs_ms = (statistics.median(runs) * 1000 for runs in (cold_ours, cold_theirs))
    result.append(Row("vs NVIDIA: GPU full check, first call in a fresh process "
                      "(lower is better)", round(ours_ms, 1), "ms", full_name,
                      round(theirs_ms, 1), round(ours_ms / theirs_ms, 2)))
    ours_s, theirs_s = (statistics.median(t.seconds for t in cli[side])
                        for side in ("ours", "theirs"))
    result.append(Row("vs NVIDIA: ccattest verify (GPU + 2 RIMs) process, wall "
                      "(lower is better)", round(ours_s * 1000, 1), "ms",
                      f"a process running {NV} attest()", round(theirs_s * 1000, 1),
                      round(ours_s / theirs_s, 2)))
    ours_rss, theirs_rss = (max(t.max_rss_mib for t in cli[side]) for side in ("ours", "theirs"))
    result.append(Row("vs NVIDIA: ccattest verify (GPU + 2 RIMs) process, peak memory "
                      "(lower is better)", round(ours_rss, 1), "MiB", "the same NVIDIA process",
                      round(theirs_rss, 1), round(ours_rss / theirs_rss, 2)))
    return result
