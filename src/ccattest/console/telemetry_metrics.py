"""Prometheus metrics from the telemetry each CC manager writes into its status.json
(mesh/telemetry.py): verification latency, verdicts, rounds, collateral cache hits and
misses and collateral expiry, labelled by site.

A status file is another process's output: every value is checked, and what is malformed
is skipped (one series, never the scrape). Sites without telemetry contribute nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .views import Federation


def _count(value: Any) -> float | None:
    """A counter's value: a finite number >= 0 (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _histogram(value: Any) -> tuple[list[tuple[str, float]], float] | None:
    """(cumulative buckets ending with +Inf, sum) from a snapshot histogram, or None."""
    if not isinstance(value, Mapping) or not isinstance(value.get("buckets"), list):
        return None
    total, observed = _count(value.get("count")), _count(value.get("sum"))
    if total is None or observed is None:
        return None
    buckets, previous = [], 0.0
    for pair in value["buckets"]:
        if not isinstance(pair, list) or len(pair) != 2:
            return None
        bound, count = _count(pair[0]), _count(pair[1])
        if bound is None or count is None or count < previous or count > total:
            return None
        buckets.append((repr(bound), count))
        previous = count
    return [*buckets, ("+Inf", total)], observed


def _counts(value: Any) -> Iterator[tuple[str, float]]:
    for name, count in (value.items() if isinstance(value, Mapping) else ()):
        number = _count(count)
        if number is not None:
            yield str(name), number


def _instant(value: Any) -> float | None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


class TelemetryCollector(Collector):
    def __init__(self, federation: Federation, *, clock: Callable[[], float] = time.time
                 ) -> None:
        self.federation = federation
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        families, now = _Families(), self.clock()
        for kit in self.federation.kits:
            telemetry = (self.federation.status(kit).data or {}).get("telemetry")
            if isinstance(telemetry, Mapping):
                families.add_site(kit.name, telemetry, now)
        yield from families.all()


class _Families:
    """One scrape's metric families, filled site by site."""

    def __init__(self) -> None:
        self.verification = HistogramMetricFamily(
            "ccattest_verification_duration_seconds", "Time to verify and appraise one "
            "peer's evidence, by platform", labels=["site", "platform"])
        self.verdicts = CounterMetricFamily(
            "ccattest_verdicts", "Results of verifying a peer's evidence, by platform and "
            "status", labels=["site", "platform", "status"])
        self.rounds = CounterMetricFamily(
            "ccattest_rounds", "Rounds the site ran (the coordinator) or judged its peers in",
            labels=["site"])
        self.round_duration = HistogramMetricFamily(
            "ccattest_round_duration_seconds", "A round from start to finish (the "
            "coordinator) or the site's part of it: collecting and judging", labels=["site"])
        self.hits = CounterMetricFamily(
            "ccattest_collateral_cache_hits", "Collateral lookups the cache answered, by "
            "kind", labels=["site", "kind"])
        self.misses = CounterMetricFamily(
            "ccattest_collateral_cache_misses", "Collateral lookups the cache could not "
            "answer (then fetched, or unavailable), by kind", labels=["site", "kind"])
        self.expiry = GaugeMetricFamily(
            "ccattest_collateral_expiry_timestamp_seconds", "When collateral the site holds "
            "expires (notAfter, nextUpdate), Unix time", labels=["site", "kind", "name"])
        self.to_expiry = GaugeMetricFamily(
            "ccattest_collateral_time_to_expiry_seconds", "Seconds until collateral the site "
            "holds expires, at scrape time (negative: expired)", labels=["site", "kind", "name"])

    def all(self) -> tuple[Metric, ...]:
        return (self.verification, self.verdicts, self.rounds, self.round_duration,
                self.hits, self.misses, self.expiry, self.to_expiry)

    def add_site(self, site: str, telemetry: Mapping[str, Any], now: float) -> None:
        verification = telemetry.get("verification")
        for platform, value in (verification.items() if isinstance(verification, Mapping)
                                else ()):
            histogram = _histogram(value)
            if histogram is not None:
                self.verification.add_metric([site, str(platform)], *histogram)
        verdicts = telemetry.get("verdicts")
        for platform, statuses in (verdicts.items() if isinstance(verdicts, Mapping) else ()):
            for status, count in _counts(statuses):
                self.verdicts.add_metric([site, str(platform), status], count)
        rounds = _histogram(telemetry.get("rounds"))
        if rounds is not None:
            self.rounds.add_metric([site], rounds[0][-1][1])  # the +Inf bucket: every round
            self.round_duration.add_metric([site], *rounds)
        collateral = telemetry.get("collateral")
        if isinstance(collateral, Mapping):
            for kind, count in _counts(collateral.get("hits")):
                self.hits.add_metric([site, kind], count)
            for kind, count in _counts(collateral.get("misses")):
                self.misses.add_metric([site, kind], count)
        self._expiry(site, telemetry.get("collateral_expiry"), now)

    def _expiry(self, site: str, items: Any, now: float) -> None:
        seen = set()
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, Mapping):
                continue
            labels = (site, str(item.get("kind")), str(item.get("name")))
            instant = _instant(item.get("not_after"))
            if instant is None or labels in seen:  # a sample twice would break the scrape
                continue
            seen.add(labels)
            self.expiry.add_metric(list(labels), instant)
            self.to_expiry.add_metric(list(labels), instant - now)
