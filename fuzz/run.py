"""`make fuzz`: every harness in turn for --runs inputs; a table of inputs run and findings.

    python fuzz/run.py --runs 100000 [TARGET ...]   # targets: fuzz_<name>.py names; all by default

Harnesses run one at a time (each is one process on one core). Corpora stay in
.fuzz/corpus/<name> (so a second run goes on from the first), crashes and slow inputs in
.fuzz/crashes/<name>, each run's log in .fuzz/logs/<name>.log, the figures in
.fuzz/report.json. Exit status 1 when any harness found something.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUZZ_DIR = HERE.parent / ".fuzz"
DONE = re.compile(r"Done (\d+) runs in (\d+) second")
STATS = re.compile(r"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)\s+cov: (\d+) ft: (\d+)")


def targets() -> list[str]:
    return sorted(path.stem.removeprefix("fuzz_") for path in HERE.glob("fuzz_*.py"))


def run_one(name: str, runs: int, extra: list[str]) -> dict[str, object]:
    FUZZ_DIR.joinpath("logs").mkdir(parents=True, exist_ok=True)
    log = FUZZ_DIR / "logs" / f"{name}.log"
    command = [sys.executable, str(HERE / f"fuzz_{name}.py"), f"-runs={runs}",
               "-print_final_stats=1", *extra]
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    wall = time.monotonic() - started
    text = log.read_text(errors="replace")
    done = DONE.search(text)
    stats = STATS.findall(text)
    executed = int(done.group(1)) if done else (int(stats[-1][0]) if stats else 0)
    findings = sorted(str(p.relative_to(FUZZ_DIR.parent))
                      for p in (FUZZ_DIR / "crashes" / name).glob("*") if p.is_file())
    return {"target": name, "runs": executed, "requested": runs, "exit": code,
            "wall_s": round(wall, 1), "cov": int(stats[-1][1]) if stats else None,
            "ft": int(stats[-1][2]) if stats else None,
            "crashed": code != 0, "findings": findings, "log": str(log)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("targets", nargs="*", default=None)
    parser.add_argument("--libfuzzer", action="append", default=[],
                        help="extra libFuzzer flag, e.g. --libfuzzer=-seed=1")
    args = parser.parse_args()
    names = args.targets or targets()
    unknown = sorted(set(names) - set(targets()))
    if unknown:
        parser.error(f"no such harness: {', '.join(unknown)} (have: {', '.join(targets())})")
    report = []
    for name in names:
        row = run_one(name, args.runs, args.libfuzzer)
        report.append(row)
        status = "CRASH" if row["crashed"] else "ok"
        print(f"{name:18} {row['runs']:>8} inputs  {row['wall_s']:>7}s  cov {row['cov']}"
              f"  {status}{'  ' + ', '.join(row['findings']) if row['findings'] else ''}",
              flush=True)
    FUZZ_DIR.mkdir(exist_ok=True)
    (FUZZ_DIR / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(row["crashed"] for row in report) else 0


if __name__ == "__main__":
    raise SystemExit(main())
