"""Every command in docs/deploying.md, run as the page says (block kinds are listed at the
top of the page): on the software TEE or a local stand-in here, so no real hardware."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("nvflare")

from ccattest.mesh.config import load_cc_config
from ccattest.policy import load_policy

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "deploying.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.M | re.S)
KINDS = {"sh", "sh hardware", "sh standin", "sh install", "sh nvflare-start", "sh after-job",
         "yaml file", "yaml cc_config", "yaml policy"}


def blocks() -> list[tuple[str, str, str]]:
    """(kind, argument, body) of every fenced block, in page order."""
    found = []
    for language, info, body in BLOCK.findall(DOC.read_text()):
        words = info.split()
        kind, arg = language, ""
        if words:
            name, _, arg = words[0].partition("=")
            kind = f"{language} {name}"
        assert kind in KINDS, f"unclassified block ```{language}{info}"
        found.append((kind, arg, body))
    return found


def commands(body: str) -> list[str]:
    lines = body.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "HOME": str(cwd / "home"), "COLUMNS": "80", "NO_COLOR": "1",
           "PYTHONPATH": str(REPO / "src"), "PATH": bindir + os.pathsep + os.environ["PATH"]}
    for name in ("CCATTEST_KEY_DIR", "CCATTEST_COLLATERAL"):
        env.pop(name, None)
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def _check_install(command: str) -> None:
    match = re.fullmatch(r"pip install '(\w+)\[([\w,]+)\]'", command)
    assert match and match.group(1) == "ccattest", command
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(match.group(2).split(",")) <= set(extras), command


def _check_start(command: str, cwd: Path) -> None:
    match = re.fullmatch(r"cd (\S+) && (\./startup/start\.sh)", command)
    assert match, command
    script = cwd / match.group(1) / match.group(2)
    assert script.is_file() and os.access(script, os.X_OK), script


def _check_example(kind: str, body: str, cwd: Path) -> None:
    path = cwd / "example.yaml"
    path.write_text(body)
    if kind == "yaml policy":
        load_policy(path)
    else:
        load_cc_config(path)


@pytest.mark.vectors
def test_every_command_in_deploying_md(tmp_path, vectors):
    from ccattest.testing.kds_server import KdsServer

    (tmp_path / "home").mkdir()
    data = vectors / "sev-snp/virtee-sev/tests/certs_data"
    shutil.copy(data / "report_milan.hex", tmp_path / "snp-report.hex")
    shutil.copy(data / "vcek_milan.der", tmp_path / "snp-vcek.der")
    chip = bytes.fromhex((data / "report_milan.hex").read_text().strip())[0x1A0:0x1E0]
    ran: dict[str, int] = {}
    with KdsServer() as kds:
        kds.serve_vcek("Milan", chip, {"blSPL": 3, "teeSPL": 0, "snpSPL": 8, "ucodeSPL": 115},
                       (data / "vcek_milan.der").read_bytes())
        kds.serve_chain("Milan", (data / "cert_chain_milan").read_bytes())
        for kind, arg, body in blocks():
            ran[kind] = ran.get(kind, 0) + 1
            if kind == "yaml file":
                (tmp_path / arg).write_text(body)
                continue
            if kind in ("yaml policy", "yaml cc_config"):
                _check_example(kind, body, tmp_path)
                continue
            for command in commands(body):
                if kind == "sh install":
                    _check_install(command)
                elif kind == "sh after-job":
                    assert command.startswith("ccattest audit "), command  # run by the e2e
                elif kind == "sh nvflare-start":
                    _check_start(command, tmp_path)
                elif kind == "sh hardware":
                    proc = _run(command, tmp_path)
                    assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
                    assert proc.stderr.startswith("error: "), (command, proc.stderr)
                    assert "Traceback" not in proc.stderr
                else:
                    extra = f" --kds {shlex.quote(kds.url)}" if kind == "sh standin" else ""
                    proc = _run(command + extra, tmp_path)
                    assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
                    assert "Traceback" not in proc.stderr
        assert kds.requests  # the stand-in was asked, not AMD
    assert set(ran) == KINDS  # every kind of block is exercised
    status = _run("ccattest status workspace/cc_project/prod_00", tmp_path)
    assert status.stdout.count("no status yet: site not started with ccattest") == 3
