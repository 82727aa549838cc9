"""Fail when a core module's branch coverage is below the bar (coverage's own
fail_under only sees the total)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

THRESHOLD = 90.0
CORE = (
    "ccattest/errors.py", "ccattest/evidence.py", "ccattest/encoding.py", "ccattest/result.py",
    "ccattest/freshness.py", "ccattest/tokens.py", "ccattest/jws.py", "ccattest/timeutil.py",
    "ccattest/pipeline.py", "ccattest/policy/", "ccattest/platforms/base.py",
    "ccattest/platforms/software/", "ccattest/mesh/",
    "ccattest/platforms/snp/", "ccattest/platforms/tdx/", "ccattest/platforms/ita/",
    "ccattest/platforms/nvgpu/", "ccattest/platforms/azure/", "ccattest/platforms/tsm.py",
    "ccattest/provisioning.py", "ccattest/collateral/", "ccattest/record/", "ccattest/console/",
    "ccattest/seal/",
)


def main(report_path: str) -> int:
    files = json.loads(Path(report_path).read_text())["files"]
    failures, checked = [], 0
    for name, data in sorted(files.items()):
        path = name.replace("\\", "/")
        if not any(core in path for core in CORE):
            continue
        summary = data["summary"]
        branches, covered = summary["num_branches"], summary["covered_branches"]
        percent = 100.0 if branches == 0 else 100.0 * covered / branches
        checked += 1
        if percent < THRESHOLD:
            failures.append(f"  {path}: {percent:.1f}% of {branches} branches")
    if checked == 0:
        print("coverage check: no core module was measured")
        return 1
    if failures:
        print(f"branch coverage below {THRESHOLD}% in core modules:")
        print("\n".join(failures))
        return 1
    print(f"branch coverage >= {THRESHOLD}% in all {checked} core modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".coverage-report.json"))
