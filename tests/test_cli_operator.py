"""What an operator meets first: verdicts, errors and help at an 80-column terminal.

Every test runs the real `ccattest` in a subprocess with COLUMNS=80, as a user would.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_process import SRC, ccattest

pytestmark = pytest.mark.slow

NONCE = "11" * 32
SNP_DIR = "sev-snp/virtee-sev/tests/certs_data/"
SNP_REPORT_DATA = ("d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581"
                   "0b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd")
SNP_MEASUREMENT = ("7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d"
                   "3e1a0dc39b2c60bd95b9c480cd81841f")
TDX_DIR = "tdx/dcap-qvl/sample/"
TDX_AT = "2025-07-19T10:00:34Z"
GPU_DIR = "gpu/nvtrust-lgv-2023/samples/"
GPU_RIMS = "gpu/nvtrust-lgv/samples/"
GPU_NONCE = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e"
# Python's reprs, which no person should have to read.
REPRS = re.compile(r"\bTrue\b|\bFalse\b|\bNone(Type)?\b|\['|\{'|matched true")
HEX_LINE = re.compile(r"\A[0-9a-f]{64,}\Z")


def cli(*args: str, cwd: Path, check: int | None = 0, columns: int = 80,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return ccattest(*args, cwd=cwd, check=check, columns=columns, env=env)


def assert_fits(text: str, width: int = 80, max_lines: int = 40) -> None:
    lines = text.splitlines()
    assert len(lines) <= max_lines, text
    for line in lines:  # only a whole hex value, printed to be copied, may be longer
        assert len(line) <= width or HEX_LINE.match(line), line


def assert_human(text: str) -> None:
    assert not REPRS.search(text), REPRS.search(text)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A software site's evidence, and a policy that accepts it."""
    path = tmp_path_factory.mktemp("operator")
    cli("collect", "--nonce", NONCE, "--key-dir", "keys", "--site", "site-1",
        "-o", "evidence.json", cwd=path)
    probe = cli("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys", "--json",
                cwd=path, check=1)
    measurement = json.loads(probe.stdout)["claims"]["measurement"]
    policy = cli("policy", "init", "--platform", "software", "--measurement", measurement,
                 cwd=path)
    (path / "policy.yaml").write_text(policy.stdout)
    return path


def snp_args(vectors: Path) -> tuple[str, ...]:
    return ("verify", str(vectors / SNP_DIR / "report_milan.hex"), "--platform", "snp",
            "--certs", str(vectors / SNP_DIR / "vcek_milan.der"),
            "--report-data", SNP_REPORT_DATA, "--at", "2026-11-26")


# --- verdicts ---------------------------------------------------------------------------------

@pytest.mark.vectors
def test_real_snp_verdict_fits_80_columns(vectors, tmp_path):
    policy = cli("policy", "init", "--platform", "snp", "--measurement", SNP_MEASUREMENT,
                 cwd=tmp_path).stdout
    (tmp_path / "snp.yaml").write_text(policy)
    proc = cli(*snp_args(vectors), "--policy", "snp.yaml", cwd=tmp_path)
    first, *rest = proc.stdout.splitlines()
    assert first == "snp evidence from an unnamed attester: AFFIRMING (accepted)"
    assert "checks passed" in rest[0] and "valid until" in proc.stdout
    assert_fits(proc.stdout, max_lines=8)
    assert_human(proc.stdout)
    verbose = cli(*snp_args(vectors), "--policy", "snp.yaml", "-v", cwd=tmp_path)
    assert "ok   signature:" in verbose.stdout and "ok   measurement:" in verbose.stdout
    assert_fits(verbose.stdout, max_lines=200)


@pytest.mark.vectors
def test_a_failed_measurement_is_printed_whole(vectors, tmp_path):
    (tmp_path / "empty.yaml").write_text(cli("policy", "init", "--platform", "snp",
                                             cwd=tmp_path).stdout)
    proc = cli(*snp_args(vectors), "--policy", "empty.yaml", cwd=tmp_path, check=3)
    assert "WARNING (accepted with reservations)" in proc.stdout
    assert SNP_MEASUREMENT in proc.stdout.splitlines()  # whole, on a line of its own
    assert_fits(proc.stdout)


