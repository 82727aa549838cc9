"""Recovery on real NVFlare: what heals heals the federation, with fresh attestation."""

from __future__ import annotations

import sqlite3
import time

import pytest

from ccattest.nvflare.poc import ADMIN, PocFederation, wait_for
from tests.cli_process import ccattest
from tests.e2e.test_poc import _registered, _rounds, _run_job

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _kinds(poc: PocFederation, site: str, about: str) -> list[str]:
    path = poc.prod / site / "local" / "cc" / "record.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT kind, body FROM entries WHERE kind IN "
                          "('exclusion', 'readmission') ORDER BY idx").fetchall()
    return [kind for kind, body in rows if f'"site":"{about}"' in bytes(body).decode()]


def _excluded(poc: PocFederation, site: str, peer: str) -> bool:
    return peer in poc.status(site).get("excluded", {})


def test_killed_client_is_excluded_then_restarted_readmitted_and_runs_a_job(poc, tmp_path):
    poc.configure()  # rounds every 3 s, 5 s grace
    poc.start()
    _registered(poc, "site-1", "site-2")
    _rounds(poc, 1)
    poc.kill("site-2")  # SIGKILL, mid-round or between rounds
    wait_for(lambda: _excluded(poc, "server", "site-2"), 60, "site-2 to be excluded")
    confirmed = len([e for e in poc.events("server", "registration_confirmed")
                     if e["site"] == "site-2"])
    poc.restart("site-2")
    # Before this change NVFlare refused it ("Client 'site-2' is disabled") and it exited.
    wait_for(lambda: not _excluded(poc, "server", "site-2"), 60, "site-2's re-admission")
    assert poc.alive("site-2")
    again = [e for e in poc.events("server", "registration_confirmed") if e["site"] == "site-2"]
    assert len(again) > confirmed  # it re-registered with a fresh confirmation ...
    wait_for(lambda: poc.events("site-2", "server_attested"), 30, "site-2 to attest the server")
    assert [e["site"] for e in poc.events("server", "readmit_site")] == ["site-2"]
    assert _kinds(poc, "server", "site-2") == ["exclusion", "readmission"]
    assert not poc.status("server")["held"]
    assert _run_job(poc, tmp_path, min_clients=2) == "FINISHED:COMPLETED"


def test_rejected_site_needs_an_operator_then_fresh_evidence(poc, tmp_path):
    poc.configure()
    poc.start()
    _registered(poc, "site-1", "site-2")
    workload = poc.prod / "site-2" / "local" / "cc" / "workload.txt"
    honest = workload.read_text()
    workload.write_text(honest + "exfiltrate=model-weights\n")
    for judge in ("server", "site-1"):
        wait_for(lambda j=judge: _excluded(poc, j, "site-2"), 60, f"{judge} to exclude site-2")
    workload.write_text(honest)  # repaired, but rejected: manual by default
    time.sleep(8)  # a few rounds: nobody re-admits it by itself
    assert _excluded(poc, "server", "site-2") and _excluded(poc, "site-1", "site-2")
    # The server's operator through NVFlare's admin channel, site-1's through its own kit.
    lifted = ccattest("nvflare", "readmit", "site-2", "--admin", str(poc.prod / ADMIN),
                      cwd=tmp_path)
    assert lifted.returncode == 0 and "hold lifted" in lifted.stdout, lifted.stdout + \
        lifted.stderr
    assert ccattest("nvflare", "readmit", "site-2", "--kit", str(poc.prod / "site-1"),
                    cwd=tmp_path).returncode == 0
    for judge in ("server", "site-1"):
        wait_for(lambda j=judge: not _excluded(poc, j, "site-2"), 60,
                 f"{judge} to re-admit site-2 on fresh evidence")
    assert _kinds(poc, "server", "site-2")[-1] == "readmission"
    refused = ccattest("nvflare", "readmit", "site-2", "--admin", str(poc.prod / ADMIN),
                       cwd=tmp_path)
    assert refused.returncode == 2 and "not excluded" in refused.stderr
    assert _run_job(poc, tmp_path, min_clients=2) == "FINISHED:COMPLETED"


def test_restarted_server_trusts_nothing_from_before_until_fresh_rounds(poc, tmp_path):
    poc.configure()
    poc.start()
    _registered(poc, "site-1", "site-2")
    _rounds(poc, 1)
    poc.restart("server")
    wait_for(lambda: poc.status("server").get("rounds", 0) == 0, 60, "the new server")
    status = _rounds(poc, 1)  # its trust book starts empty: only a fresh round counts
    wait_for(lambda: set(poc.status("server").get("last_round", {}).get("attested", []))
             == {"server", "site-1", "site-2"}, 60, "a round with both clients")
    assert not status["excluded"]
    cells = {(c["verifier"], c["peer"]) for c in poc.status("server")["matrix"]}
    assert {("server", "site-1"), ("site-1", "server")} <= cells  # mutual, after the restart
    assert _run_job(poc, tmp_path, min_clients=2) == "FINISHED:COMPLETED"
