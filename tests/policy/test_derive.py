"""derive_policy: a policy that accepts exactly the verified evidence it was derived from.

Every derived policy is written to a file, loaded with load_policy and used to appraise the
same verified claims; real SEV-SNP, TDX and GPU vectors are verified at their pinned times
as in tests/platforms."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from ccattest.errors import ConfigError
from ccattest.evidence import Evidence
from ccattest.platforms.base import VerifiedClaims
from ccattest.policy import appraise, check_required_platforms, load_policy
from ccattest.policy.derive import _line_value, _set, derive_policy
from ccattest.result import AttestationResult, Tier
from ccattest.testing import SoftwareFixture
from ccattest.testing.azure import AzureFixture
from ccattest.testing.cases import FIXED_NOW
from ccattest.testing.ita import ItaFixture
from ccattest.testing.maa import MaaFixture
from ccattest.testing.nvgpu import NvgpuFixture


def _judge(tmp_path: Path, verified: VerifiedClaims, at, **kwargs) -> tuple[str,
                                                                             AttestationResult]:
    text = derive_policy(verified, **kwargs)
    path = tmp_path / "derived.yaml"
    path.write_text(text, encoding="utf-8")
    policy = load_policy(path)
    result = appraise(policy, verified, at)
    assert [r.passed for r in check_required_platforms(policy, [result])] == [
        result.affirming]
    return text, result


def _failed(result: AttestationResult) -> list[str]:
    return [reason.check for reason in result.failures()]


# --- software ---------------------------------------------------------------------------------

@pytest.mark.parametrize("debug", [False, True])
def test_software_policy_accepts_its_evidence_only(tmp_path, debug):
    site = SoftwareFixture.create(svn=3, debug=debug)
    evidence, report_data, _ = site.evidence()
    verified = site.verifier().verify(evidence, report_data=report_data, at=site.now)
    text, result = _judge(tmp_path, verified, site.now, policy_id="known-good")
    assert result.status is Tier.AFFIRMING, _failed(result)
    section = yaml.safe_load(text)["software"]
    assert section["measurements"] == [site.measurement]
    assert section["min_svn"] == 3 and section["identities"] == ["site-1"]
    assert section["allow_debug"] is debug
    assert ("WARNING" in text) is debug
    assert "# DEVELOPMENT ONLY" in text  # the template's comments stay
    assert yaml.safe_load(text)["id"] == "known-good"
    assert yaml.safe_load(text)["common"]["required_platforms"] == ["software"]
    # Exactly: another site, another image or an older SVN is not accepted.
    policy = load_policy(tmp_path / "derived.yaml")
    for other in (site.sibling("site-2", svn=3, debug=debug),
                  SoftwareFixture.create(svn=2, debug=debug, root=site.root)):
        evidence, report_data, _ = other.evidence()
        claims = other.verifier().verify(evidence, report_data=report_data, at=site.now)
        assert not appraise(policy, claims, site.now).affirming


def test_without_an_id_the_loader_names_the_policy(tmp_path, software):
    evidence, report_data, _ = software.evidence()
    verified = software.verifier().verify(evidence, report_data=report_data, at=software.now)
    text, _ = _judge(tmp_path, verified, software.now)
    assert "\nid:" not in text
    assert load_policy(tmp_path / "derived.yaml").id.startswith("derived@")


def test_unknown_platforms_are_refused():
    with pytest.raises(ConfigError, match="cannot derive a policy from quantum") as info:
        derive_policy(VerifiedClaims(platform="quantum", claims={}))
    assert "nvgpu-nras, snp, software or tdx" in str(info.value.expected)


def test_template_edits_fail_loudly_on_a_missing_key():
    with pytest.raises(AssertionError):
        _set("software:\n  allow: true\n", "nope", 1)
    with pytest.raises(AssertionError):
        _line_value("software:\n  allow: true\n", "nope")
    assert _set("  # min_firmware: \"1.55\"\n", "min_firmware", "1.57") == \
        "  min_firmware: \"1.57\"\n"


# --- SEV-SNP ----------------------------------------------------------------------------------

def _snp_samples():
    from tests.platforms.snp.test_vectors import SAMPLES

    return sorted(SAMPLES)


@pytest.mark.vectors
@pytest.mark.filterwarnings("ignore:Parsed a serial number")
@pytest.mark.parametrize("name", _snp_samples())
def test_snp_vectors_affirm_under_their_derived_policy(tmp_path, vectors, name):
    from tests.platforms.snp.test_vectors import AT, SAMPLES, VERIFIER

    report, endorsements = SAMPLES[name][1](vectors)
    verified = VERIFIER.verify(Evidence("snp", report, endorsements),
                               report_data=report[0x50:0x90], at=AT)
    text, result = _judge(tmp_path, verified, AT)
    assert result.status is Tier.AFFIRMING, _failed(result)
    section = yaml.safe_load(text)["snp"]
    claims = verified.claims
    assert section["measurements"] == [claims["measurement"]]
    assert section["vmpl"] == [claims["vmpl"]]
    assert section["signing_keys"] == [claims["signing_key"]]
    assert section["products"] == [claims["product"]]
    assert section["min_guest_svn"] == claims["guest_svn"]
    assert {k: v for k, v in section["min_tcb"].items()} == claims["reported_tcb"]
    assert section["host_data"] == ([claims["host_data"]] if claims["host_data"].strip("0")
                                    else [])
    assert section["chip_ids"] == []  # shown (when not masked), never pinned
    assert (claims["chip_id"] in text) is (claims["chip_id"].strip("0") != "")
    assert section["allow_debug"] is claims["policy"]["debug"]
    assert section["require_smt_disabled"] is not claims["policy"]["smt"]
    # One step past the evidence is refused: a newer minimum guest SVN.
    stricter = text.replace(f"min_guest_svn: {claims['guest_svn']}",
                            f"min_guest_svn: {claims['guest_svn'] + 1}")
    (tmp_path / "stricter.yaml").write_text(stricter, encoding="utf-8")
    assert _failed(appraise(load_policy(tmp_path / "stricter.yaml"), verified, AT)) == [
        "min_guest_svn"]


@pytest.mark.parametrize(("product", "version", "signing_key"), [
    ("Milan", 3, "vcek"), ("Turin", 5, "vlek"),
])
def test_snp_fixture_guest_with_every_flag(tmp_path, snp_keys, product, version, signing_key):
    """Without the vectors: a guest whose policy allows debug and a migration agent, forbids
    SMT, sets host data and key digests, on a Turin (fmc) or Milan chip."""
    from ccattest.testing.snp import SnpFixture

    fixture = SnpFixture.create(product, version=version, signing_key=signing_key,
                                keys=snp_keys)
    evidence, report_data, _ = fixture.evidence(
        policy=0x20000 | 1 << 18 | 1 << 19, guest_svn=4, vmpl=2, host_data=b"\x01" * 32,
        id_key_digest=b"\x02" * 48, author_key_digest=b"\x03" * 48)
    verified = fixture.verifier().verify(evidence, report_data=report_data, at=fixture.now)
    text, result = _judge(tmp_path, verified, fixture.now)
    assert result.status is Tier.AFFIRMING, _failed(result)
    section = yaml.safe_load(text)["snp"]
    assert section["allow_debug"] is section["allow_migrate_ma"] is True
    assert section["require_smt_disabled"] is True
    assert text.count("WARNING") == 2
    assert section["host_data"] == ["01" * 32] and section["id_key_digests"] == ["02" * 48]
    assert section["author_key_digests"] == ["03" * 48]
    assert ("fmc" in section["min_tcb"]) is (product == "Turin")
    assert section["min_firmware"] == "1.55" and section["require_revocation_check"] is False
    checked = dataclasses.replace(verified, claims={**verified.claims, "revocation": "checked",
                                                    "product": None})
    checked_section = yaml.safe_load(derive_policy(checked))["snp"]
    assert checked_section["require_revocation_check"] is True
    assert checked_section["products"] == []  # unknown product: any


@pytest.fixture(scope="module")
def snp_keys():
    from ccattest.testing.snp import SnpKeys

    return SnpKeys.generate()


# --- TDX --------------------------------------------------------------------------------------

def _tdx_verify(vectors, relative, collateral, at, **kwargs):
    from tests.platforms.tdx.test_vectors import _verify

    return _verify(vectors, relative, collateral, at, **kwargs)


@pytest.mark.vectors
def test_tdx_up_to_date_vector_affirms(tmp_path, vectors):
    from tests.platforms.tdx.test_vectors import DCAP, DCAP_AT, dcap_collateral

    verified = _tdx_verify(vectors, DCAP + "tdx_quote", dcap_collateral(vectors), DCAP_AT)
    text, result = _judge(tmp_path, verified, DCAP_AT)
    assert result.status is Tier.AFFIRMING, _failed(result)
    section = yaml.safe_load(text)["tdx"]
    claims = verified.claims
    assert section["mrtd"] == [claims["mr_td"]] and section["mr_seam"] == [claims["mr_seam"]]
    assert section["accepted_tcb_statuses"] == ["UpToDate"]
    assert section["min_tee_tcb_svn"] == claims["tee_tcb_svn"]
    assert section["rtmrs"] == {} and claims["rtmr2"] in text  # shown, not pinned
    assert "WARNING" not in text


@pytest.mark.vectors
def test_tdx_out_of_date_vector_is_accepted_with_warnings(tmp_path, vectors):
    from tests.platforms.tdx.test_vectors import TRUSTEE, TRUSTEE_AT, trustee_collateral

    verified = _tdx_verify(vectors, TRUSTEE + "tdx_quote_6.dat", trustee_collateral(vectors),
                           TRUSTEE_AT, allow_expired_collateral=True)
    text, result = _judge(tmp_path, verified, TRUSTEE_AT)
    section = yaml.safe_load(text)["tdx"]
    assert section["accepted_tcb_statuses"] == [verified.claims["tcb_status"]] == ["OutOfDate"]
    assert "WARNING: the evidence's platform TCB is OutOfDate" in text
    assert section["expired_collateral"] == "warn"
    # Expired collateral is only ever a warning, never affirming: everything else holds.
    assert result.status is Tier.WARNING
    assert set(_failed(result)) == {"collateral_expiry", "collateral_current"}


@pytest.mark.vectors
def test_tdx_debug_vector_is_allowed_with_a_warning(tmp_path, vectors):
    from tests.platforms.tdx.conftest import go_tdx_guest_collateral
    from tests.platforms.tdx.test_vectors import GTG_AT, TRUSTEE

    verified = _tdx_verify(vectors, TRUSTEE + "tdx_quote_4.dat",
                           go_tdx_guest_collateral(vectors), GTG_AT)
    text, result = _judge(tmp_path, verified, GTG_AT)
    assert result.status is Tier.AFFIRMING, _failed(result)
    assert yaml.safe_load(text)["tdx"]["allow_debug"] is True
    assert "WARNING: the evidence is from a debuggable guest" in text


@pytest.mark.vectors
def test_tdx_without_a_matching_tcb_level_is_refused(vectors):
    from tests.platforms.tdx.conftest import go_tdx_guest_collateral
    from tests.platforms.tdx.test_vectors import GTG_AT, SPR

    verified = _tdx_verify(vectors, SPR, go_tdx_guest_collateral(vectors), GTG_AT)
    with pytest.raises(ConfigError, match="status is NoMatchingTcbLevel"):
        derive_policy(verified)


def test_ita_tokens_are_derived_by_the_tdx_rules(tmp_path):
    fixture = ItaFixture.create()
    at = fixture.now + timedelta(seconds=1)
    token = fixture.token()
    verified = fixture.verifier(allow_unbound=True).verify(
        Evidence("ita", token.encode()), report_data=None, at=at)
    text, result = _judge(tmp_path, verified, at)
    assert result.status is Tier.AFFIRMING, _failed(result)
    assert yaml.safe_load(text)["tdx"]["accepted_qe_tcb_statuses"] == [
        verified.claims["tcb_status"]]


# --- Azure ------------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["azure-snp", "azure-tdx"])
def test_azure_cvm_policies_pin_the_boot_pcrs(tmp_path, platform):
    fixture = AzureFixture.create(platform)
    evidence, nonce = fixture.evidence()
    verified = fixture.verifier().verify(evidence, report_data=nonce, at=fixture.now)
    text, result = _judge(tmp_path, verified, fixture.now)
    assert result.status is Tier.AFFIRMING, _failed(result)
    document = yaml.safe_load(text)
    assert document["azure"]["allow"] is False  # MAA tokens stay out
    assert document["azure"]["pcrs"] == {i: [verified.claims["pcrs"][str(i)]] for i in range(8)}
    assert {f"pcr{i}" for i in range(8)} <= {r.check for r in result.reasons}
    changed = dict(verified.claims, vm_configuration={"secure-boot": True,
                                                      "console-enabled": False})
    text = derive_policy(dataclasses.replace(verified, claims=changed))
    assert yaml.safe_load(text)["azure"]["require_secure_boot"] is True
    assert yaml.safe_load(text)["azure"]["allow_console"] is False
    unstated = dataclasses.replace(verified, claims={**verified.claims, "vm_configuration": {}})
    azure = yaml.safe_load(derive_policy(unstated))["azure"]
    assert azure["require_secure_boot"] is False and azure["allow_console"] is True


def test_azure_tdx_without_a_tcb_status_is_refused():
    fixture = AzureFixture.create("azure-tdx")
    evidence, nonce = fixture.evidence()
    verified = fixture.verifier().verify(evidence, report_data=nonce, at=fixture.now)
    unevaluated = dataclasses.replace(verified, claims={
        **verified.claims, "tdx": {**verified.claims["tdx"], "tcb_status": None}})
    with pytest.raises(ConfigError, match="status is not evaluated") as info:
        derive_policy(unevaluated)
    assert "UpToDate" in str(info.value.expected)


def _maa_verified() -> VerifiedClaims:
    maa = MaaFixture.create()
    evidence, report_data = maa.evidence()
    return maa.verifier().verify(evidence, report_data=report_data, at=FIXED_NOW)


def test_maa_tokens_by_the_azure_section(tmp_path):
    verified = _maa_verified()
    text, result = _judge(tmp_path, verified, FIXED_NOW)
    assert result.status is Tier.AFFIRMING, _failed(result)
    section = yaml.safe_load(text)["azure"]
    assert section["allow"] is True
    assert section["isolation_tees"] == [verified.claims["isolation_tee"]]
    assert section["measurements"] == [verified.claims["launch_measurement"]]


def test_maa_tokens_that_do_not_state_their_flags(tmp_path):
    verified = _maa_verified()
    claims = {**verified.claims, "debuggable": None, "secure_boot": True, "vmpl": None,
              "guest_svn": None, "policy": {"smt": False}, "host_data": "00" * 32,
              "compliance_status": "azure-compliant-cvm", "reported_tcb": {"snp": 3}}
    text = derive_policy(dataclasses.replace(verified, claims=claims))
    section = yaml.safe_load(text)["azure"]
    assert section["allow_debug"] is True and section["allow_migration"] is True
    assert text.count("WARNING: the token does not say") == 2
    assert section["require_smt_disabled"] is True and section["require_secure_boot"] is True
    assert section["vmpl"] == [0] and section["min_guest_svn"] == 0
    assert section["host_data"] == [] and section["compliance_statuses"] == [
        "azure-compliant-cvm"]
    assert section["min_tcb"] == {"bootloader": 0, "tee": 0, "snp": 3, "microcode": 0}


# --- NVIDIA GPUs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hopper() -> NvgpuFixture:
    return NvgpuFixture.create("HOPPER")


def _gpu(hopper, **cc_state) -> VerifiedClaims:
    evidence, nonce = hopper.evidence(cc_state=cc_state or None)
    return hopper.verifier().verify(evidence, report_data=nonce, at=hopper.now)


def test_gpu_in_cc_mode_affirms(tmp_path, hopper):
    verified = _gpu(hopper, cc_mode="on", devtools="off")
    text, result = _judge(tmp_path, verified, hopper.now)
    assert result.status is Tier.AFFIRMING, _failed(result)
    section = yaml.safe_load(text)["nvgpu"]
    assert section["architectures"] == ["HOPPER"]
    assert section["driver_versions"] == [verified.claims["driver_version"]]
    assert section["vbios_versions"] == [verified.claims["vbios_version"]]
    assert section["require_cc_mode"] is True
    assert section["require_rim_match"] is False and "without NVIDIA's RIMs" in text


def test_gpu_revocation_and_ppcie(hopper):
    verified = _gpu(hopper, cc_mode="on", devtools="off")
    good = {**verified.claims, "revocation": "good", "ppcie": True,
            "measurements": {**verified.claims["measurements"], "matched": True}}
    section = yaml.safe_load(derive_policy(dataclasses.replace(verified, claims=good)))["nvgpu"]
    assert section["require_revocation_check"] is True and section["require_ppcie"] is True
    assert section["require_rim_match"] is True
    held = derive_policy(dataclasses.replace(verified, claims={**good, "revocation": "on_hold"}))
    assert yaml.safe_load(held)["nvgpu"]["allow_cert_hold"] is True and "on hold" in held


@pytest.mark.parametrize(("changes", "message"), [
    ({"cc_mode": "on", "devtools": True}, "not in CC mode"),
    ({"cc_mode": "off", "devtools": False}, "not in CC mode"),
    ({"measurements": {"matched": False}}, "differ from NVIDIA's RIMs"),
])
def test_gpus_no_policy_should_accept_are_refused(hopper, changes, message):
    verified = _gpu(hopper)
    with pytest.raises(ConfigError, match=message):
        derive_policy(dataclasses.replace(verified, claims={**verified.claims, **changes}))


@pytest.mark.vectors
def test_gpu_vectors_pass_every_rule_but_the_unreported_cc_state(tmp_path, vectors):
    """The real reports carry no CC state (the attester reports it, not the GPU), so the
    cc_mode rule can only warn; every other rule of the derived policy holds."""
    from tests.platforms.nvgpu.conftest import manifest_facts
    from tests.platforms.nvgpu.test_vectors import AT, PAIRS, VERIFIER, _evidence

    for report, chain in PAIRS[:3]:
        verified = VERIFIER.verify(_evidence(vectors, report, chain),
                                   report_data=bytes.fromhex(manifest_facts(vectors,
                                                                            report).nonce),
                                   at=AT)
        _, result = _judge(tmp_path, verified, AT)
        assert result.status is Tier.WARNING
        assert [r.check for r in result.reasons if not r.passed] == ["cc_mode"]


@pytest.mark.vectors
def test_multi_gpu_vector(tmp_path, vectors):
    from tests.platforms.nvgpu.conftest import SERIALIZED, manifest_facts, read
    from tests.platforms.nvgpu.test_vectors import AT, VERIFIER

    relative = SERIALIZED + "hopper_evidence.json"
    verified = VERIFIER.verify(Evidence("nvgpu", read(vectors, relative)),
                               report_data=bytes.fromhex(manifest_facts(vectors,
                                                                        relative).nonce),
                               at=AT)
    text, result = _judge(tmp_path, verified, AT)
    assert yaml.safe_load(text)["nvgpu"]["require_ppcie"] is True
    assert {r.check for r in result.reasons if not r.passed} <= {"gpu0:cc_mode"}


def test_nras_results_by_the_nvgpu_rules(tmp_path):
    from ccattest.testing.nras import NrasFixture

    fixture = NrasFixture.create()
    verified = fixture.verifier().verify(fixture.evidence(), report_data=fixture.nonce,
                                         at=fixture.now)
    text, result = _judge(tmp_path, verified, fixture.now)
    # NRAS does not carry the attester's CC state either: that rule alone warns.
    assert [r.check for r in result.reasons if not r.passed] == ["gpu0:cc_mode"]
    section = yaml.safe_load(text)["nvgpu"]
    assert section["require_rim_match"] is True and section["require_revocation_check"] is True


def test_derive_policy_is_exported_but_imported_only_when_asked_for():
    import ccattest.policy as policy_package

    assert policy_package.derive_policy is derive_policy
    with pytest.raises(AttributeError, match="no_such_rule"):
        _ = policy_package.no_such_rule
