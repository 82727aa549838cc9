"""A short run of every fuzz/ harness, so none rots between `make fuzz` runs.

Each harness runs in its own process for FUZZ_SMOKE_RUNS inputs (default 2000, a fixed
libFuzzer seed so CI replays the same inputs) with the limits `make fuzz` uses (1 s per
input, bounded RSS). A crash (an exception other than a CCAttestError), a slow input or a
harness that no longer starts fails the test; its log is in the failure message. Without
atheris the test skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FUZZ = REPO / "fuzz"
HARNESSES = sorted(path.stem.removeprefix("fuzz_") for path in FUZZ.glob("fuzz_*.py"))
RUNS = int(os.environ.get("FUZZ_SMOKE_RUNS", "2000"))

pytestmark = pytest.mark.slow


def test_every_harness_is_listed() -> None:
    assert len(HARNESSES) >= 20, HARNESSES


@pytest.fixture(scope="module")
def atheris_present() -> None:
    if importlib.util.find_spec("atheris") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but atheris is not installed (pip install -e '.[fuzz]')")
        pytest.skip("atheris is not installed (pip install -e '.[fuzz]')")


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_runs_clean(name: str, tmp_path: Path, vectors: Path,
                            atheris_present: None) -> None:
    corpus, crashes = tmp_path / "corpus", tmp_path / "crashes"
    crashes.mkdir()
    env = {**os.environ, "CCATTEST_VECTORS": str(vectors)}
    command = [sys.executable, str(FUZZ / f"fuzz_{name}.py"), f"-runs={RUNS}", "-seed=1",
               f"-artifact_prefix={crashes}/", str(corpus)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300,
                          cwd=REPO, check=False)
    log = done.stdout + done.stderr
    found = sorted(path.name for path in crashes.iterdir())
    assert done.returncode == 0 and not found, (
        f"fuzz_{name} failed (exit {done.returncode}, artifacts {found}); replay with "
        f"`python fuzz/fuzz_{name}.py <artifact>`:\n{log[-6000:]}")
    assert f"Done {RUNS} runs" in log, log[-3000:]
