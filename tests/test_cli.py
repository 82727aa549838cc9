"""The command line through real subprocesses, as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .cli_process import ccattest

pytestmark = pytest.mark.slow

NONCE = "11" * 32


def run(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    return ccattest(*args, cwd=cwd, check=check, columns=200)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A key dir, one evidence file, its measurement, and policies that affirm / warn."""
    path = tmp_path_factory.mktemp("cli")
    run("collect", "--nonce", NONCE, "--key-dir", "keys", "--site", "site-1",
        "--setting", "job=fedavg", "-o", "evidence.json", cwd=path)
    probe = run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys", "--json",
                cwd=path, check=1)
    measurement = json.loads(probe.stdout)["claims"]["measurement"]
    policy = run("policy", "init", "--platform", "software", "--measurement", measurement,
                 cwd=path)
    (path / "policy.yaml").write_text(policy.stdout)
    (path / "warn.yaml").write_text("software:\n  allow: true\n")
    return path


def test_help_reads_well(tmp_path):
    proc = run("--help", cwd=tmp_path)
    for command in ("collect", "verify", "policy", "token", "demo", "platforms"):
        assert command in proc.stdout
    assert "Exit status: 0 affirming, 3 warning, 1 rejected" in run(
        "verify", "--help", cwd=tmp_path).stdout
    assert run("--version", cwd=tmp_path).stdout.startswith("ccattest ")


def test_collect_creates_the_dev_root_once(workspace):
    assert (workspace / "keys" / "root.pem").is_file()
    evidence = json.loads((workspace / "evidence.json").read_text())
    assert evidence["platform"] == "software" and evidence["attester"] == "site-1"
    assert (evidence["log"][-1]["kind"], evidence["log"][-1]["name"]) == ("setting", "job")
    root = (workspace / "keys" / "root.pem").read_bytes()
    run("collect", "--nonce", NONCE, "--key-dir", "keys", "--site", "site-1", "-o", "again.json",
        cwd=workspace)
    assert (workspace / "keys" / "root.pem").read_bytes() == root


def test_verify_affirming_json_shape(workspace):
    proc = run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys",
               "--policy", "policy.yaml", "--json", cwd=workspace, check=0)
    data = json.loads(proc.stdout)
    assert {"platform", "status", "verified", "claims", "reasons", "collateral"} <= set(data)
    assert data["status"] == "affirming" and data["verified"] is True
    assert data["collateral"]["software_root"]["source"] == "configured"


def test_verify_human_output_has_a_table(workspace):
    proc = run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys",
               "--policy", "policy.yaml", cwd=workspace, check=0)
    assert "software evidence from site-1: AFFIRMING (accepted)" in proc.stdout
    assert "platform_allowed" not in proc.stdout and "valid until" in proc.stdout
    verbose = run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys",
                  "--policy", "policy.yaml", "-v", cwd=workspace, check=0)
    assert "ok   platform_allowed" in verbose.stdout


def test_verify_with_root_pem_and_pinned_time(workspace):
    run("verify", "evidence.json", "--nonce", NONCE, "--root", "keys/root.pem",
        "--policy", "policy.yaml", "--at", "2027-01-01T00:00:00Z", cwd=workspace, check=0)


def test_verify_exit_codes(workspace):
    run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys",
        "--policy", "warn.yaml", cwd=workspace, check=3)
    wrong = run("verify", "evidence.json", "--nonce", "22" * 32, "--key-dir", "keys",
                "--policy", "policy.yaml", "--json", cwd=workspace, check=1)
    data = json.loads(wrong.stdout)
    assert data["verified"] is False
    assert "report_data does not bind" in data["reasons"][0]["message"]
    run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys", cwd=workspace,
        check=1)  # default policy: software not allowed
    run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys",
        "--at", "2040-01-01", cwd=workspace, check=1)  # certificates expired


def test_verify_unusable_input_exits_2(workspace):
    (workspace / "junk.bin").write_bytes(b"\x00\x01garbage")
    proc = run("verify", "junk.bin", "--nonce", NONCE, "--key-dir", "keys", cwd=workspace,
               check=2)
    assert proc.stderr.startswith("error: cannot tell the platform of this evidence; pass "
                                  "--platform\n")
    short = run("verify", "evidence.json", "--nonce", "ab", "--key-dir", "keys",
                cwd=workspace, check=2)
    assert "nonce has the wrong length" in short.stderr
    run("verify", "evidence.json", "--key-dir", "keys", cwd=workspace, check=2)
    run("verify", "missing.json", "--nonce", NONCE, "--key-dir", "keys", cwd=workspace,
        check=2)
    run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "nokeys", cwd=workspace,
        check=2)
    run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys", "--at", "soon",
        cwd=workspace, check=2)
    run("verify", "--bogus-flag", cwd=workspace, check=2)


