"""cc_config collateral sources: `verify.snp` / `verify.tdx` with `collateral`, `offline`,
`kds_url` / `pcs_url`, on real evidence.

Sources: virtee/sev (Apache-2.0) tests/certs_data (a Milan report without certificates, its
VCEK and AMD's chain) and Phala-Network/dcap-qvl (MIT) sample (a TDX quote and its
collateral). The online path talks only to the local KDS / PCS stand-ins on 127.0.0.1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ccattest.collateral import CollateralCache
from ccattest.collateral.bundle import export_bundle
from ccattest.collateral.sources import SnpLookupVerifier, TdxLookupVerifier
from ccattest.errors import CollateralUnavailable, ConfigError
from ccattest.evidence import Evidence
from ccattest.mesh.agent import SiteAgent
from ccattest.mesh.config import build_agent, load_cc_config
from ccattest.pipeline import verify_and_appraise
from ccattest.platforms.snp.abi import parse_report
from ccattest.platforms.snp.kds import requests_for
from ccattest.platforms.snp.verify import SnpVerifier
from ccattest.platforms.tdx.verify import TdxVerifier

pytestmark = pytest.mark.vectors

SNP_DIR = "sev-snp/virtee-sev/tests/certs_data"
SNP_AT = datetime(2026, 11, 26, tzinfo=UTC)
SNP_REPORT_DATA = bytes.fromhex(
    "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581"
    "0b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd")
SNP_MEASUREMENT = ("7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d"
                   "3e1a0dc39b2c60bd95b9c480cd81841f")
SNP_SPLS = {"blSPL": 3, "teeSPL": 0, "snpSPL": 8, "ucodeSPL": 115}
TDX_DIR = "tdx/dcap-qvl/sample"
TDX_AT = datetime(2025, 7, 19, 10, 0, 34, tzinfo=UTC)  # the sample's PCK CRL: 1 s left
TDX_REPORT_DATA = bytes.fromhex(
    "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
    "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20")
TDX_MRTD = ("91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
            "de03ae6dc5f87f27428b2538873118b7")
TDX_FMSPC = "b0c06f000000"
POLICY = f"""version: 1
snp:
  allow: true
  measurements: [{SNP_MEASUREMENT}]
tdx:
  allow: true
  mrtd: [{TDX_MRTD}]
"""


def site(folder: Path, verify: dict[str, Any]) -> SiteAgent:
    """A site that judges peer-1's snp and tdx evidence, built from its cc_config.yaml."""
    (folder / "policy.yaml").write_text(POLICY)
    config = {"site": "site-1", "policy": "policy.yaml", "verify": verify,
              "roster": {"sites": {"peer-1": {"platforms": ["snp", "tdx"]}}}}
    (folder / "cc_config.yaml").write_text(yaml.safe_dump(config))
    return build_agent(*load_cc_config(folder / "cc_config.yaml"))


