"""Collective-nonce rounds against the all-pairs protocol, in the same in-process harness.

All-pairs is what NVFlare's CC manager does: every verifier asks every peer for a fresh
token bound to its own nonce, N x (N-1) collections a round. Both protocols run with the
same sites, devices (one collection at a time per site, with a fixed delay) and
verification work; sites work in parallel in both.

Two figures per round. Wall time is what this machine takes with every simulated site
sharing its cores (and one interpreter lock): the N x (N-1) verifications, the same in both
protocols, bound it at large N. A site's critical path is what a real deployment pays, each
site on its own CPU and device: the time its device spends collecting (the fixed delay plus
the collection's own CPU time, per collection it serves) plus the CPU time of its own
verifications (thread CPU time, so the other sites sharing these cores do not count). In
all-pairs a site's device serves every verifier, N-1 collections a round; in the collective
round it serves one.
"""

from __future__ import annotations

import secrets
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rich.console import Console
from rich.table import Table

from ccattest.mesh.wire import evidence_from_wire, evidence_to_wire
from ccattest.testing.federation import SimulatedFederation

from .harness import Row

SIZES = (10, 50, 100, 200)
DELAYS = (0.005, 0.2)


class SiteMeter:
    """Per site and per round: device seconds (delay + collection CPU, per collection) and
    the CPU seconds of its verifications. Wraps each site's inner attester and its agent's
    judge on the instances, so both protocols are measured the same way."""

    def __init__(self, fed: SimulatedFederation) -> None:
        self._lock = threading.Lock()
        self.device: dict[str, float] = defaultdict(float)
        self.verify: dict[str, float] = defaultdict(float)
        self.collections: dict[str, int] = defaultdict(int)
        self.judged: dict[str, int] = defaultdict(int)
        for name, site in fed.sites.items():
            if site.attester is not None:
                inner = site.attester.inner
                inner.collect = self._timed(name, inner.collect, self._collected,
                                            site.attester.delay)
            site.agent.judge = self._timed(name, site.agent.judge, self._verified, 0.0)

    def _timed(self, name: str, call: Callable[..., Any],
               add: Callable[[str, float], None], fixed: float) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                add(name, fixed + time.thread_time() - started)
        return timed

    def _collected(self, name: str, seconds: float) -> None:
        with self._lock:
            self.device[name] += seconds
            self.collections[name] += 1

    def _verified(self, name: str, seconds: float) -> None:
        with self._lock:
            self.verify[name] += seconds
            self.judged[name] += 1

    def reset(self) -> None:
        with self._lock:
            for counts in (self.device, self.verify, self.collections, self.judged):
                counts.clear()

    def critical_paths(self) -> dict[str, float]:
        """Each site's device seconds plus its verification CPU seconds, this round."""
        with self._lock:
            names = set(self.device) | set(self.verify)
            return {name: self.device[name] + self.verify[name] for name in names}

    def summary(self) -> dict[str, float]:
        paths = sorted(self.critical_paths().values())
        with self._lock:
            verify = sorted(self.verify.values())
            device = sorted(self.device.values())
        return {"critical_median": statistics.median(paths), "critical_max": paths[-1],
                "device_max": device[-1], "verify_cpu_median": statistics.median(verify),
                "verify_cpu_max": verify[-1]}


def all_pairs_round(fed: SimulatedFederation) -> dict[str, float]:
    names = sorted(fed.sites)
    before = fed.collections()

    def verifier(name: str) -> int:
        agent, done = fed.sites[name].agent, 0
        for peer in names:
            if peer == name:
                continue
            nonce = secrets.token_bytes(32)
            # over the same wire form as the rounds: tokens cross the network in both
            wire = evidence_to_wire(fed.sites[peer].agent.collect(nonce, "ccattest/pairs"))
            evidence = evidence_from_wire(wire)
            verdict = agent.judge(peer, evidence, nonce=nonce, context="ccattest/pairs",
                                  at=fed.sites[name].participant.clock())
            done += verdict.affirming
        return done

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        affirmed = sum(pool.map(verifier, names))
    n = len(names)
    assert affirmed == n * (n - 1), "all-pairs: every honest peer should be affirmed"
    return {"seconds": time.monotonic() - t0, "collections": fed.collections() - before,
            "messages": 2 * n * (n - 1), "verifications": n - 1}