def test_truncated_report_exits_2(workspace):
    evidence = json.loads((workspace / "evidence.json").read_text())
    evidence["report"] = evidence["report"][:40]
    (workspace / "short.json").write_text(json.dumps(evidence))
    proc = run("verify", "short.json", "--nonce", NONCE, "--key-dir", "keys", "--json",
               cwd=workspace, check=2)
    assert json.loads(proc.stdout)["status"] == "none"


def test_bare_hex_report_with_identity(workspace):
    import base64

    evidence = json.loads((workspace / "evidence.json").read_text())
    report = base64.b64decode(evidence["report"])
    (workspace / "report.hex").write_text(report.hex())
    # a bare report carries no certificate: unusable without its endorsements
    proc = run("verify", "report.hex", "--nonce", NONCE, "--identity", "site-1",
               "--key-dir", "keys", cwd=workspace, check=2)
    assert "no site certificate" in proc.stderr or "site certificate" in proc.stdout


def test_identity_pinning(workspace):
    run("verify", "evidence.json", "--nonce", NONCE, "--identity", "site-2",
        "--key-dir", "keys", "--policy", "policy.yaml", cwd=workspace, check=1)


def test_policy_check(workspace):
    assert "ok" in run("policy", "check", "policy.yaml", cwd=workspace).stdout
    (workspace / "bad.yaml").write_text("software:\n  alow: true\n")
    proc = run("policy", "check", "bad.yaml", cwd=workspace, check=2)
    assert "line 2, software.alow: unknown key" in proc.stderr
    run("policy", "init", "--platform", "tpm", cwd=workspace, check=2)


def test_ear_token_round_trip(workspace):
    run("verify", "evidence.json", "--nonce", NONCE, "--key-dir", "keys",
        "--policy", "policy.yaml", "--ear", "result.jwt", cwd=workspace, check=0)
    jwks = run("token", "jwks", "--key-dir", "keys", cwd=workspace).stdout
    (workspace / "jwks.json").write_text(jwks)
    claims = json.loads(run("token", "verify", "result.jwt", "--jwks", "jwks.json",
                            cwd=workspace).stdout)
    assert claims["submods"]["software"]["ear.status"] == "affirming"
    token = (workspace / "result.jwt").read_text().strip()
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    proc = run("token", "verify", tampered, "--jwks", "jwks.json", cwd=workspace, check=1)
    assert "signature" in proc.stderr
    run("token", "verify", "result.jwt", "--jwks", "jwks.json", "--at", "2099-01-01",
        cwd=workspace, check=1)
    if "sub" in claims:
        run("token", "verify", "result.jwt", "--jwks", "jwks.json", "--subject", claims["sub"],
            cwd=workspace, check=0)
    relabelled = run("token", "verify", "result.jwt", "--jwks", "jwks.json", "--subject",
                     "another-site", cwd=workspace, check=1)
    assert "token is about another attester" in relabelled.stderr


def test_platforms_and_unsupported(workspace):
    assert "software" in run("platforms", cwd=workspace).stdout
    no_snp = run("collect", "--platform", "snp", "--nonce", NONCE, cwd=workspace, check=2)
    assert "no SEV-SNP guest interface" in no_snp.stderr  # this machine is no SEV-SNP guest
    no_tdx = run("collect", "--platform", "tdx", "--nonce", NONCE, cwd=workspace, check=2)
    assert no_tdx.stderr.startswith("error: ") and "TDX" in no_tdx.stderr
    run("collect", "--platform", "nvgpu", "--nonce", NONCE, cwd=workspace, check=2)


def test_demo(tmp_path):
    proc = run("demo", "--local", "--work-dir", "demo", cwd=tmp_path, check=0)
    assert "2 of 3 sites affirmed" in proc.stdout
    assert "site-3" in proc.stdout and "CONTRAINDICATED" in proc.stdout