@pytest.mark.vectors
def test_real_tdx_verdict_fits_80_columns(vectors, tmp_path):
    quote = str(vectors / TDX_DIR / "tdx_quote")
    collateral = str(vectors / TDX_DIR / "tdx_quote_collateral.json")
    from ccattest.platforms.tdx.abi import parse_quote

    report_data = parse_quote((vectors / TDX_DIR / "tdx_quote").read_bytes()).body.report_data
    args = ("verify", quote, "--collateral", collateral, "--at", TDX_AT,
            "--report-data", report_data.hex())
    probe = json.loads(cli(*args, "--json", cwd=tmp_path, check=1).stdout)
    mrtd = probe["claims"]["mr_td"]
    (tmp_path / "tdx.yaml").write_text(cli("policy", "init", "--platform", "tdx",
                                           "--measurement", mrtd, cwd=tmp_path).stdout)
    proc = cli(*args, "--policy", "tdx.yaml", cwd=tmp_path)
    assert proc.stdout.startswith("tdx evidence from an unnamed attester: AFFIRMING")
    assert_fits(proc.stdout)
    assert_human(proc.stdout)


@pytest.mark.vectors
def test_valid_until_is_bounded_by_the_collateral(vectors, tmp_path):
    """The dcap-qvl quote's PCK CRL ends a second after the pinned time: the verdict holds
    until then, not for the policy's hour; a second later the collateral has expired and
    the reader is told what to do."""
    from ccattest.platforms.tdx.abi import parse_quote

    quote = vectors / TDX_DIR / "tdx_quote"
    args = ("verify", str(quote), "--collateral",
            str(vectors / TDX_DIR / "tdx_quote_collateral.json"), "--report-data",
            parse_quote(quote.read_bytes()).body.report_data.hex())
    (tmp_path / "tdx.yaml").write_text("tdx:\n  allow: true\n")
    proc = cli(*args, "--at", TDX_AT, "--policy", "tdx.yaml", cwd=tmp_path, check=3)
    text = " ".join(proc.stdout.split())
    assert "valid until 2025-07-19T10:00:35Z (set by PCK CRL nextUpdate)" in text
    data = json.loads(cli(*args, "--at", TDX_AT, "--policy", "tdx.yaml", "--json",
                          cwd=tmp_path, check=3).stdout)
    assert data["expires_at"] == "2025-07-19T10:00:35+00:00"
    late = cli(*args, "--at", "2025-07-19T10:00:36Z", "--policy", "tdx.yaml", cwd=tmp_path,
               check=1)
    text = " ".join(late.stdout.split())
    assert "- collateral: " in text and "valid until" not in text
    assert ("fix: fetch fresh collateral (`ccattest collateral fetch`) or verify as of an "
            "earlier time with `--at`") in text
    assert_fits(late.stdout)


@pytest.mark.vectors
def test_an_8_gpu_verdict_fits_80_columns(vectors, tmp_path):
    report = bytes.fromhex((vectors / GPU_DIR / "attestationReport.txt").read_text().strip())
    chain = (vectors / GPU_DIR / "gpuAkCertChain.txt").read_bytes()
    entry = {"arch": "HOPPER", "certificate": base64.b64encode(chain).decode(),
             "evidence": base64.b64encode(report).decode(), "nonce": GPU_NONCE}
    (tmp_path / "gpus.json").write_text(json.dumps([entry] * 8))
    (tmp_path / "gpu.yaml").write_text(cli("policy", "init", "--platform", "nvgpu",
                                           cwd=tmp_path).stdout)
    proc = cli("verify", "gpus.json", "--platform", "nvgpu", "--nonce", GPU_NONCE,
               "--at", "2023-07-15", "--policy", "gpu.yaml",
               "--rim", str(vectors / GPU_RIMS / "Driver_RIM_test_no_gpu.swidtag"),
               "--rim", str(vectors / GPU_RIMS / "1010_0200_882_96005E0001_test_no_gpu.swidtag"),
               cwd=tmp_path, check=None)
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    assert proc.stdout.startswith("nvgpu evidence from an unnamed attester: ")
    assert "gpu1:" not in proc.stdout  # eight GPUs with one finding read as one line
    assert_fits(proc.stdout)
    assert_human(proc.stdout)