def config_error(folder: Path, verify: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        site(folder, verify)
    return str(info.value)


# --- SEV-SNP --------------------------------------------------------------------------------------

@pytest.fixture
def snp(vectors: Path) -> dict[str, bytes]:
    data = vectors / SNP_DIR
    return {"report": bytes.fromhex((data / "report_milan.hex").read_text().strip()),
            "vcek": (data / "vcek_milan.der").read_bytes(),
            "chain": (data / "cert_chain_milan").read_bytes()}


def snp_cache(folder: Path, snp: dict[str, bytes]) -> Path:
    """A cache as `ccattest collateral fetch` leaves it: the report's VCEK and AMD's chain."""
    cache = CollateralCache(folder)
    vcek, chain = requests_for(parse_report(snp["report"]), product="Milan")
    for request, data in ((vcek, snp["vcek"]), (chain, snp["chain"])):
        cache.put(request.kind, request.key, data, source="virtee-sev vector", fetched_at=SNP_AT)
    return folder


def judge_snp(agent: SiteAgent, evidence: Evidence) -> Any:
    return verify_and_appraise(evidence, agent.verifiers["snp"], agent.policy,
                               report_data=SNP_REPORT_DATA, at=SNP_AT)


def test_snp_report_without_certificates_is_verified_from_an_offline_cache(tmp_path, snp):
    snp_cache(tmp_path / "collateral", snp)
    agent = site(tmp_path, {"snp": {"collateral": "collateral", "offline": True}})
    assert isinstance(agent.verifiers["snp"], SnpLookupVerifier)
    result = judge_snp(agent, Evidence("snp", snp["report"]))
    assert result.affirming, result.failures()
    # The same report with its VCEK in hand: the same claims as the CLI's --certs path.
    plain = SnpVerifier().verify(Evidence("snp", snp["report"], {"vcek": snp["vcek"]}),
                                 report_data=SNP_REPORT_DATA, at=SNP_AT)
    looked_up = agent.verifiers["snp"].verify(Evidence("snp", snp["report"]),
                                              report_data=SNP_REPORT_DATA, at=SNP_AT)
    assert looked_up.claims == plain.claims


def test_snp_collateral_from_a_bundle(tmp_path, snp):
    cache = CollateralCache(snp_cache(tmp_path / "online-cache", snp))
    export_bundle(cache, tmp_path / "bundle.json", created_at=SNP_AT)
    agent = site(tmp_path, {"snp": {"collateral": "bundle.json"}})  # offline by default
    assert judge_snp(agent, Evidence("snp", snp["report"])).affirming


def test_snp_evidence_with_its_certificates_is_verified_as_before(tmp_path, snp):
    from ccattest.testing.kds_server import KdsServer

    evidence = Evidence("snp", snp["report"], {"vcek": snp["vcek"]})
    with KdsServer() as kds:  # serves nothing: asking it would fail the verification
        agent = site(tmp_path, {"snp": {"offline": False, "kds_url": kds.url}})
        verified = agent.verifiers["snp"].verify(evidence, report_data=SNP_REPORT_DATA,
                                                 at=SNP_AT)
        assert kds.requests == []
    assert verified == SnpVerifier().verify(evidence, report_data=SNP_REPORT_DATA, at=SNP_AT)


def test_snp_offline_and_not_cached_fails_that_peer_with_a_collateral_reason(tmp_path, snp):
    (tmp_path / "collateral").mkdir()
    agent = site(tmp_path, {"snp": {"collateral": "collateral"}})
    evidence = Evidence("snp", snp["report"])
    with pytest.raises(CollateralUnavailable, match="offline and no cached"):
        agent.verifiers["snp"].verify(evidence, report_data=SNP_REPORT_DATA, at=SNP_AT)
    verdict = agent.judge("peer-1", [evidence], nonce=b"n" * 32, context="round", at=SNP_AT)
    assert not verdict.affirming and verdict.status == "contraindicated"
    reason = verdict.results[0].failures()[0]
    assert reason.check == "collateral" and "offline and no cached" in reason.message
    assert reason.hint and "collateral fetch" in reason.hint


def test_snp_judged_through_the_mesh_reaches_the_binding_check(tmp_path, snp):
    """The VCEK came from the cache, so the chain and signature held: what fails is only the
    binding, as the vector answers another challenge than this round's."""
    snp_cache(tmp_path / "collateral", snp)
    agent = site(tmp_path, {"snp": {"collateral": "collateral"}})
    verdict = agent.judge("peer-1", [Evidence("snp", snp["report"])], nonce=b"n" * 32,
                          context="round", at=SNP_AT)
    assert [r.check for r in verdict.results[0].failures()] == ["binding"]


def test_snp_online_fetches_what_is_missing_from_kds_once(tmp_path, snp):
    from ccattest.testing.kds_server import KdsServer

    chip = parse_report(snp["report"]).chip_id
    with KdsServer() as kds:
        kds.serve_vcek("Milan", chip, SNP_SPLS, snp["vcek"])
        kds.serve_chain("Milan", snp["chain"])
        agent = site(tmp_path, {"snp": {"collateral": "new-cache", "offline": False,
                                        "kds_url": kds.url + "/"}})
        assert not (tmp_path / "new-cache").exists()  # made by the first fetch
        for _ in range(2):
            assert judge_snp(agent, Evidence("snp", snp["report"])).affirming
        fetched = [request.path for request in kds.requests]
    assert fetched.count(f"/vcek/v1/Milan/{chip.hex()}") == 1  # then from the cache
    assert fetched.count("/vcek/v1/Milan/cert_chain") == 1
    assert len(list((tmp_path / "new-cache").glob("*.json"))) == 2
    # An offline site reading that cache now needs no service.
    offline = site(tmp_path, {"snp": {"collateral": "new-cache"}})
    assert judge_snp(offline, Evidence("snp", snp["report"])).affirming


def test_snp_online_without_a_cache_folder_keeps_what_it_fetched_in_memory(tmp_path, snp):
    from ccattest.testing.kds_server import KdsServer

    chip = parse_report(snp["report"]).chip_id
    with KdsServer() as kds:
        kds.serve_vcek("Milan", chip, SNP_SPLS, snp["vcek"])
        kds.serve_chain("Milan", snp["chain"])
        agent = site(tmp_path, {"snp": {"offline": False, "kds_url": kds.url}})
        assert judge_snp(agent, Evidence("snp", snp["report"])).affirming
        assert judge_snp(agent, Evidence("snp", snp["report"])).affirming
        assert sum(r.path.endswith("cert_chain") for r in kds.requests) == 1


def test_snp_report_signed_by_no_chip_key_is_left_to_the_verifier(tmp_path):
    from ccattest.errors import VerificationFailed
    from ccattest.testing.snp import KEY_INFO, SnpFixture

    fixture = SnpFixture.create()
    raw = fixture.sign(fixture.report(bytes(64), key_info=KEY_INFO["none"]))
    (tmp_path / "collateral").mkdir()
    agent = site(tmp_path, {"snp": {"collateral": "collateral"}})
    with pytest.raises(VerificationFailed, match="not signed by a VCEK or VLEK"):
        agent.verifiers["snp"].verify(Evidence("snp", raw), report_data=bytes(64),
                                      at=fixture.now)


# --- TDX ------------------------------------------------------------------------------------------

@pytest.fixture
def tdx(vectors: Path) -> dict[str, Any]:
    from ccattest.platforms.tdx.collateral_json import collateral_from_json

    data = vectors / TDX_DIR
    return {"quote": (data / "tdx_quote").read_bytes(),
            "json": data / "tdx_quote_collateral.json",
            "collateral": collateral_from_json((data / "tdx_quote_collateral.json").read_bytes(),
                                               source="dcap-qvl sample")}


def pcs_stand_in(collateral: Any) -> Any:
    from ccattest.testing.pcs_server import PcsServer

    pcs = PcsServer().start()
    pcs.serve_tcb_info(TDX_FMSPC, collateral.tcb_info, collateral.tcb_info_issuer_chain)
    pcs.serve_qe_identity(collateral.qe_identity, collateral.qe_identity_issuer_chain)
    pcs.serve_pck_crl("platform", collateral.pck_crl, collateral.pck_crl_issuer_chain)
    pcs.serve_root_ca_crl(collateral.root_ca_crl)
    return pcs


def tdx_cache(folder: Path, tdx: dict[str, Any]) -> Path:
    """A cache as `ccattest collateral fetch --platform tdx` leaves it."""
    from ccattest.platforms.tdx.pcs import PcsClient

    pcs = pcs_stand_in(tdx["collateral"])
    try:
        with PcsClient(pcs.url, cache=CollateralCache(folder)) as client:
            client.collateral(bytes.fromhex(TDX_FMSPC), "platform", at=TDX_AT)
    finally:
        pcs.stop()
    return folder


def judge_tdx(agent: SiteAgent, tdx: dict[str, Any]) -> Any:
    return verify_and_appraise(Evidence("tdx", tdx["quote"]), agent.verifiers["tdx"],
                               agent.policy, report_data=TDX_REPORT_DATA, at=TDX_AT)


def tdx_site(folder: Path, verify: dict[str, Any]) -> SiteAgent:
    return site(folder, {"tdx": verify})


def test_tdx_collateral_from_an_offline_cache(tmp_path, tdx):
    tdx_cache(tmp_path / "collateral", tdx)
    agent = tdx_site(tmp_path, {"collateral": "collateral"})
    assert isinstance(agent.verifiers["tdx"], TdxLookupVerifier)
    result = judge_tdx(agent, tdx)
    assert result.affirming, result.failures()
    # The same verdict as with the dcap-qvl file itself (verify.tdx.collateral: FILE).
    fixed = tdx_site(tmp_path, {"collateral": str(tdx["json"])})
    assert isinstance(fixed.verifiers["tdx"], TdxVerifier)
    assert judge_tdx(fixed, tdx).trust_vector == result.trust_vector


def test_tdx_collateral_from_a_bundle_and_from_a_pcs_folder(tmp_path, tdx):
    from ccattest.platforms.tdx.pcs import write_collateral_folder

    cache = CollateralCache(tdx_cache(tmp_path / "online-cache", tdx))
    export_bundle(cache, tmp_path / "bundle.json", created_at=TDX_AT)  # expired ones too
    assert judge_tdx(tdx_site(tmp_path, {"collateral": "bundle.json"}), tdx).affirming
    write_collateral_folder(tdx["collateral"], tmp_path / "pcs-folder")
    folder = tdx_site(tmp_path, {"collateral": "pcs-folder"})
    assert isinstance(folder.verifiers["tdx"], TdxVerifier)  # used as it is
    assert judge_tdx(folder, tdx).affirming


def test_tdx_online_fetches_from_the_pcs_once(tmp_path, tdx):
    pcs = pcs_stand_in(tdx["collateral"])
    try:
        agent = tdx_site(tmp_path, {"offline": False, "pcs_url": pcs.url})
        assert judge_tdx(agent, tdx).affirming
        asked = len(pcs.requests)
        assert asked == 4  # TCB Info, QE Identity, PCK CRL, root CA CRL
        assert judge_tdx(agent, tdx).affirming
        assert len(pcs.requests) == asked  # the second time from memory
        assert any(TDX_FMSPC in r.target.lower() for r in pcs.requests)
    finally:
        pcs.stop()


def test_tdx_offline_and_not_cached_fails_that_peer(tmp_path, tdx):
    (tmp_path / "empty").mkdir()
    agent = tdx_site(tmp_path, {"collateral": "empty"})
    verdict = agent.judge("peer-1", [Evidence("tdx", tdx["quote"])], nonce=b"n" * 32,
                          context="round", at=TDX_AT)
    reason = verdict.results[0].failures()[0]
    assert reason.check == "collateral" and "offline and no cached TDX" in reason.message
    with pytest.raises(Exception, match="another platform"):
        agent.verifiers["tdx"].verify(Evidence("snp", tdx["quote"]), report_data=bytes(64),
                                      at=TDX_AT)


def test_tdx_a_cache_that_cannot_be_written_is_a_collateral_failure(tmp_path, tdx):
    (tmp_path / "not-a-folder").write_text("x")
    pcs = pcs_stand_in(tdx["collateral"])
    try:
        agent = tdx_site(tmp_path, {"collateral": "not-a-folder/cache", "offline": False,
                                         "pcs_url": pcs.url})
        with pytest.raises(CollateralUnavailable, match="collateral cache"):
            agent.verifiers["tdx"].verify(Evidence("tdx", tdx["quote"]),
                                          report_data=TDX_REPORT_DATA, at=TDX_AT)
    finally:
        pcs.stop()


def test_tdx_without_a_source_still_takes_collateral_the_evidence_carries(tmp_path, tdx):
    agent = tdx_site(tmp_path, {})
    assert isinstance(agent.verifiers["tdx"], TdxVerifier)
    assert agent.verifiers["tdx"].collateral is None
    carried = Evidence("tdx", tdx["quote"], {"collateral": tdx["json"].read_bytes()})
    verified = agent.verifiers["tdx"].verify(carried, report_data=TDX_REPORT_DATA, at=TDX_AT)
    assert verified.claims["mr_td"] == TDX_MRTD


def test_azure_tdx_takes_only_fixed_collateral(tmp_path, tdx):
    (tmp_path / "collateral").mkdir()
    lookup = site(tmp_path, {"tdx": {"collateral": "collateral"}, "azure_cvm": True})
    assert lookup.verifiers["azure-tdx"]._tdx is None  # the quote's chain alone, as before
    fixed = site(tmp_path, {"tdx": {"collateral": str(tdx["json"])}, "azure_cvm": True})
    assert fixed.verifiers["azure-tdx"]._tdx is fixed.verifiers["tdx"]


# --- bad settings stop the site at start -------------------------------------------------------

def test_service_urls_need_offline_false(tmp_path):
    message = config_error(tmp_path, {"snp": {"kds_url": "https://kds.example"}})
    assert "verify.snp" in message and "kds_url" in message and "offline" in message
    message = config_error(tmp_path, {"tdx": {"offline": False, "pcs_url": "ftp://pccs"}})
    assert "verify.tdx.pcs_url" in message and "http(s)" in message
    message = config_error(tmp_path, {"snp": {"offline": "sometimes"}})
    assert "verify.snp.offline" in message
    message = config_error(tmp_path, {"tdx": {"collateral": ""}})
    assert "verify.tdx.collateral" in message
    assert isinstance(site(tmp_path, {"snp": {"kds_url": None}}).verifiers["snp"], SnpVerifier)


def test_collateral_paths_are_checked_at_start(tmp_path, snp):
    message = config_error(tmp_path, {"snp": {"collateral": "missing"}})
    assert message.startswith("verify.snp.collateral: cannot read SNP collateral")
    assert "offline: false" in message
    (tmp_path / "junk.json").write_text(json.dumps({"not": "a bundle"}))
    message = config_error(tmp_path, {"snp": {"collateral": "junk.json"}})
    assert message.startswith("verify.snp.collateral: ")
    message = config_error(tmp_path, {"tdx": {"collateral": "junk.json"}})
    assert message.startswith("verify.tdx.collateral: ")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "tcb_info.json").write_text("{}")
    message = config_error(tmp_path, {"tdx": {"collateral": "half"}})
    assert message.startswith("verify.tdx.collateral: ") and "lacks files" in message
    # A bundle whose item was altered is refused whole.
    cache = CollateralCache(snp_cache(tmp_path / "c", snp))
    export_bundle(cache, tmp_path / "bundle.json", created_at=SNP_AT)
    document = json.loads((tmp_path / "bundle.json").read_text())
    document["manifest"][0] = {**document["manifest"][0], "kind": "snp.crl"}
    (tmp_path / "bundle.json").write_text(json.dumps(document))
    assert config_error(tmp_path, {"snp": {"collateral": "bundle.json"}}).startswith(
        "verify.snp.collateral: ")