@pytest.mark.vectors
def test_verify_real_snp_report_with_certs(vectors, tmp_path):
    data = vectors / "sev-snp/virtee-sev/tests/certs_data"
    report_data = ("d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581"
                   "0b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd")
    measurement = ("7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d"
                   "3e1a0dc39b2c60bd95b9c480cd81841f")
    policy = run("policy", "init", "--platform", "snp", "--measurement", measurement,
                 cwd=tmp_path).stdout
    (tmp_path / "snp.yaml").write_text(policy)
    args = ("verify", str(data / "report_milan.hex"), "--platform", "snp", "--certs",
            str(data / "vcek_milan.der"), "--report-data", report_data, "--at", "2026-11-26",
            "--json")
    proc = run(*args, "--policy", "snp.yaml", cwd=tmp_path, check=0)
    claims = json.loads(proc.stdout)["claims"]
    assert claims["measurement"] == measurement and claims["product"] == "Milan"
    run(*args, cwd=tmp_path, check=1)  # no policy: SNP not accepted
    run(*args[:-3], "--at", "2031-01-01", "--policy", "snp.yaml", cwd=tmp_path, check=1)
    run("verify", str(data / "report_milan.hex"), "--platform", "snp", "--report-data",
        report_data, "--at", "2026-11-26", cwd=tmp_path, check=2)  # no VCEK: unusable


@pytest.mark.vectors
def test_collateral_fetch_export_import_then_verify_offline(vectors, tmp_path):
    from ccattest.testing.kds_server import KdsServer

    data = vectors / "sev-snp/virtee-sev/tests/certs_data"
    report_data = ("d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581"
                   "0b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd")
    chip = bytes.fromhex((data / "report_milan.hex").read_text().strip())[0x1A0:0x1E0]
    with KdsServer() as kds:
        kds.serve_vcek("Milan", chip, {"blSPL": 3, "teeSPL": 0, "snpSPL": 8, "ucodeSPL": 115},
                       (data / "vcek_milan.der").read_bytes())
        kds.serve_chain("Milan", (data / "cert_chain_milan").read_bytes())
        run("collateral", "fetch", str(data / "report_milan.hex"), "--product", "Milan",
            "--cache", "online-cache", "--kds", kds.url, cwd=tmp_path)
        assert len(kds.requests) == 2
    run("collateral", "export", "bundle.json", "--cache", "online-cache", cwd=tmp_path)
    run("collateral", "import", "bundle.json", "--cache", "airgap-cache", cwd=tmp_path)
    args = ("verify", str(data / "report_milan.hex"), "--platform", "snp", "--report-data",
            report_data, "--at", "2026-11-26", "--offline", "--json")
    for source in ("airgap-cache", "bundle.json"):
        proc = run(*args, "--collateral", source, cwd=tmp_path, check=1)  # no policy: rejected
        assert json.loads(proc.stdout)["verified"] is True
    empty = run(*args, "--collateral", "empty-cache", cwd=tmp_path, check=2)
    assert "offline" in empty.stderr.lower()


TDX_REPORT_DATA = ("9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
                   "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20")
TDX_MRTD = ("91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
            "de03ae6dc5f87f27428b2538873118b7")


@pytest.mark.vectors
def test_verify_real_tdx_quote_with_collateral(vectors, tmp_path):
    sample = vectors / "tdx/dcap-qvl/sample"
    (tmp_path / "tdx.yaml").write_text(run("policy", "init", "--platform", "tdx",
                                           "--measurement", TDX_MRTD, cwd=tmp_path).stdout)
    args = ("verify", str(sample / "tdx_quote"), "--collateral",
            str(sample / "tdx_quote_collateral.json"), "--report-data", TDX_REPORT_DATA,
            "--json")
    proc = run(*args, "--at", "2025-07-19T10:00:34Z", "--policy", "tdx.yaml", cwd=tmp_path,
               check=0)  # the platform is detected from the quote header
    claims = json.loads(proc.stdout)["claims"]
    assert claims["tcb_status"] == "UpToDate" and claims["mr_td"] == TDX_MRTD
    expired = run(*args, "--at", "2026-11-26", "--policy", "tdx.yaml", cwd=tmp_path, check=1)
    assert "expired" in json.loads(expired.stdout)["reasons"][0]["message"]


@pytest.mark.vectors
def test_tdx_collateral_fetch_from_a_local_pcs_then_verify_offline(vectors, tmp_path):
    from ccattest.platforms.tdx.collateral_json import collateral_from_json
    from ccattest.testing.pcs_server import PcsServer

    sample = vectors / "tdx/dcap-qvl/sample"
    collateral = collateral_from_json((sample / "tdx_quote_collateral.json").read_bytes())
    with PcsServer() as pcs:
        pcs.serve_tcb_info("b0c06f000000", collateral.tcb_info, collateral.tcb_info_issuer_chain)
        pcs.serve_qe_identity(collateral.qe_identity, collateral.qe_identity_issuer_chain)
        pcs.serve_pck_crl("platform", collateral.pck_crl, collateral.pck_crl_issuer_chain)
        pcs.serve_root_ca_crl(collateral.root_ca_crl)
        fetched = run("collateral", "fetch", "--platform", "tdx", str(sample / "tdx_quote"),
                      "--cache", "cache", "--url", pcs.url, cwd=tmp_path, check=None)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    # (the sample's collateral expired in 2025, so `collateral export`, which bundles what is
    # valid now, would carry none of it: the cache folder is used directly)
    proc = run("verify", str(sample / "tdx_quote"), "--platform", "tdx", "--collateral",
               "cache", "--offline", "--report-data", TDX_REPORT_DATA, "--at",
               "2025-07-19T10:00:34Z", "--json", cwd=tmp_path, check=1)  # no policy
    assert json.loads(proc.stdout)["verified"] is True


