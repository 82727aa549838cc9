"""/metrics from the telemetry CC managers write into their status.json: the exposition
parses, has each family with the right labels and values, and a site without telemetry or
with malformed telemetry costs nothing but its own series."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ccattest.console.metrics import render_metrics
from ccattest.console.telemetry_metrics import TelemetryCollector
from ccattest.console.views import Federation
from ccattest.mesh.telemetry import Telemetry

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAMILIES = {"ccattest_verification_duration_seconds": "histogram",
            "ccattest_verdicts": "counter", "ccattest_rounds": "counter",
            "ccattest_round_duration_seconds": "histogram",
            "ccattest_collateral_cache_hits": "counter",
            "ccattest_collateral_cache_misses": "counter",
            "ccattest_collateral_expiry_timestamp_seconds": "gauge",
            "ccattest_collateral_time_to_expiry_seconds": "gauge"}


def _prod(root: Path, statuses: dict[str, dict[str, Any] | None]) -> Federation:
    """A prod folder with a server kit and client kits, each with the status given."""
    for name, status in statuses.items():
        startup = root / name / "startup"
        startup.mkdir(parents=True)
        if name == "server":
            (startup / "fed_server.json").write_text('{"servers": [{"identity": "server"}]}')
        else:
            (startup / "fed_client.json").write_text("{}")
        if status is not None:
            (root / name / "local" / "cc").mkdir(parents=True)
            (root / name / "local" / "cc" / "status.json").write_text(json.dumps(status))
    return Federation.find(root)


def _snapshot() -> dict[str, Any]:
    telemetry = Telemetry()
    telemetry.verified("software", "affirming", 0.003)
    telemetry.verified("software", "affirming", 0.2)
    telemetry.verified("snp", "contraindicated", 0.02)
    telemetry.round_done(1.5)
    telemetry.collateral_lookup("snp.vcek", hit=True)
    telemetry.collateral_lookup("snp.vcek", hit=True)
    telemetry.collateral_lookup("snp.crl", hit=False)
    telemetry.collateral_held("snp.crl", ("Milan", "vcek"), NOW + timedelta(hours=1))
    telemetry.collateral_held("tdx.tcb_info", ("b0c06f000000",), NOW - timedelta(days=1))
    return json.loads(json.dumps(telemetry.snapshot()))


def _scrape(federation: Federation) -> dict[str, Any]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(federation, clock=NOW.timestamp))
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _samples(family: Any, suffix: str = "") -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples
            if sample.name == family.name + suffix}


def test_each_family_with_its_labels_and_values(tmp_path: Path) -> None:
    families = _scrape(_prod(tmp_path, {"server": {"telemetry": _snapshot()},
                                        "site-1": {"site": "site-1"}}))
    assert {name: family.type for name, family in families.items()} == FAMILIES
    verification = families["ccattest_verification_duration_seconds"]
    counts = _samples(verification, "_count")
    assert counts == {(("platform", "software"), ("site", "server")): 2.0,
                      (("platform", "snp"), ("site", "server")): 1.0}
    buckets = _samples(verification, "_bucket")
    assert buckets[(("le", "0.005"), ("platform", "software"), ("site", "server"))] == 1.0
    assert buckets[(("le", "0.25"), ("platform", "software"), ("site", "server"))] == 2.0
    assert buckets[(("le", "+Inf"), ("platform", "snp"), ("site", "server"))] == 1.0
    assert _samples(verification, "_sum")[(("platform", "software"),
                                           ("site", "server"))] == pytest.approx(0.203)
    assert _samples(families["ccattest_verdicts"], "_total") == {
        (("platform", "snp"), ("site", "server"), ("status", "contraindicated")): 1.0,
        (("platform", "software"), ("site", "server"), ("status", "affirming")): 2.0}
    assert _samples(families["ccattest_rounds"], "_total") == {(("site", "server"),): 1.0}
    assert _samples(families["ccattest_round_duration_seconds"], "_sum") == {
        (("site", "server"),): 1.5}
    assert _samples(families["ccattest_collateral_cache_hits"], "_total") == {
        (("kind", "snp.vcek"), ("site", "server")): 2.0}
    assert _samples(families["ccattest_collateral_cache_misses"], "_total") == {
        (("kind", "snp.crl"), ("site", "server")): 1.0}
    crl = (("kind", "snp.crl"), ("name", "Milan/vcek"), ("site", "server"))
    tcb = (("kind", "tdx.tcb_info"), ("name", "b0c06f000000"), ("site", "server"))
    assert _samples(families["ccattest_collateral_expiry_timestamp_seconds"]) == {
        crl: (NOW + timedelta(hours=1)).timestamp(), tcb: (NOW - timedelta(days=1)).timestamp()}
    assert _samples(families["ccattest_collateral_time_to_expiry_seconds"]) == {
        crl: 3600.0, tcb: -86400.0}  # expired: negative


def test_sites_without_telemetry_contribute_nothing(tmp_path: Path) -> None:
    families = _scrape(_prod(tmp_path, {"server": {"site": "server", "rounds": 3},
                                        "site-1": None, "site-2": {"telemetry": "broken"}}))
    assert set(families) == set(FAMILIES)
    assert all(not family.samples for family in families.values())


MALFORMED: list[Any] = [
    {"verification": [], "verdicts": 3, "rounds": None, "collateral": "x",
     "collateral_expiry": {}},
    {"verification": {"software": {"buckets": [[0.1, 1]], "sum": 0.1, "count": True},
                      "snp": {"buckets": [[0.1, 2], [0.2, 1]], "sum": 1, "count": 2},
                      "tdx": {"buckets": [[0.1, 3]], "sum": 1, "count": 2},
                      "nvgpu": {"buckets": [[0.1]], "sum": 1, "count": 2},
                      "maa": {"buckets": [["0.1", 1]], "sum": 1, "count": 2},
                      "azure-snp": {"buckets": "0.1", "sum": 1, "count": 2},
                      "azure-tdx": {"buckets": [[0.1, 1]], "sum": float("nan"), "count": 2},
                      "ita": 7},
     "verdicts": {"software": {"affirming": -1, "warning": "2"}, "snp": None},
     "rounds": {"buckets": [], "count": -1, "sum": 0},
     "collateral": {"hits": {"snp.vcek": None}, "misses": [1, 2]},
     "collateral_expiry": [3, {"kind": "snp.crl", "name": "a", "not_after": "yesterday"},
                           {"kind": "snp.crl", "name": "b", "not_after": 1700000000},
                           {"kind": "snp.crl", "name": "c", "not_after": "2026-01-01T00:00"}]},
]


@pytest.mark.parametrize("telemetry", MALFORMED)
def test_malformed_telemetry_is_skipped(tmp_path: Path, telemetry: Any) -> None:
    families = _scrape(_prod(tmp_path, {"server": {"telemetry": telemetry},
                                        "site-1": {"telemetry": _snapshot()}}))
    assert all(sample.labels["site"] == "site-1"
               for family in families.values() for sample in family.samples)
    assert _samples(families["ccattest_rounds"], "_total") == {(("site", "site-1"),): 1.0}


def test_a_duplicated_expiry_item_is_listed_once(tmp_path: Path) -> None:
    snapshot = _snapshot()
    snapshot["collateral_expiry"].append(dict(snapshot["collateral_expiry"][0]))
    families = _scrape(_prod(tmp_path, {"server": {"telemetry": snapshot}}))
    assert len(families["ccattest_collateral_expiry_timestamp_seconds"].samples) == 2


def test_render_metrics_serves_the_telemetry(tmp_path: Path) -> None:
    body, _ = render_metrics(_prod(tmp_path, {"server": {"telemetry": _snapshot()}}))
    text = body.decode()
    assert 'ccattest_verdicts_total{platform="snp",site="server",status="contraindicated"} 1.0' \
        in text
    assert 'ccattest_rounds_total{site="server"} 1.0' in text


def test_a_cc_manager_writes_telemetry_into_its_status(tmp_path: Path) -> None:
    """The manager's own status file (written in-process, no NVFlare processes) carries the
    snapshot, and the console serves what its agent measured."""
    pytest.importorskip("nvflare")
    from nvflare.apis.event_type import EventType
    from nvflare.apis.fl_constant import FLContextKey

    from ccattest.mesh.config import build_agent, load_cc_config
    from ccattest.nvflare.manager import CCManager
    from ccattest.provisioning import FederationRequest, SiteRequest, provision

    class Context:
        def get_prop(self, key: str, default: Any = None) -> Any:
            return str(tmp_path / "server") if key == FLContextKey.WORKSPACE_ROOT else default

        def get_engine(self) -> Any:
            return self  # has get_clients: a server's engine

        def get_clients(self) -> list[Any]:
            return []

    request = FederationRequest([SiteRequest("server"), SiteRequest("site-1")])
    folders = {site.name: tmp_path / site.name / "local" / "cc" for site in request.sites}
    provision(request, folders, tmp_path / "root", datetime.now(UTC))
    manager = CCManager()
    manager.handle_event(EventType.SYSTEM_BOOTSTRAP, Context())
    peer = build_agent(*load_cc_config(folders["site-1"] / "cc_config.yaml"))
    nonce = b"n" * 32
    verdict = manager.agent.judge("site-1", peer.collect(nonce, "ctx"), nonce=nonce,
                                  context="ctx", at=datetime.now(UTC))
    assert verdict.affirming, verdict.failures()
    manager._write_status()
    status = json.loads((folders["server"] / "status.json").read_text())
    assert status["telemetry"]["verdicts"] == {"software": {"affirming": 1}}
    assert [e["kind"] for e in status["telemetry"]["collateral_expiry"]] == ["software.root"]
    (tmp_path / "server" / "startup").mkdir()
    (tmp_path / "server" / "startup" / "fed_server.json").write_text(
        '{"servers": [{"identity": "server"}]}')
    families = _scrape(Federation.find(tmp_path / "server"))
    assert _samples(families["ccattest_verification_duration_seconds"], "_count") == {
        (("platform", "software"), ("site", "server")): 1.0}
