"""Collective-nonce rounds against the all-pairs protocol, in the same in-process harness.

All-pairs is what NVFlare's CC manager does: every verifier asks every peer for a fresh
token bound to its own nonce, N x (N-1) collections a round. Both protocols run with the
same sites, devices (one collection at a time per site, with a fixed delay) and
verification work; sites work in parallel in both.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console
from rich.table import Table

from ccattest.mesh.wire import evidence_from_wire, evidence_to_wire
from ccattest.testing.federation import SimulatedFederation

from .harness import Row

SIZES = (10, 50, 100, 200)
DELAYS = (0.005, 0.2)


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


def rows(console: Console) -> list[Row]:
    table = Table(title="collective-nonce round vs all-pairs (per round)", header_style="bold",
                  caption="All simulated sites share this machine's cores: the N x (N-1) "
                  "verifications, the same in both protocols, bound wall time at large N "
                  "and short device delays; on real sites each verifies on its own CPU.")
    for column in ("sites", "delay", "collections", "messages", "verif./site",
                   "wall time", "all-pairs collections", "all-pairs messages",
                   "all-pairs wall time", "speed-up"):
        table.add_column(column, justify="right")
    out = []
    for delay in DELAYS:
        for n in SIZES:
            fed = SimulatedFederation.create(n - 1, collect_delay=delay, fan_out=min(64, n))
            try:
                ours = collective_round(fed)
                base = all_pairs_round(fed)
            finally:
                fed.close()
            label = f"N={n} delay={delay * 1000:.0f}ms"
            table.add_row(str(n), f"{delay * 1000:.0f} ms", str(ours["collections"]),
                          str(ours["messages"]), str(ours["verifications"]),
                          f"{ours['seconds']:.2f} s", str(base["collections"]),
                          str(base["messages"]), f"{base['seconds']:.2f} s",
                          f"{base['seconds'] / ours['seconds']:.1f}x")
            out.append(Row(f"round wall time {label}", round(ours["seconds"], 4), "s",
                           "all-pairs", round(base["seconds"], 4),
                           round(ours["seconds"] / base["seconds"], 4)))
            out.append(Row(f"round collections {label}", ours["collections"], "collections",
                           "all-pairs", base["collections"],
                           round(ours["collections"] / base["collections"], 4)))
            out.append(Row(f"round messages {label}", ours["messages"], "messages",
                           "all-pairs", base["messages"],
                           round(ours["messages"] / base["messages"], 4)))
    console.print(table)
    return out