def test_valid_until_only_for_accepted_results(site):
    accepted = cli("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys",
                   "--policy", "policy.yaml", cwd=site)
    assert "valid until" in accepted.stdout
    rejected = cli("verify", "evidence.json", "--nonce", "22" * 32, "--key-dir", "keys",
                   "--policy", "policy.yaml", cwd=site, check=1)
    assert "valid until" not in rejected.stdout
    assert "CONTRAINDICATED (rejected: the evidence did not verify)" in " ".join(
        rejected.stdout.split())
    assert "- binding:" in rejected.stdout and "VerificationFailed" not in rejected.stdout
    assert_fits(rejected.stdout)


def test_a_closed_pipe_ends_quietly(site):
    command = (f"{sys.executable} -m ccattest verify evidence.json --nonce {NONCE} "
               "--key-dir keys --policy policy.yaml -v | head -2; "
               "echo \"rc=${PIPESTATUS[0]}\" >&2")
    env = {**os.environ, "HOME": str(site), "COLUMNS": "80", "PYTHONPATH": str(SRC)}
    proc = subprocess.run(["bash", "-c", command], cwd=site, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert len(proc.stdout.splitlines()) == 2
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr
    assert re.search(r"rc=(0|141)\b", proc.stderr), proc.stderr  # verdict code, or SIGPIPE


# --- help -------------------------------------------------------------------------------------

def test_help_reads_well_at_80_columns(tmp_path):
    verify = cli("verify", "--help", cwd=tmp_path).stdout
    assert_fits(verify, max_lines=80)
    assert "<bool>" not in verify and "--no-offline" not in verify
    for name in ("software", "snp", "tdx", "nvgpu", "nvgpu-nras", "azure-snp", "azure-tdx",
                 "maa", "ita"):
        assert name in verify
    collect = cli("collect", "--help", cwd=tmp_path).stdout
    description = collect.split("Options:")[0]
    assert "configfs-tsm" in description
    for name in ("software", "snp", "tdx", "nvgpu"):  # one item each, not a run-on paragraph
        assert re.search(rf"^  {name} +\S", description, re.M), description
    assert "software|snp|tdx|nvgpu" in collect
    demo = cli("demo", "--help", cwd=tmp_path).stdout
    assert "applies the configured action" in " ".join(demo.split())
    collateral = cli("collateral", "--help", cwd=tmp_path).stdout
    assert all(vendor in " ".join(collateral.split()) for vendor in ("AMD", "Intel", "NVIDIA"))
    for text in (collect, demo, collateral):
        assert_fits(text, max_lines=80)


# --- errors and bad input ---------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["snp", "tdx", "software", "maa", "ita", "nvgpu",
                                      "nvgpu-nras", "azure-snp", "azure-tdx"])
@pytest.mark.parametrize("content", [b"", b"\x00junk\xffbytes" * 3, b"CCSW\x01\x00"])
def test_junk_evidence_reports_its_format(site, platform, content):
    (site / "junk.bin").write_bytes(content)
    proc = cli("verify", "junk.bin", "--platform", platform, "--json", cwd=site, check=2)
    data = json.loads(proc.stdout)
    assert data["status"] == "none" and data["verified"] is False
    assert data["reasons"][0]["check"] == "format", data
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ")
    for beside_the_point in ("--identity", "--certs", "--jwks", "--nonce"):
        assert beside_the_point not in first


@pytest.mark.parametrize("args", [
    ("verify", "missing.json", "--nonce", NONCE),
    ("verify", "evidence.json", "--key-dir", "keys"),
    ("verify", "evidence.json", "--nonce", NONCE, "--platform", "sgx"),
    ("verify", "evidence.json", "--nonce", "zz", "--key-dir", "keys"),
    ("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys", "--policy", "nope.yaml"),
])
def test_json_answers_every_outcome(site, args):
    proc = cli(*args, "--json", cwd=site, check=2)
    data = json.loads(proc.stdout)  # exactly one object
    assert data["status"] == "none" and data["verified"] is False and data["reasons"]
    assert data["reasons"][0]["check"] == "input"
    assert proc.stderr.startswith("error: ")


def test_errors_say_what_to_do_on_one_unwrapped_line(site):
    long_name = "a-very-long-folder-name-that-would-wrap" * 3
    proc = cli("verify", f"{long_name}/evidence.json", "--nonce", NONCE, cwd=site, check=2,
               columns=40)
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: evidence file not found: ") and long_name in first
    assert "; check the path" in first


def test_platform_names_forgive_case_and_suggest(site):
    cli("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys", "--platform",
        "SOFTWARE", "--policy", "policy.yaml", cwd=site)
    typo = cli("verify", "evidence.json", "--nonce", NONCE, "--platform", "azure-snpp",
               cwd=site, check=2)
    assert "did you mean 'azure-snp'?" in typo.stderr
    for name in ("azure-snp", "azure-tdx", "maa", "nvgpu-nras", "ita"):
        assert name in typo.stderr


def test_token_verify_refuses_missing_and_binary_files(site):
    (site / "jwks.json").write_text(cli("token", "jwks", "--key-dir", "keys", cwd=site).stdout)
    missing = cli("token", "verify", "nothing.jwt", "--jwks", "jwks.json", cwd=site, check=2)
    assert missing.stderr.startswith("error: token file not found: nothing.jwt")
    (site / "binary.jwt").write_bytes(bytes(range(256)))
    binary = cli("token", "verify", "binary.jwt", "--jwks", "jwks.json", cwd=site, check=2)
    assert binary.stderr.startswith("error: binary.jwt is not a token")
    assert "Traceback" not in binary.stderr


@pytest.mark.parametrize("args", [
    ("--platform", "snp", "--measurement", "null"),
    ("--platform", "tdx", "--measurement", "abcd"),
    ("--platform", "nvgpu", "--measurement", "ab" * 48),
])
def test_policy_init_checks_measurements(tmp_path, args):
    proc = cli("policy", "init", *args, cwd=tmp_path, check=2)
    assert proc.stdout == "" and proc.stderr.startswith("error: ")


def test_policy_init_measurement_goes_where_it_is_documented(tmp_path):
    text = cli("policy", "init", "--platform", "SNP", "--platform", "nvgpu", "--measurement",
               "AB" * 48, cwd=tmp_path).stdout
    assert f"measurements: [{'ab' * 48}]" in text and "nvgpu:" in text


# --- speed a person feels -----------------------------------------------------------------------

@pytest.mark.vectors
def test_no_http_client_when_the_collateral_is_given(vectors, tmp_path):
    """With --certs, a collateral file or --rim files nothing is fetched, so the HTTP client
    is never created: httpx is not even imported (python -X importtime lists every import)."""
    from ccattest.platforms.tdx.abi import parse_quote

    quote = vectors / TDX_DIR / "tdx_quote"
    (tmp_path / "any.yaml").write_text("snp:\n  allow: true\ntdx:\n  allow: true\n"
                                       "nvgpu:\n  allow: true\n  require_cc_mode: false\n")
    commands = [
        snp_args(vectors),
        ("verify", str(quote), "--collateral", str(vectors / TDX_DIR / "tdx_quote_collateral.json"),
         "--at", TDX_AT, "--report-data", parse_quote(quote.read_bytes()).body.report_data.hex()),
        ("verify", str(vectors / GPU_DIR / "attestationReport.txt"), "--platform", "nvgpu",
         "--certs", str(vectors / GPU_DIR / "gpuAkCertChain.txt"), "--nonce", GPU_NONCE,
         "--at", "2023-07-15",
         "--rim", str(vectors / GPU_RIMS / "Driver_RIM_test_no_gpu.swidtag"),
         "--rim", str(vectors / GPU_RIMS / "1010_0200_882_96005E0001_test_no_gpu.swidtag")),
    ]
    for args in commands:
        proc = cli(*args, "--policy", "any.yaml", cwd=tmp_path, check=None,
                   env={"PYTHONPROFILEIMPORTTIME": "1"})
        assert proc.returncode in (0, 3), proc.stdout + proc.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "ccattest.cli.verify" in imported  # the profile did list the imports
        assert not {name for name in imported if name.split(".")[0] == "httpx"}, args[1]


# --- a policy from known-good evidence ------------------------------------------------------------

@pytest.mark.vectors
def test_policy_init_from_real_evidence_accepts_exactly_it(vectors, tmp_path):
    derived = cli("policy", "init", "--from", *snp_args(vectors)[1:], cwd=tmp_path).stdout
    assert SNP_MEASUREMENT in derived and "products: [Milan]" in derived
    (tmp_path / "derived.yaml").write_text(derived)
    cli("policy", "check", "derived.yaml", cwd=tmp_path)
    proc = cli(*snp_args(vectors), "--policy", "derived.yaml", cwd=tmp_path)
    assert "AFFIRMING (accepted)" in proc.stdout
    (tmp_path / "stricter.yaml").write_text(derived.replace("min_guest_svn: 0",
                                                            "min_guest_svn: 1"))
    cli(*snp_args(vectors), "--policy", "stricter.yaml", cwd=tmp_path, check=1)


