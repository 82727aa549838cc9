"""The one way tests run the real `ccattest`: a subprocess with its own HOME, a fixed
terminal width, no colour, and this checkout's sources first on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def ccattest(*args: str, cwd: Path, check: int | None = None, columns: int = 80,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HOME": str(cwd), "COLUMNS": str(columns), "NO_COLOR": "1",
                "PYTHONPATH": str(SRC), **(env or {})}
    full_env.pop("CCATTEST_KEY_DIR", None)  # the developer's keys must not leak in
    proc = subprocess.run([sys.executable, "-m", "ccattest", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120, check=False)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc
