from datetime import UTC, datetime

import pytest

from ccattest.errors import ConfigError
from ccattest.mesh.config import build_agent, load_cc_config
from ccattest.provisioning import FederationRequest, SiteRequest, provision

NOW = datetime.now(UTC)


@pytest.fixture
def bundles(tmp_path):
    request = FederationRequest([SiteRequest("server"), SiteRequest("site-1"),
                                 SiteRequest("site-2", cc_enabled=False)])
    dirs = {site.name: tmp_path / site.name / "local" / "cc" for site in request.sites}
    references = provision(request, dirs, tmp_path / "root", NOW)
    return dirs, references


def test_provisioned_sites_attest_to_each_other(bundles):
    dirs, references = bundles
    assert set(references) == {"server", "site-1"}
    agents = {name: build_agent(*load_cc_config(d / "cc_config.yaml")) for name, d in dirs.items()}
    assert agents["server"].cc_enabled and not agents["site-2"].cc_enabled
    nonce = b"n" * 32
    evidence = agents["site-1"].collect(nonce, "ctx")
    verdict = agents["server"].judge("site-1", evidence, nonce=nonce, context="ctx", at=NOW)
    assert verdict.affirming, verdict.failures()
    assert agents["server"].judge("site-2", [], nonce=nonce, context="ctx",
                                  at=NOW).status == "not-cc"
    assert (dirs["site-1"] / "keys/site.key.pem").stat().st_mode & 0o777 == 0o600
    assert not (dirs["site-1"] / "root.key.pem").exists()  # the root key stays home


def test_changed_workload_is_caught_at_the_next_collection(bundles):
    dirs, _ = bundles
    agents = {n: build_agent(*load_cc_config(d / "cc_config.yaml")) for n, d in dirs.items()}
    (dirs["site-1"] / "workload.txt").write_text("site=site-1\nexfiltrate=yes\n")
    nonce = b"m" * 32
    evidence = agents["site-1"].collect(nonce, "ctx")
    verdict = agents["server"].judge("site-1", evidence, nonce=nonce, context="ctx", at=NOW)
    assert not verdict.affirming
    assert any("measurement matches no reference value" in f for f in verdict.failures())


def test_config_errors(tmp_path):
    bad = tmp_path / "cc.yaml"
    bad.write_text("site: x\npolicy: p.yaml\nrounds: {interval_seconds: 0}\nbogus: 1\n")
    with pytest.raises(ConfigError, match="invalid CC config") as info:
        load_cc_config(bad)
    assert "rounds.interval_seconds" in str(info.value) and "bogus" in str(info.value)
    with pytest.raises(ConfigError, match="cannot read CC config"):
        load_cc_config(tmp_path / "missing.yaml")
