"""A federated job's wall time with sealing on, beside the same job with sealing off, on a
real NVFlare POC (the demo's NumPy job: server and two clients, software TEEs): the goal is
a round within 5 % of unsealed. Each federation runs the job twice and the faster counts
(the first run also pays the job processes' imports)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console

from ccattest.nvflare.poc import PocFederation, wait_for, write_numpy_job

from .harness import Row, record, show

ROUNDS = 10
GOAL = 1.05


def _job_seconds(seal: str, folder: Path, rounds: int) -> float:
    poc = PocFederation(folder)
    poc.prepare()
    try:
        poc.configure(seal=seal)
        poc.start()
        wait_for(lambda: {e["site"] for e in poc.events("server", "registration_confirmed")}
                 >= set(poc.clients), 90, "registration")
        wait_for(lambda: poc.status("server").get("rounds", 0) >= 1, 60, "a round")
        best = float("inf")
        for attempt in range(2):
            session = poc.session()
            try:
                started = time.monotonic()
                job = session.submit_job(str(write_numpy_job(
                    folder / f"jobs-{attempt}", rounds=rounds, min_clients=2)))
                status = session.wait_for_job(job, timeout=300, poll_interval=0.2)["status"]
                took = time.monotonic() - started
            finally:
                session.close()
            if status != "FINISHED:COMPLETED":
                raise RuntimeError(f"the {seal} job ended {status}")
            best = min(best, took)
        return best
    finally:
        poc.stop()


def rows(console: Console, rounds: int = ROUNDS) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="ccattest-seal-job-") as tmp:
        clear = _job_seconds("off", Path(tmp) / "clear", rounds)
        sealed = _job_seconds("on", Path(tmp) / "sealed", rounds)
    per_round = (sealed / rounds, clear / rounds)
    console.print(f"sealed job: {sealed:.2f} s for {rounds} rounds ({per_round[0]:.3f} s a "
                  f"round); unsealed {clear:.2f} s ({per_round[1]:.3f} s); goal "
                  f"<= {GOAL:.2f}x: {'met' if sealed / clear <= GOAL else 'NOT met'}")
    return [Row(f"NumPy job round, sealed ({rounds} rounds, 2 clients)",
                round(per_round[0] * 1000, 1), "ms", "the same round unsealed",
                round(per_round[1] * 1000, 1), round(sealed / clear, 3))]


def main() -> None:
    console = Console()
    found = rows(console)
    show(console, found)
    record(found)


if __name__ == "__main__":
    main()
