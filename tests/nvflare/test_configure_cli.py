import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nvflare")

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[2] / "src"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(cwd), "NVFLARE_POC_WORKSPACE": str(cwd / "poc"),
           "COLUMNS": "200", "PYTHONPATH": str(SRC)}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_configure_a_poc_workspace(tmp_path):
    nvflare = str(Path(sys.executable).parent / "nvflare")
    prepared = _run(nvflare, "poc", "prepare", "-c", "site-1", "site-2", "--force", cwd=tmp_path)
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    prod = tmp_path / "poc" / "example_project" / "prod_00"
    proc = _run(sys.executable, "-m", "ccattest", "nvflare", "configure", "--poc", str(prod),
                "--not-cc", "site-2", "--on-rejected", "shutdown", "--round-interval", "10",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "site-2 (client)" in proc.stdout and "not CC-enabled" in proc.stdout
    for site in ("server", "site-1", "site-2"):
        local = prod / site / "local"
        assert json.loads((local / "ccattest__p_resources.json").read_text())["components"]
        assert (local / "cc" / "cc_config.yaml").is_file()
    assert "on_rejected: shutdown" in (prod / "site-1/local/cc/cc_config.yaml").read_text()
    root_keys = prod / ".ccattest-root" / "federation.jwks.json"
    assert str(root_keys) in proc.stdout and root_keys.is_file()
    # The record: a named federation, every site's records in one PostgreSQL database.
    named = _run(sys.executable, "-m", "ccattest", "nvflare", "configure", "--poc", str(prod),
                 "--federation", "hospitals-eu", "--record-url",
                 "postgresql://ccattest@db.internal/records_{site}", cwd=tmp_path)
    assert named.returncode == 0, named.stdout + named.stderr
    from ccattest.mesh.config import load_cc_config
    from ccattest.record.keys import note_keys

    config, _ = load_cc_config(prod / "site-1" / "local" / "cc" / "cc_config.yaml")
    assert config.record is not None and config.record.federation == "hospitals-eu"
    assert config.record.url == "postgresql://ccattest@db.internal/records_{site}"
    shared = _run(sys.executable, "-m", "ccattest", "nvflare", "configure", "--poc", str(prod),
                  "--record-url", "postgresql://ccattest@db.internal/records", cwd=tmp_path)
    assert shared.returncode == 2 and "{site} in the URL" in shared.stderr
    keys = note_keys(json.loads(root_keys.read_text()))
    assert set(keys.logs) == {f"ccattest.record/hospitals-eu/{s}"
                              for s in ("server", "site-1", "site-2")}
    assert set(keys.witnesses) == {"server", "site-1", "site-2"}
    odd = _run(sys.executable, "-m", "ccattest", "nvflare", "configure", "--poc", str(prod),
               "--federation", "two words", cwd=tmp_path)
    assert odd.returncode == 2 and "invalid option" in odd.stderr
    bad = _run(sys.executable, "-m", "ccattest", "nvflare", "configure", "--poc", str(prod),
               "--on-rejected", "explode", cwd=tmp_path)
    assert bad.returncode == 2 and "invalid option" in bad.stderr
    none = _run(sys.executable, "-m", "ccattest", "nvflare", "configure", str(tmp_path),
                cwd=tmp_path)
    assert none.returncode == 2 and "not an NVFlare server or client startup kit" in none.stderr
