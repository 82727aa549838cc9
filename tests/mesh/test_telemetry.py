"""Telemetry: fixed-bucket histograms and counters a running CC manager keeps, recorded by
the real agent, rounds and collateral cache, and snapshot for status.json."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from ccattest.collateral import CollateralCache
from ccattest.errors import CollateralUnavailable
from ccattest.evidence import Evidence
from ccattest.mesh.agent import SiteAgent
from ccattest.mesh.config import build_agent, load_cc_config
from ccattest.mesh.roster import Roster, SiteSpec
from ccattest.mesh.telemetry import (
    BUCKETS,
    MAX_EXPIRY,
    MAX_SERIES,
    OTHER,
    Histogram,
    Telemetry,
    short_name,
)
from ccattest.platforms.software.pki import create_root
from ccattest.policy import Policy, SoftwarePolicy
from ccattest.testing import SoftwareFixture
from ccattest.testing.federation import SERVER, SimulatedFederation
from tests.collateral import CRL_KEY, make_crl

AT = datetime(2025, 6, 1, tzinfo=UTC)
CRL_NEXT = datetime(2025, 7, 1, tzinfo=UTC)


def buckets(snapshot: dict) -> dict[float, int]:
    return dict((bound, count) for bound, count in snapshot["buckets"])


# --- the pieces ---------------------------------------------------------------------------------

def test_histogram_buckets_are_cumulative_with_inclusive_bounds():
    histogram = Histogram()
    for seconds in (0.0005, 0.001, 0.003, 0.3, 20.0):
        histogram.observe(seconds)
    snapshot = histogram.snapshot()
    assert [bound for bound, _ in snapshot["buckets"]] == list(BUCKETS)
    counts = buckets(snapshot)
    assert counts[0.001] == 2  # 0.001 itself falls in le="0.001"
    assert counts[0.0025] == 2 and counts[0.005] == 3 and counts[0.25] == 3
    assert counts[0.5] == 4 and counts[10.0] == 4  # 20 s only in +Inf, which is `count`
    assert snapshot["count"] == 5
    assert snapshot["sum"] == pytest.approx(20.3045)
    values = [count for _, count in snapshot["buckets"]]
    assert values == sorted(values)


def test_snapshot_is_json_and_bounded():
    telemetry = Telemetry()
    for i in range(3 * MAX_SERIES):
        telemetry.verified(f"platform-{i}", "affirming", 0.01)
        telemetry.collateral_lookup(f"kind-{i}", hit=i % 2 == 0)
    for i in range(3 * MAX_EXPIRY):
        telemetry.collateral_held("snp.crl", (f"item-{i}",), AT + timedelta(days=i))
    snapshot = json.loads(json.dumps(telemetry.snapshot()))
    assert snapshot["version"] == 1
    assert len(snapshot["verification"]) == MAX_SERIES + 1
    assert snapshot["verification"][OTHER]["count"] == 2 * MAX_SERIES
    assert sum(len(s) for s in snapshot["verdicts"].values()) <= MAX_SERIES + 1
    assert snapshot["verdicts"][OTHER] == {OTHER: 2 * MAX_SERIES}
    assert len(snapshot["collateral"]["hits"]) <= MAX_SERIES + 1
    assert sum(snapshot["collateral"]["hits"].values()) == 3 * MAX_SERIES // 2
    expiry = snapshot["collateral_expiry"]
    assert len(expiry) == MAX_EXPIRY  # the ones that expire first are kept, soonest first
    assert expiry[0] == {"kind": "snp.crl", "name": "item-0", "not_after": AT.isoformat()}
    assert expiry[-1]["name"] == f"item-{MAX_EXPIRY - 1}"
    assert len(json.dumps(snapshot)) < 64 * 1024


def test_an_item_renewed_under_the_same_name_replaces_the_old_one():
    telemetry = Telemetry()
    telemetry.collateral_held("snp.crl", ("Milan", "vcek"), AT)
    telemetry.collateral_held("snp.crl", ("Milan", "vcek"), CRL_NEXT)
    assert telemetry.snapshot()["collateral_expiry"] == [
        {"kind": "snp.crl", "name": "Milan/vcek", "not_after": CRL_NEXT.isoformat()}]


def test_short_names():
    chip = "d4" * 64
    assert short_name(("Milan", chip, "blSPL=3")) == "Milan/d4d4d4d4d4d4d4d4.../blSPL=3"
    assert short_name(("Intel SGX PCK Platform CA",)) == "Intel SGX PCK Platform CA"
    assert short_name(("x" * 100,)) == "x" * 64
    assert short_name(()) == "-"


def test_recording_from_many_threads_loses_nothing():
    telemetry = Telemetry()

    def work() -> None:
        for _ in range(500):
            telemetry.verified("software", "affirming", 0.002)
            telemetry.collateral_lookup("snp.vcek", hit=True)
            telemetry.round_done(0.2)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = telemetry.snapshot()
    assert snapshot["verification"]["software"]["count"] == 4000
    assert snapshot["verdicts"] == {"software": {"affirming": 4000}}
    assert snapshot["collateral"]["hits"] == {"snp.vcek": 4000}
    assert snapshot["rounds"]["count"] == 4000


# --- recorded by the agent, the rounds and the cache --------------------------------------------

class _Offline:
    platform: ClassVar[str] = "software"

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime) -> None:
        raise CollateralUnavailable("offline and no cached collateral")


def test_judging_a_peer_records_latency_and_verdicts_per_platform(software: SoftwareFixture):
    telemetry = Telemetry()
    policy = Policy(id="t", software=SoftwarePolicy(allow=True,
                                                    measurements=[software.measurement]))
    roster = Roster([SiteSpec("site-1", True)])
    agent = SiteAgent("server", [], {"software": software.verifier()}, policy, roster,
                      telemetry=telemetry)
    nonce = b"n" * 32
    evidence, _, _ = software.evidence(nonce, "ctx")
    assert agent.judge("site-1", [evidence], nonce=nonce, context="ctx",
                       at=software.now).affirming
    assert not agent.judge("site-1", [evidence], nonce=b"m" * 32, context="ctx",
                           at=software.now).affirming  # not bound to this nonce
    foreign = dataclasses.replace(evidence, platform="snp")  # no verifier: not timed
    agent.judge("site-1", [foreign], nonce=nonce, context="ctx", at=software.now)
    offline = SiteAgent("server", [], {"software": _Offline()}, policy, roster,
                        telemetry=telemetry)
    offline.judge("site-1", [evidence], nonce=nonce, context="ctx", at=software.now)
    snapshot = telemetry.snapshot()
    assert list(snapshot["verification"]) == ["software"]
    timed = snapshot["verification"]["software"]
    assert timed["count"] == 3 and timed["sum"] > 0
    assert snapshot["verdicts"] == {"software": {"affirming": 1, "contraindicated": 2}}


def test_an_agent_without_telemetry_judges_as_before(software: SoftwareFixture):
    policy = Policy(id="t", software=SoftwarePolicy(allow=True,
                                                    measurements=[software.measurement]))
    agent = SiteAgent("server", [], {"software": software.verifier()}, policy,
                      Roster([SiteSpec("site-1", True)]))
    nonce = b"n" * 32
    evidence, _, _ = software.evidence(nonce, "ctx")
    assert agent.judge("site-1", [evidence], nonce=nonce, context="ctx",
                       at=software.now).affirming


def test_rounds_are_counted_once_per_site():
    federation = SimulatedFederation.create(2)
    telemetry = {name: Telemetry() for name in federation.sites}
    for name, site in federation.sites.items():
        site.agent.telemetry = site.participant.telemetry = telemetry[name]
    federation.coordinator.telemetry = telemetry[SERVER]
    try:
        report = federation.round()
        federation.round()
    finally:
        federation.close()
    server = telemetry[SERVER].snapshot()
    # The coordinator times whole rounds; its own participant does not count them again.
    assert server["rounds"]["count"] == 2
    assert server["rounds"]["sum"] >= report.seconds
    assert server["verification"]["software"]["count"] == 4  # two peers, two rounds
    assert server["verdicts"] == {"software": {"affirming": 4}}
    client = telemetry["site-1"].snapshot()
    assert client["rounds"]["count"] == 2 and client["rounds"]["sum"] > 0
    assert client["verdicts"] == {"software": {"affirming": 4}}


def test_the_cache_reports_hits_misses_and_what_it_holds(tmp_path: Path):
    CollateralCache(tmp_path / "cache").put("snp.crl", CRL_KEY, make_crl(), source="kds",
                                            fetched_at=AT)
    telemetry = Telemetry()
    cache = CollateralCache(tmp_path / "cache", telemetry=telemetry)  # read from disk
    assert cache.get("snp.crl", CRL_KEY, AT) is not None
    assert cache.get("snp.crl", CRL_KEY, AT) is not None
    assert cache.get("snp.crl", CRL_KEY, CRL_NEXT + timedelta(seconds=1)) is None  # stale
    assert cache.get("snp.crl", ("Genoa", "vcek"), AT) is None
    assert cache.get("snp.vcek", ("Milan", "ab" * 64, "blSPL=3"), AT) is None
    snapshot = telemetry.snapshot()
    assert snapshot["collateral"] == {"hits": {"snp.crl": 2},
                                      "misses": {"snp.crl": 2, "snp.vcek": 1}}
    assert snapshot["collateral_expiry"] == [
        {"kind": "snp.crl", "name": "Milan/vcek", "not_after": CRL_NEXT.isoformat()}]


def test_a_site_built_with_telemetry_lists_its_collateral_before_any_lookup(tmp_path: Path):
    root = create_root(AT)
    (tmp_path / "root.pem").write_bytes(
        root.certificate.public_bytes(serialization.Encoding.PEM))
    CollateralCache(tmp_path / "snp").put("snp.crl", CRL_KEY, make_crl(), source="kds",
                                          fetched_at=AT)
    (tmp_path / "policy.yaml").write_text("version: 1\n")
    (tmp_path / "cc_config.yaml").write_text(yaml.safe_dump({
        "site": "site-1", "policy": "policy.yaml",
        "verify": {"software": {"roots": ["root.pem"]}, "snp": {"collateral": "snp"},
                   "nvgpu": {"rim_cache": "rims"}}}))
    telemetry = Telemetry()
    agent = build_agent(*load_cc_config(tmp_path / "cc_config.yaml"), telemetry)
    assert agent.telemetry is telemetry
    expiry = {(e["kind"], e["name"]): e["not_after"]
              for e in telemetry.snapshot()["collateral_expiry"]}
    assert expiry == {
        ("snp.crl", "Milan/vcek"): CRL_NEXT.isoformat(),
        ("software.root", "ccattest software root (development only, no hardware guarantee)"):
            root.certificate.not_valid_after_utc.isoformat()}


@pytest.mark.vectors
def test_fixed_tdx_collateral_in_the_config_is_listed(tmp_path: Path, vectors: Path):
    (tmp_path / "policy.yaml").write_text("version: 1\n")
    source = vectors / "tdx/dcap-qvl/sample/tdx_quote_collateral.json"
    (tmp_path / "cc_config.yaml").write_text(yaml.safe_dump({
        "site": "site-1", "policy": "policy.yaml", "verify": {"tdx": {"collateral": str(source)}}}))
    telemetry = Telemetry()
    build_agent(*load_cc_config(tmp_path / "cc_config.yaml"), telemetry)
    kinds = {e["kind"] for e in telemetry.snapshot()["collateral_expiry"]}
    assert kinds == {"tdx.tcb_info", "tdx.qe_identity", "tdx.pck_crl", "tdx.root_ca_crl"}
