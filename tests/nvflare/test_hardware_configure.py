"""Provisioning for real CC hardware: `ccattest nvflare configure --platform ...` and the
bundles it writes (cc_config sections, starter policy, no reference values yet)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccattest.errors import ConfigError
from ccattest.mesh.config import build_agent, load_cc_config
from ccattest.policy import load_policy
from ccattest.provisioning import (
    HARDWARE,
    FederationRequest,
    SiteRequest,
    hardware_policy,
    provision,
)

from ..cli_process import ccattest

MAA = "sharedeus2.eus2.attest.azure.net"
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _kits(prod: Path) -> Path:
    """Three startup kits as `nvflare poc prepare` lays them out (only what find_kit reads)."""
    (prod / "server" / "startup").mkdir(parents=True)
    (prod / "server" / "startup" / "fed_server.json").write_text(
        '{"servers": [{"identity": "server"}]}')
    for client in ("site-1", "site-2"):
        (prod / client / "startup").mkdir(parents=True)
        (prod / client / "startup" / "fed_client.json").write_text("{}")
    (prod / "admin@nvidia.com" / "startup").mkdir(parents=True)  # not a site: skipped
    return prod




def _provision(tmp_path: Path, platforms: list[str], **kwargs: object) -> dict[str, Path]:
    request = FederationRequest([SiteRequest("server"), SiteRequest("site-1"),
                                 SiteRequest("site-2", cc_enabled=False)],
                                platforms=platforms, **kwargs)  # type: ignore[arg-type]
    bundles = {site.name: tmp_path / site.name for site in request.sites}
    assert provision(request, bundles, tmp_path / "root", NOW) == {}  # no reference yet
    return bundles


def test_configure_poc_for_snp_with_gpu(tmp_path):
    prod = _kits(tmp_path / "prod")
    proc = ccattest("nvflare", "configure", "--poc", "prod", "--platform", "SNP",
                     "--platform", "nvgpu", "--not-cc", "site-2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "development TEE" not in proc.stdout
    assert "site-1 (client): prod/site-1/local/cc  snp, nvgpu" in proc.stdout
    assert "site-2 (client): prod/site-2/local/cc  not CC-enabled" in proc.stdout
    assert "TO DO before starting" in proc.stdout
    assert "snp.measurements" in proc.stdout
    assert "ccattest policy init --from EVIDENCE" in proc.stdout
    assert all(len(line) <= 80 for line in proc.stdout.splitlines())

    config, base = load_cc_config(prod / "site-1" / "local" / "cc" / "cc_config.yaml")
    assert config.collect.snp is not None and config.collect.nvgpu is not None
    assert config.collect.software is None
    assert config.collect.snp.tsm_root == "/sys/kernel/config/tsm/report"
    assert config.verify.snp is not None and config.verify.nvgpu is not None
    assert config.verify.nvgpu.rim_cache == "collateral" and config.verify.software is None
    assert config.roster.sites["server"].platforms == ["snp", "nvgpu"]
    assert not config.roster.sites["site-2"].cc_enabled
    policy = load_policy(base / config.policy)
    assert policy.snp is not None and policy.nvgpu is not None
    assert policy.software is None and policy.snp.measurements == []
    assert policy.common.required_platforms == ["snp", "nvgpu"]
    agent = build_agent(config, base)  # builds without touching any device
    assert [a.platform for a in agent.attesters] == ["snp", "nvgpu"]
    assert sorted(agent.verifiers) == ["nvgpu", "snp"]
    site2, _ = load_cc_config(prod / "site-2" / "local" / "cc" / "cc_config.yaml")
    assert site2.collect.snp is None and site2.verify.snp is not None
    # No software-TEE key: only the record's keys and the receipt key, owner-only.
    keys = prod / "site-1" / "local" / "cc" / "keys"
    assert sorted(p.name for p in keys.iterdir()) == ["record-log.key", "record-witness.key",
                                                     "result.key.pem"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in keys.iterdir())
    assert config.record is not None and config.record.federation == site2.record.federation


def test_configure_without_platform_warns_top_and_bottom(tmp_path):
    _kits(tmp_path / "prod")
    proc = ccattest("nvflare", "configure", "--poc", "prod", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    warning = ("development TEE: no hardware guarantee — do not use in production; pass "
               "--platform for real hardware")
    assert text.startswith(warning) and text.endswith(warning)
    assert "measurement" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--platform", "snp", "--platform", "tdx"], "one CPU TEE, not several"),
    (["--platform", "aci"], "--maa-endpoint"),
    (["--platform", "sgx"], "unknown platform 'sgx'"),
])
def test_configure_refuses_impossible_hardware(tmp_path, args, message):
    _kits(tmp_path / "prod")
    proc = ccattest("nvflare", "configure", "--poc", "prod", *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("platforms", "required", "sections", "verifiers"), [
    (["tdx"], ["tdx"], ["tdx"], ["tdx"]),
    (["azure-snp", "nvgpu"], ["azure-snp", "nvgpu"], ["snp", "nvgpu", "azure"],
     ["azure-snp", "azure-tdx", "nvgpu"]),
    (["azure-tdx"], ["azure-tdx"], ["tdx", "azure"], ["azure-snp", "azure-tdx", "tdx"]),
    (["aci"], ["maa"], ["azure"], ["maa"]),
])
def test_every_platform_gets_its_sections(tmp_path, platforms, required, sections, verifiers):
    bundles = _provision(tmp_path, platforms, maa_endpoint=MAA)
    config, base = load_cc_config(bundles["site-1"] / "cc_config.yaml")
    policy = load_policy(base / "policy.yaml")
    assert policy.common.required_platforms == required
    assert policy.sections() == sections
    agent = build_agent(config, base)
    assert sorted(agent.verifiers) == verifiers
    # The Azure CVM attester learns SNP or TDX from the HCL report when it collects.
    assert sorted(a.platform for a in agent.attesters) == sorted(
        "azure-snp" if name == "azure-tdx" else HARDWARE[name].evidence for name in platforms)
    assert config.roster.sites["server"].platforms == required


def test_aci_trusts_the_named_maa_instance(tmp_path):
    bundles = _provision(tmp_path, ["aci", "aci"], maa_endpoint=MAA)  # repeats collapse
    config, _ = load_cc_config(bundles["server"] / "cc_config.yaml")
    assert config.collect.aci is not None and config.collect.aci.maa_endpoint == MAA
    assert config.verify.maa is not None and config.verify.maa.instances == [MAA]


@pytest.mark.parametrize(("platforms", "kwargs", "message"), [
    (["snp", "azure-snp"], {}, "one CPU TEE"),
    (["aci"], {}, "needs the Microsoft Azure Attestation instance"),
    (["software"], {}, "unknown hardware platform software"),
])
def test_provision_refuses(tmp_path, platforms, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _provision(tmp_path, platforms, **kwargs)


def test_hardware_policy_says_what_to_fill_in():
    text = hardware_policy(["tdx", "nvgpu"])
    assert "NO REFERENCE VALUES YET" in text and "tdx.mrtd" in text
    assert "required_platforms: [tdx, nvgpu]" in text
