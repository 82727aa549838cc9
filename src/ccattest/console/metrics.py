"""Prometheus metrics read from the federation's status files and records at each scrape
(a collector of our own, registered on a private registry, so nothing global leaks)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .telemetry_metrics import TelemetryCollector
from .views import Federation


class FederationCollector(Collector):
    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    def collect(self) -> Iterator[Metric]:
        view = self.federation.view()
        trust = GaugeMetricFamily("ccattest_trust", "1 for each (verifier, peer) cell, by its "
                                  "status", labels=["verifier", "peer", "status"])
        for cell in view["matrix"]:
            trust.add_metric([cell["verifier"], cell["peer"], str(cell["status"])], 1)
        yield trust
        excluded = GaugeMetricFamily("ccattest_excluded", "1 for each site a site excluded",
                                     labels=["site", "by"])
        for peer, by in view["excluded"].items():
            for verifier in by:
                excluded.add_metric([peer, verifier], 1)
        yield excluded
        yield from self._records()

    def _records(self) -> Iterator[Metric]:
        entries = GaugeMetricFamily("ccattest_record_entries", "Entries in a site's record",
                                    labels=["site"])
        kinds = CounterMetricFamily("ccattest_record_appends", "Record entries written, by "
                                    "kind", labels=["site", "kind"])
        verdicts = CounterMetricFamily("ccattest_verdict_changes", "Verdicts a site recorded "
                                       "(at registration and when a judgement changed)",
                                       labels=["site", "platform", "status"])
        missing = CounterMetricFamily("ccattest_round_missing_contributions", "Sites missing "
                                      "from rounds the site recorded", labels=["site"])
        for kit in self.federation.kits:
            counts = self.federation.tally(kit)  # only what was appended since last scrape
            if counts is None:
                continue
            entries.add_metric([kit.name], counts.entries)
            for kind, count in sorted(counts.kinds.items()):
                kinds.add_metric([kit.name, kind], count)
            for (platform, status), count in sorted(counts.verdicts.items()):
                verdicts.add_metric([kit.name, platform, status], count)
            missing.add_metric([kit.name], counts.missing)
        yield from (entries, kinds, verdicts, missing)


def render_metrics(federation: Federation) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FederationCollector(federation))
    registry.register(TelemetryCollector(federation))
    return generate_latest(registry), CONTENT_TYPE_LATEST