@pytest.mark.vectors
def test_verify_ita_token(vectors, tmp_path):
    ita = vectors / "ita/trustauthority-client-for-java/extracted"
    jwks = json.loads((ita / "validJwks.json").read_text())
    import base64

    root_der = base64.b64decode(jwks["keys"][0]["x5c"][-1])
    (tmp_path / "ita-root.der").write_bytes(root_der)
    args = ("verify", str(ita / "validToken.jwt"), "--platform", "ita", "--jwks",
            str(ita / "validJwks.json"), "--root", "ita-root.der", "--at",
            "2023-12-21T05:33:00Z", "--json")
    proc = run(*args, "--allow-unbound", cwd=tmp_path, check=1)  # an SGX token: not appraised
    data = json.loads(proc.stdout)
    assert data["verified"] is True and data["claims"]["attester_type"] == "SGX"
    assert data["claims"]["binding"] == "not_checked"
    run(*args, cwd=tmp_path, check=2)  # no --nonce/--report-data and no --allow-unbound
    bad = run("verify", str(ita / "validToken.jwt"), "--platform", "ita", "--jwks",
              str(ita / "leafVerificationFailureJWKS.json"), "--root", "ita-root.der", "--at",
              "2023-12-21T05:33:00Z", "--allow-unbound", "--json", cwd=tmp_path, check=1)
    assert json.loads(bad.stdout)["verified"] is False


GPU_NONCE = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e"


@pytest.mark.vectors
def test_verify_real_gpu_report_with_rims(vectors, tmp_path):
    lgv, lgv2023 = vectors / "gpu/nvtrust-lgv/samples", vectors / "gpu/nvtrust-lgv-2023/samples"
    (tmp_path / "gpu.yaml").write_text("nvgpu:\n  allow: true\n  require_cc_mode: false\n")
    args = ("verify", str(lgv2023 / "attestationReport.txt"), "--certs",
            str(lgv2023 / "gpuAkCertChain.txt"), "--nonce", GPU_NONCE, "--at", "2023-07-15",
            "--json")
    rims = ("--rim", str(lgv / "Driver_RIM_test_no_gpu.swidtag"),
            "--rim", str(lgv / "1010_0200_882_96005E0001_test_no_gpu.swidtag"))
    proc = run(*args, *rims, "--policy", "gpu.yaml", cwd=tmp_path, check=0)  # detected by magic
    claims = json.loads(proc.stdout)["claims"]
    assert claims["arch"] == "HOPPER" and claims["measurements"]["matched"] is True
    no_rims = run(*args, "--policy", "gpu.yaml", "--offline", cwd=tmp_path, check=1)
    assert any("RIM" in r["message"] for r in json.loads(no_rims.stdout)["reasons"]
               if not r["passed"])
    wrong = run(*args[:4], "--nonce", "00" * 32, *args[6:], *rims, "--policy", "gpu.yaml",
                cwd=tmp_path, check=1)
    assert json.loads(wrong.stdout)["verified"] is False


def test_verify_nras_result(tmp_path):
    from ccattest.testing.nras import NrasFixture

    fixture = NrasFixture.create()
    (tmp_path / "eat.json").write_text(fixture.eat())
    (tmp_path / "jwks.json").write_text(json.dumps(fixture.jwks()))
    at = fixture.now.isoformat()
    (tmp_path / "gpu.yaml").write_text("nvgpu:\n  allow: true\n  require_cc_mode: false\n")
    proc = run("verify", "eat.json", "--platform", "nvgpu-nras", "--jwks", "jwks.json",
               "--nonce", fixture.nonce.hex(), "--at", at, "--policy", "gpu.yaml", "--json",
               cwd=tmp_path, check=None)
    data = json.loads(proc.stdout)
    assert data["verified"] is True and data["claims"]["overall_result"] is True
    run("verify", "eat.json", "--platform", "nvgpu-nras", "--jwks", "jwks.json", "--nonce",
        "11" * 32, "--at", at, "--json", cwd=tmp_path, check=1)
    run("verify", "eat.json", "--platform", "nvgpu-nras", "--nonce", fixture.nonce.hex(),
        cwd=tmp_path, check=2)  # no --jwks