def collective_round(fed: SimulatedFederation) -> dict[str, float]:
    before = fed.collections()
    report = fed.round()
    n = len(fed.sites)
    assert not report.unreachable and len(report.verdicts) == n
    return {"seconds": report.seconds, "collections": fed.collections() - before,
            "messages": 2 * report.messages, "verifications": n - 1}


def measured(fed: SimulatedFederation, meter: SiteMeter,
             run: Callable[[SimulatedFederation], dict[str, float]]) -> dict[str, float]:
    meter.reset()
    figures = run(fed)
    return {**figures, **meter.summary()}


def fan_out(n: int) -> int:
    """The coordinator's parallel requests: one per site, so every device collects at once
    (with fewer, collections queue in waves of fan-out, each a device delay long)."""
    return n


def rows(console: Console) -> list[Row]:
    table = Table(title="collective-nonce round vs all-pairs (per round)", header_style="bold",
                  caption="wall: all simulated sites share this machine's cores, so the N x "
                  "(N-1) verifications, the same in both protocols, bound it at large N. "
                  "site path: one site's own device seconds + the CPU seconds of its own "
                  "verifications, max over sites: the round on real sites, each on its own "
                  "CPU and device.")
    for column in ("sites", "delay", "collections", "messages", "verif./site",
                   "wall time", "site path", "all-pairs collections", "all-pairs messages",
                   "all-pairs wall time", "all-pairs site path", "wall speed-up",
                   "path speed-up"):
        table.add_column(column, justify="right")
    out = []
    for delay in DELAYS:
        for n in SIZES:
            fed = SimulatedFederation.create(n - 1, collect_delay=delay, fan_out=fan_out(n))
            meter = SiteMeter(fed)
            try:
                collective_round(fed)  # warm: first-use imports and caches, in both
                ours = measured(fed, meter, collective_round)
                base = measured(fed, meter, all_pairs_round)
            finally:
                fed.close()
            label = f"N={n} delay={delay * 1000:.0f}ms"
            table.add_row(str(n), f"{delay * 1000:.0f} ms", str(ours["collections"]),
                          str(ours["messages"]), str(ours["verifications"]),
                          f"{ours['seconds']:.2f} s", f"{ours['critical_max']:.3f} s",
                          str(base["collections"]), str(base["messages"]),
                          f"{base['seconds']:.2f} s", f"{base['critical_max']:.3f} s",
                          f"{base['seconds'] / ours['seconds']:.1f}x",
                          f"{base['critical_max'] / ours['critical_max']:.1f}x")
            out.append(Row(f"round wall time {label}", round(ours["seconds"], 4), "s",
                           "all-pairs", round(base["seconds"], 4),
                           round(ours["seconds"] / base["seconds"], 4)))
            for key, what in (("critical_max", "site critical path (max)"),
                              ("critical_median", "site critical path (median)"),
                              ("verify_cpu_max", "site verification CPU (max)")):
                out.append(Row(f"round {what} {label}", round(ours[key], 4), "s",
                               "all-pairs", round(base[key], 4),
                               round(ours[key] / base[key], 4)))
            out.append(Row(f"round collections {label}", ours["collections"], "collections",
                           "all-pairs", base["collections"],
                           round(ours["collections"] / base["collections"], 4)))
            out.append(Row(f"round messages {label}", ours["messages"], "messages",
                           "all-pairs", base["messages"],
                           round(ours["messages"] / base["messages"], 4)))
    console.print(table)
    return out
