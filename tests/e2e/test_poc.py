"""Each scenario asserts on what the NVFlare processes did (their status files and logs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ccattest.mesh.actions import Action, ActionConfig
from ccattest.nvflare.poc import PocFederation, wait_for, write_numpy_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _registered(poc: PocFederation, *sites: str, timeout: float = 60) -> None:
    wait_for(lambda: {e["site"] for e in poc.events("server", "registration_confirmed")}
             >= set(sites), timeout, f"{sites} to complete mutual attestation")


def _rounds(poc: PocFederation, count: int, timeout: float = 60) -> dict:
    wait_for(lambda: poc.status("server").get("rounds", 0) >= count, timeout,
             f"{count} attestation rounds")
    return poc.status("server")


def _run_job(poc: PocFederation, tmp_path: Path, *, min_clients: int = 2) -> str:
    return _run_job_id(poc, tmp_path, min_clients=min_clients)[1]


def _run_job_id(poc: PocFederation, tmp_path: Path, *, min_clients: int = 2
                ) -> tuple[str, str]:
    session = poc.session()
    try:
        job = session.submit_job(str(write_numpy_job(tmp_path / "jobs",
                                                     min_clients=min_clients)))
        return job, session.wait_for_job(job, timeout=120, poll_interval=0.5)["status"]
    finally:
        session.close()


def _deploying_doc_after_job(poc: PocFederation, job: str, tmp_path: Path, keys: Path
                             ) -> None:
    """docs/deploying.md's `sh after-job` block, run against this federation after its job."""
    import re
    import shlex
    import shutil

    from tests.cli_process import ccattest

    doc = (Path(__file__).resolve().parents[2] / "docs" / "deploying.md").read_text()
    (block,) = re.findall(r"^```sh after-job\n(.*?)^```$", doc, re.M | re.S)
    folder = tmp_path / "data-owner"
    folder.mkdir()
    shutil.copy(keys, folder / "federation.jwks.json")
    for line in filter(None, (raw.strip() for raw in block.splitlines())):
        command = line.replace("workspace/cc_project/prod_00", str(poc.prod))
        command = re.sub(r"\bJOB\b", job, command)
        args = shlex.split(command)
        assert args[0] == "ccattest", line
        result = ccattest(*args[1:], cwd=folder)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        assert all(len(out) <= 80 for out in result.stdout.splitlines()
                   if " " in out.strip()), result.stdout  # paths may run long, prose not