def test_policy_init_from_software_evidence(site):
    derived = cli("policy", "init", "--from", "evidence.json", "--nonce", NONCE,
                  "--key-dir", "keys", cwd=site).stdout
    (site / "derived.yaml").write_text(derived)
    cli("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys",
        "--policy", "derived.yaml", cwd=site)
    refused = cli("policy", "init", "--from", "evidence.json", "--nonce", "22" * 32,
                  "--key-dir", "keys", cwd=site, check=1)  # evidence that does not verify
    assert refused.stdout == "" and refused.stderr.startswith("error: ")
    both = cli("policy", "init", "--from", "evidence.json", "--measurement", "ab" * 48,
               cwd=site, check=2)
    assert "--from" in both.stderr.splitlines()[0]


# --- a GPU can reach affirming --------------------------------------------------------------------

@pytest.mark.vectors
def test_a_real_gpu_report_with_its_declared_cc_state_is_affirming(vectors, tmp_path):
    report, chain = vectors / GPU_DIR / "attestationReport.txt", vectors / GPU_DIR / \
        "gpuAkCertChain.txt"
    (tmp_path / "gpu.yaml").write_text(cli("policy", "init", "--platform", "nvgpu",
                                           cwd=tmp_path).stdout)
    verify = ("verify", "--report-data", GPU_NONCE, "--at", "2023-07-15", "--policy",
              "gpu.yaml", "--rim", str(vectors / GPU_RIMS / "Driver_RIM_test_no_gpu.swidtag"),
              "--rim", str(vectors / GPU_RIMS / "1010_0200_882_96005E0001_test_no_gpu.swidtag"))
    cli("collect", "--platform", "nvgpu", "--report", str(report), "--certs", str(chain),
        "--cc-mode", "on", "--devtools", "off", "-o", "declared.json", cwd=tmp_path)
    evidence = json.loads((tmp_path / "declared.json").read_text())
    assert evidence["log"] == [{"type": "nvgpu/cc-state", "cc_mode": "on", "devtools": "off",
                                "environment": "unknown"}]
    affirming = cli(*verify[:1], "declared.json", *verify[1:], cwd=tmp_path)
    assert "AFFIRMING (accepted)" in affirming.stdout
    cli("collect", "--platform", "nvgpu", "--report", str(report), "--certs", str(chain),
        "-o", "raw.json", cwd=tmp_path)
    warning = cli(*verify[:1], "raw.json", *verify[1:], cwd=tmp_path, check=3)
    assert "cc_mode: CC mode not reported" in " ".join(warning.stdout.split())
    devtools = cli("collect", "--platform", "nvgpu", "--report", str(report), "--certs",
                   str(chain), "--cc-mode", "on", "--devtools", "yes", cwd=tmp_path, check=2)
    assert devtools.stderr.startswith("error: --devtools is on or off")
    wrong = cli("collect", "--platform", "snp", "--report", str(report), cwd=tmp_path, check=2)
    assert "wrap a GPU report" in wrong.stderr.splitlines()[0]
    no_nonce = cli("collect", "--platform", "software", cwd=tmp_path, check=2)
    assert no_nonce.stderr.startswith("error: no --nonce")


@pytest.mark.parametrize(("args", "command"), [
    (("verify", "--bogus"), "ccattest verify"),
    (("policy", "init", "--measurement"), "ccattest policy init"),
    (("polcy",), "ccattest"),
    (("policy", "ini"), "ccattest policy"),
])
def test_usage_errors_are_one_line_with_what_to_do(tmp_path, args, command):
    proc = cli(*args, cwd=tmp_path, check=2)
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ") and line.endswith(f"; see `{command} --help`")
    assert "Usage:" not in proc.stderr and "Traceback" not in proc.stderr


def test_usage_errors_answer_json_too(tmp_path):
    proc = cli("verify", "evidence.json", "--json", "--bogus", cwd=tmp_path, check=2)
    data = json.loads(proc.stdout)
    assert data["status"] == "none" and data["reasons"][0]["check"] == "input"
