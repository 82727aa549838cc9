"""Every command in the README's tour, run as a reader would, so the page cannot rot.

Blocks: ```sh runs in a fresh folder; ```sh vectors also gets V, the shared test vectors;
```text is the verdict the page shows, compared with the real output. A command ending in
`# exit N` must exit with N; every other command must succeed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCK = re.compile(r"^```(\w+)( \w+)?\n(.*?)^```$", re.M | re.S)
EXPECT = re.compile(r"\s+#\s*exit (\d+)\s*$")


def blocks(section: str) -> list[tuple[str, str]]:
    """(kind, body) of the fenced blocks between `section` and the next `## ` heading."""
    text = README.read_text()
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    return [(lang + (extra or ""), body)
            for lang, extra, body in BLOCK.findall(text[start:end if end > 0 else None])]


def script(body: str) -> str:
    """The block as one bash script that stops at the first command with the wrong exit."""
    lines = ["set -u"]
    for raw in body.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = EXPECT.search(line)
        expected = int(match.group(1)) if match else 0
        command = EXPECT.sub("", line)
        if re.fullmatch(r"[A-Z_]+=\S+", command):
            lines.append(command)
            continue
        quoted = command.replace("'", "'\\''")
        lines.append(f"{command}; rc=$?; if [ $rc -ne {expected} ]; then "
                     f"echo 'README command failed (exit '$rc', wanted {expected}): "
                     f"{quoted}' >&2; exit 99; fi")
    return "\n".join(lines) + "\n"


def run_block(body: str, cwd: Path, vectors: Path | None) -> subprocess.CompletedProcess[str]:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "HOME": str(cwd), "COLUMNS": "80", "NO_COLOR": "1",
           "PYTHONPATH": str(REPO / "src"), "PATH": bindir + os.pathsep + os.environ["PATH"]}
    for name in ("CCATTEST_KEY_DIR", "CCATTEST_COLLATERAL"):
        env.pop(name, None)
    if vectors is not None:
        env["V"] = str(vectors)
    return subprocess.run(["bash", "-c", script(body)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_the_script_builder_checks_exit_codes(tmp_path):
    assert run_block("true\nfalse  # exit 1\n", tmp_path, None).returncode == 0
    failed = run_block("false\ntrue\n", tmp_path, None)
    assert failed.returncode == 99 and "README command failed (exit 1, wanted 0)" in failed.stderr


@pytest.mark.vectors
def test_every_command_in_the_tour(tmp_path, vectors):
    found = blocks("## A tour of the CLI")
    kinds = [kind for kind, _ in found]
    assert kinds.count("sh") >= 1 and kinds.count("sh vectors") >= 3 and "text" in kinds
    for number, (kind, body) in enumerate(found):
        if not kind.startswith("sh"):
            continue
        folder = tmp_path / f"block{number}"
        folder.mkdir()
        proc = run_block(body, folder, vectors if kind == "sh vectors" else None)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr


@pytest.mark.vectors
def test_the_verdict_shown_is_the_real_one(tmp_path, vectors):
    """The page's sample verdict is what ccattest prints for that SNP report today."""
    (shown,) = [body for kind, body in blocks("## A tour of the CLI") if kind == "text"]
    snp = vectors / "sev-snp/virtee-sev/tests/certs_data"
    body = (f"ccattest policy init --platform snp > snp.yaml\n"
            f"ccattest verify {snp}/report_milan.hex --platform snp --certs "
            f"{snp}/vcek_milan.der --report-data "
            "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581"
            "0b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd "
            "--at 2026-11-26 --policy snp.yaml > verdict.txt  # exit 3\n")
    proc = run_block(body, tmp_path, vectors)
    assert proc.returncode == 0, proc.stderr
    pattern = re.escape(shown).replace(re.escape("..."), "[0-9a-f]+")
    assert re.fullmatch(pattern, (tmp_path / "verdict.txt").read_text()), (
        (tmp_path / "verdict.txt").read_text())


@pytest.mark.parametrize("section", ["## On NVIDIA FLARE"])
def test_other_sections_run_too(tmp_path, section):
    for kind, body in blocks(section):
        if kind == "sh":
            proc = run_block(body, tmp_path, None)
            assert proc.returncode == 0, proc.stderr[-3000:]