def _records_verify_and_the_receipt_holds(poc: PocFederation, job: str, tmp_path: Path
                                          ) -> None:
    """After a job: both records audit clean with the federation's keys; the job's receipt
    verifies offline with those keys alone, names exactly the sites that took part and
    carries every client's cosignature; a tampered copy of the record is caught."""
    import json
    import sqlite3
    import subprocess

    from ccattest.record.entry import Entry, decode
    from ccattest.record.merkle import leaf_hash
    from tests.cli_process import ccattest as run

    def ccattest(*args: str) -> subprocess.CompletedProcess[str]:
        return run(*args, cwd=tmp_path)

    keys = poc.prod / "server" / "local" / "cc" / "federation.jwks.json"
    for site in ("server", "site-1"):
        result = ccattest("audit", "verify", str(poc.prod / site), "--jwks", str(keys))
        assert result.returncode == 0 and "intact" in result.stdout, result.stdout
    wait_for(lambda: poc.events("server", "receipt_issued"), 30, "the closing receipt")
    saved = tmp_path / "receipts"
    shown = ccattest("audit", "receipt", job, str(poc.prod / "server"), "-o", str(saved))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    result = ccattest("audit", "receipt", "verify", str(saved / f"{job}.admission.jwt"),
                      "--jwks", str(keys), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["participants"] == ["server", "site-1", "site-2"]
    assert report["cosigners"] == ["site-1", "site-2"] and not report["missing_cosigners"]
    assert report["statuses"] == {"server": "issuer", "site-1": "affirming",
                                  "site-2": "affirming"}
    assert ccattest("audit", "receipt", job, str(poc.prod / "site-1")).returncode == 0

    _deploying_doc_after_job(poc, job, tmp_path, keys)

    copy = tmp_path / "tampered.sqlite3"
    with sqlite3.connect(poc.prod / "server" / "local" / "cc" / "record.sqlite3") as live, \
            sqlite3.connect(copy) as target:
        live.backup(target)
    with sqlite3.connect(copy) as db:
        index, body = db.execute("SELECT idx, body FROM entries WHERE kind = 'verdict' "
                                 "ORDER BY idx LIMIT 1").fetchone()
        entry = decode(bytes(body))
        changed = Entry(entry.kind, entry.site, entry.at,
                        {**entry.data, "status": "contraindicated"}).encode()
        db.execute("UPDATE entries SET body = ?, leaf_hash = ? WHERE idx = ?",
                   (changed, leaf_hash(changed), index))
    result = ccattest("audit", "verify", str(copy), "--jwks", str(keys))
    assert result.returncode == 1, result.stdout + result.stderr


def _tamper(poc: PocFederation, site: str) -> None:
    workload = poc.prod / site / "local" / "cc" / "workload.txt"
    workload.write_text(workload.read_text() + "exfiltrate=model-weights\n")


def _status_command_reads_the_federation(poc: PocFederation) -> None:
    import json
    import os
    import subprocess
    import sys

    def status(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "ccattest", "status", "--poc",
                               str(poc.workspace), *args], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1"},
                              check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    view = json.loads(status("--json"))
    assert set(view["sites"]) == {"server", "site-1", "site-2"}
    assert all(site["state"] == "reporting" for site in view["sites"].values())
    assert view["sites"]["site-2"]["rounds"] >= 1 and len(view["rounds"]) >= 2
    cells = {(c["verifier"], c["peer"]): c["status"] for c in view["matrix"]}
    assert cells[("site-2", "site-1")] == "affirming"
    text = status()
    assert "trust matrix" in text and "judged peers in" in text and "last rounds" in text


def test_happy_path_then_byoc_refused_then_tampered_site_caught(poc, tmp_path):
    poc.configure()
    poc.start()
    _registered(poc, "site-1", "site-2")
    for client in ("site-1", "site-2"):  # mutual: each client attested the server too
        wait_for(lambda c=client: poc.events(c, "confirmed"), 30, f"{client} confirmation")
        assert poc.events(client, "server_attested")
    status = _rounds(poc, 2)
    assert set(status["last_round"]["attested"]) == {"server", "site-1", "site-2"}
    cells = {(c["verifier"], c["peer"]): c["status"] for c in status["matrix"]}
    assert cells[("site-1", "site-2")] == "affirming"
    assert cells[("site-2", "server")] == "affirming"
    # A client answers VERIFY before the server counts the round: it has counted it too.
    assert poc.status("site-1")["rounds"] >= 1
    _status_command_reads_the_federation(poc)
    job, status = _run_job_id(poc, tmp_path)
    assert status == "FINISHED:COMPLETED"
    _records_verify_and_the_receipt_holds(poc, job, tmp_path)

    session = poc.session()
    try:
        with pytest.raises(Exception, match="BYOC"):
            session.submit_job(str(write_numpy_job(tmp_path / "byoc", "byoc_job", byoc=True)))
    finally:
        session.close()

    _tamper(poc, "site-2")
    wait_for(lambda: "site-2" in poc.status("server").get("excluded", {}), 30,
             "the server to exclude tampered site-2")
    assert "measurement matches no reference value" in poc.status("server")["excluded"]["site-2"]
    wait_for(lambda: "site-2" in poc.status("site-1").get("excluded", {}), 30,
             "site-1 to exclude site-2 by its own judgement")
    session = poc.session()
    try:
        job = session.submit_job(str(write_numpy_job(tmp_path / "after", "after_tamper",
                                                     min_clients=2)))
        time.sleep(8)  # the scheduler tries every second; the job must not start
        assert session.get_job_meta(job)["status"] == "SUBMITTED"
        session.abort_job(job)
    finally:
        session.close()
    assert poc.alive("server") and poc.alive("site-1")


def test_client_with_unknown_measurement_is_rejected_at_registration(poc, tmp_path):
    poc.configure()
    _tamper(poc, "site-2")
    poc.start()
    _registered(poc, "site-1")
    wait_for(lambda: poc.events("server", "registration_refused"), 60, "site-2's refusal")
    refusal = poc.events("server", "registration_refused")[0]
    assert refusal["site"] == "site-2"
    assert "measurement matches no reference value" in refusal["detail"]
    wait_for(lambda: not poc.alive("site-2"), 60, "rejected site-2 to exit")
    assert _run_job(poc, tmp_path, min_clients=1) == "FINISHED:COMPLETED"
    assert poc.alive("server") and poc.alive("site-1")


def test_clients_refuse_a_server_without_acceptable_evidence(poc):
    poc.configure()
    _tamper(poc, "server")
    poc.start()
    for client in ("site-1", "site-2"):
        wait_for(lambda c=client: poc.events(c, "server_refused"), 60, f"{client} to refuse")
        assert "measurement matches no reference value" in poc.events(
            client, "server_refused")[0]["detail"]
    for client in ("site-1", "site-2"):
        wait_for(lambda c=client: not poc.alive(c), 60, f"{client} to leave")
    assert not poc.events("server", "registration_confirmed")


def test_non_cc_client_is_skipped_and_nobody_shuts_down(poc, tmp_path):
    poc.configure(not_cc=["site-2"])
    poc.start()
    _registered(poc, "site-1")
    status = _rounds(poc, 2)
    assert set(status["last_round"]["sites"]) == {"server", "site-1"}
    assert _run_job(poc, tmp_path) == "FINISHED:COMPLETED"
    assert all(poc.alive(site) for site in ("server", "site-1", "site-2"))
    assert not poc.status("server").get("excluded")


def test_killed_client_is_excluded_after_grace_and_others_keep_running(poc, tmp_path):
    poc.configure()
    poc.start()
    _registered(poc, "site-1", "site-2")
    _rounds(poc, 1)
    poc.kill("site-2")
    killed_at = time.monotonic()
    wait_for(lambda: "site-2" in poc.status("server").get("excluded", {}), 60,
             "killed site-2 to be excluded")
    assert time.monotonic() - killed_at >= 4  # not before the 5 s grace period
    alerts = [e for e in poc.events("server", "alert") if e["site"] == "site-2"]
    assert alerts and "unreachable" in alerts[0]["detail"]
    assert poc.alive("server") and poc.alive("site-1")
    assert _run_job(poc, tmp_path, min_clients=1) == "FINISHED:COMPLETED"


def test_killed_client_with_shutdown_action_stops_everyone_cleanly(poc):
    poc.configure(actions=ActionConfig(on_unreachable=Action.SHUTDOWN,
                                       unreachable_grace_seconds=3))
    poc.start()
    _registered(poc, "site-1", "site-2")
    poc.kill("site-2")
    for site in ("server", "site-1"):
        wait_for(lambda s=site: not poc.alive(s), 90, f"{site} to shut down")
    assert poc.processes["server"].returncode == 0
    assert poc.processes["site-1"].returncode == 0


def _dashboard_while_serving(proc, lines: list[str]) -> None:
    """`demo --serve` keeps the federation up: its dashboard answers with every site."""
    import httpx

    wait_for(lambda: proc.poll() is not None or any("press Ctrl-C" in line for line in lines),
             300, "the demo to start serving")
    assert proc.poll() is None, "".join(lines)[-3000:]
    at = next(i for i, line in enumerate(lines) if line.startswith("dashboard"))
    url, token_file = lines[at + 1].strip(), Path(lines[at + 2].strip())
    assert url.startswith("http://127.0.0.1:") and token_file.stat().st_mode & 0o077 == 0
    token = token_file.read_text().strip()
    answer = httpx.get(url + "api/v1/status", headers={"Authorization": f"Bearer {token}"},
                       timeout=10)
    assert set(answer.json()["sites"]) == {"server", "site-1", "site-2"}
    assert "site-2" in answer.json()["excluded"]


def test_demo_command_runs_and_cleans_up(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "ccattest", "demo", "--work-dir", "demo",
                             "--serve"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "80"})
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        _dashboard_while_serving(proc, lines)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    stdout = "".join(lines)
    assert proc.returncode == 0, stdout[-3000:]
    text = " ".join(stdout.split())
    assert "FINISHED:COMPLETED" in text
    assert "site-2 excluded" in text and "the server and site-1 keep running" in text
    assert "True" not in text and text.count("contraindicated: the verifier found") == 1
    tail = stdout[stdout.index("logs:"):].splitlines()
    assert tail[1].strip() == str(tmp_path / "demo" / "logs")  # a path, whole on its line
    # It ends with the record: where each site's is, the server's audited, the receipt.
    record = stdout[stdout.index("the record"):]
    assert str(tmp_path / "demo" / "poc" / "example_project" / "prod_00" / "server") in \
        record or "record.sqlite3" in record
    assert "$ ccattest audit verify" in record and ": intact\n" in record
    assert "$ ccattest audit receipt verify" in record and "VERIFIED" in record
    assert "cosigned by site-1, site-2" in " ".join(record.split())
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True,
                               text=True, check=False)
    assert not leftovers.stdout.strip(), "demo left NVFlare processes behind"