@pytest.mark.vectors
def test_gpu_collateral_fetch_asks_the_rim_service_for_the_reports_rims(vectors, tmp_path):
    from ccattest.testing.nvidia_server import NvidiaServer

    lgv, lgv2023 = vectors / "gpu/nvtrust-lgv/samples", vectors / "gpu/nvtrust-lgv-2023/samples"
    with NvidiaServer() as server:
        server.serve_rim("NV_GPU_DRIVER_GH100_545.00",
                         (lgv / "Driver_RIM_test_no_gpu.swidtag").read_bytes())
        server.serve_rim("NV_GPU_VBIOS_1010_0200_882_96005E0001",
                         (lgv / "1010_0200_882_96005E0001_test_no_gpu.swidtag").read_bytes())
        proc = run("collateral", "fetch", "--platform", "nvgpu",
                   str(lgv2023 / "attestationReport.txt"), "--cache", "cache", "--url",
                   server.url, cwd=tmp_path, check=None)
        paths = [request.path for request in server.requests]
    assert "/v1/rim/NV_GPU_DRIVER_GH100_545.00" in paths
    # NVIDIA's 2023 test RIMs were signed by a certificate that has expired since: a RIM
    # that does not verify now is never cached.
    assert proc.returncode == 1 and "RIM" in proc.stderr
    assert not list((tmp_path / "cache").glob("*"))


AZURE_MEASUREMENT = ("6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6"
                     "c79b75a5eb77fc769959f4aeb2f9401e")


@pytest.mark.vectors
def test_verify_azure_snp_cvm_from_trustee_json(vectors, tmp_path):
    evidence = vectors / "azure/trustee/deps/verifier/test_data/az-snp-vtpm/evidence-v1.json"
    (tmp_path / "snp.yaml").write_text(run("policy", "init", "--platform", "snp",
                                           "--measurement", AZURE_MEASUREMENT,
                                           cwd=tmp_path).stdout)
    args = ("verify", str(evidence), "--platform", "azure-snp", "--at", "2025-10-01",
            "--json", "--policy", "snp.yaml")
    proc = run(*args, "--report-data", b"challenge".hex(), cwd=tmp_path, check=0)
    claims = json.loads(proc.stdout)["claims"]
    assert claims["snp"]["measurement"] == AZURE_MEASUREMENT and claims["pcrs"]
    wrong = run(*args, "--report-data", b"another".hex(), cwd=tmp_path, check=1)
    assert json.loads(wrong.stdout)["verified"] is False
    tdx = vectors / "azure/trustee/deps/verifier/test_data/az-tdx-vtpm/evidence-v1.json"
    run("verify", str(tdx), "--platform", "azure-tdx", "--report-data", b"challenge".hex(),
        "--at", "2025-10-01", cwd=tmp_path, check=2)  # no TCB collateral: unusable
    chain_only = run("verify", str(tdx), "--platform", "azure-tdx", "--report-data",
                     b"challenge".hex(), "--at", "2025-10-01", "--tdx-chain-only", "--json",
                     cwd=tmp_path, check=1)  # verified, but no TCB status: not affirmed
    assert json.loads(chain_only.stdout)["verified"] is True


def test_verify_maa_token(tmp_path):
    from ccattest.testing.maa import MaaFixture

    fixture = MaaFixture.create()
    evidence, nonce = fixture.evidence()
    (tmp_path / "token.jwt").write_bytes(evidence.report)
    (tmp_path / "jwks.json").write_text(json.dumps(fixture.jwks()))
    (tmp_path / "azure.yaml").write_text("azure:\n  allow: true\n")
    args = ("verify", "token.jwt", "--platform", "maa", "--jwks", "jwks.json", "--at",
            fixture.now.isoformat(), "--json", "--policy", "azure.yaml")
    proc = run(*args, "--instance", fixture.instance, "--report-data", nonce.hex(),
               cwd=tmp_path, check=None)
    data = json.loads(proc.stdout)
    assert data["verified"] is True and data["claims"]["binding"] in ("runtime_data",
                                                                       "report_data")
    other = run(*args, "--instance", "https://elsewhere.attest.azure.net", "--report-data",
                nonce.hex(), cwd=tmp_path, check=1)  # jku outside the allow list
    assert json.loads(other.stdout)["verified"] is False
    run(*args, "--report-data", nonce.hex(), cwd=tmp_path, check=2)  # no --instance
