"""`nvflare provision` with ccattest's CCBuilder, run as a user would (real subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nvflare")

from ccattest.mesh.config import build_agent, load_cc_config

pytestmark = pytest.mark.slow

PROJECT = """\
api_version: 3
name: cc_project
description: ccattest provisioning test
participants:
  - {name: server, type: server, org: acme, fed_learn_port: 8102, default_host: localhost,
     cc_config: server-cc.yaml}
  - {name: site-1, type: client, org: acme, cc_config: site-1-cc.yaml}
  - {name: site-2, type: client, org: acme}
  - {name: admin@acme.org, type: admin, org: acme, role: project_admin}
builders:
  - path: nvflare.lighter.impl.workspace.WorkspaceBuilder
  - path: nvflare.lighter.impl.static_file.StaticFileBuilder
    args: {config_folder: config}
  - path: ccattest.nvflare.provision.CCBuilder
    args: {rounds: {interval_seconds: 30}, actions: {on_rejected: stop_jobs}}
  - path: nvflare.lighter.impl.cert.CertBuilder
  - path: nvflare.lighter.impl.signature.SignatureBuilder
"""


def _provision(tmp_path: Path, project: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "project.yml").write_text(project)
    nvflare = Path(sys.executable).parent / "nvflare"
    return subprocess.run([str(nvflare), "provision", "-p", "project.yml"], cwd=tmp_path,
                          env={**os.environ, "HOME": str(tmp_path)}, capture_output=True,
                          text=True, timeout=120, check=False)


def test_ccbuilder_writes_every_kit(tmp_path):
    (tmp_path / "server-cc.yaml").write_text("cc_enabled: true\n")
    (tmp_path / "site-1-cc.yaml").write_text("cc_enabled: true\nworkload: {job: fedavg}\n")
    proc = _provision(tmp_path, PROJECT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prod = next((tmp_path / "workspace" / "cc_project").glob("prod_*"))
    agents = {}
    for site in ("server", "site-1", "site-2"):
        local = prod / site / "local"
        resources = json.loads((local / "ccattest__p_resources.json").read_text())
        assert resources["components"][0]["path"] == "ccattest.nvflare.CCManager"
        config, base = load_cc_config(local / "cc" / "cc_config.yaml")
        assert config.site == site and config.actions.on_rejected == "stop_jobs"
        agents[site] = build_agent(config, base)
    assert agents["site-1"].cc_enabled and not agents["site-2"].cc_enabled
    assert not list(prod.rglob("root.key.pem"))  # the root key never enters a kit
    nonce = b"p" * 32
    evidence = agents["site-1"].collect(nonce, "ctx")
    from datetime import UTC, datetime

    verdict = agents["server"].judge("site-1", evidence, nonce=nonce, context="ctx",
                                     at=datetime.now(UTC))
    assert verdict.affirming, verdict.failures()


def test_bad_cc_config_fails_provisioning_instead_of_disabling_cc(tmp_path):
    (tmp_path / "server-cc.yaml").write_text("cc_enabled: true\n")
    (tmp_path / "site-1-cc.yaml").write_text("cc_enabled: true\nmeasure_everything: yes\n")
    proc = _provision(tmp_path, PROJECT)
    assert proc.returncode != 0
    assert "expected keys cc_enabled and workload" in proc.stdout + proc.stderr
