"""Sealed models on a real NVFlare POC: with `seal: on` every model payload leaves a site
as ciphertext sealed to its recipient's attested key (the site-level filter in
privacy.json, no job code), the job's aggregate is the one an unsealed run computes, and a
site excluded mid-job is sent nothing sealed after its exclusion."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ccattest.nvflare.kits import PRIVACY_FILE, RESOURCES_FILE, SEAL_SCOPE
from ccattest.nvflare.poc import PocFederation, wait_for, write_numpy_job
from ccattest.seal.envelope import MAGIC
from ccattest.testing.relayed_tee import KEY_ID_FILE, RELAYER_KEY_FILE, ask_tee
from ccattest.testing.wire_probe import PROBE_FILE
from tests.e2e.test_poc import _registered, _rounds, _tamper

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROUNDS = 2


def _job(poc: PocFederation, folder: Path, *, rounds: int = ROUNDS, wait: bool = True,
         min_clients: int = 2) -> tuple[str, str]:
    session = poc.session()
    try:
        job = session.submit_job(str(write_numpy_job(folder, rounds=rounds,
                                                     min_clients=min_clients)))
        if not wait:
            return job, "SUBMITTED"
        return job, session.wait_for_job(job, timeout=180, poll_interval=0.5)["status"]
    finally:
        session.close()


def _server_run(poc: PocFederation, job: str) -> zipfile.ZipFile:
    """The server's run folder of a finished job, as NVFlare keeps it (a zip in its job
    store: the folder itself is removed when the job ends)."""
    (stored,) = poc.workspace.glob(f"**/jobs-storage/{job}/workspace")
    return zipfile.ZipFile(stored)


def _probe(poc: PocFederation, site: str, job: str) -> list[dict]:
    texts: list[str] = []
    if site == "server":
        try:
            with _server_run(poc, job) as run:
                texts = [run.read(n).decode() for n in run.namelist()
                         if n.endswith(PROBE_FILE)]
        except ValueError:  # still running: the folder is there
            texts = [p.read_text() for p in (poc.prod / site).glob(f"{job}/{PROBE_FILE}")]
    else:
        texts = [p.read_text() for p in (poc.prod / site).glob(f"{job}/{PROBE_FILE}")]
    lines = [json.loads(line) for text in texts for line in text.splitlines()]
    return [line for line in lines if line["direction"] == "out"]


def _aggregate(poc: PocFederation, job: str) -> np.ndarray:
    with _server_run(poc, job) as run:
        (name,) = [n for n in run.namelist() if n.endswith("models/server.npy")]
        return np.load(io.BytesIO(run.read(name)), allow_pickle=False)


def _server_entries(poc: PocFederation, kind: str) -> list[dict]:
    from ccattest.record.entry import decode
    from ccattest.record.store import RecordStore

    path = poc.prod / "server" / "local" / "cc" / "record.sqlite3"
    with RecordStore.open(path, origin=None, create=False) as store:
        return [decode(e.body).data for e in store.entries(kind=kind)]


def _recorded_refusals(poc: PocFederation) -> list[dict]:
    """The server's record: each seal refusal is an action entry, once per peer and why."""
    return [a for a in _server_entries(poc, "action") if a.get("action") == "seal_refused"]


def _with_probe(poc: PocFederation, *, keep: bool = False) -> None:
    """The wire probe as a site-level filter after ours in every site's privacy.json (a
    job's own filters are refused: not in NVFlare's component allow list)."""
    probe = {"path": "ccattest.testing.wire_probe.WireProbe", "args": {"keep": keep}}
    for site in ("server", *poc.clients):
        path = poc.prod / site / "local" / PRIVACY_FILE
        data = json.loads(path.read_text()) if path.is_file() else {
            "scopes": [{"name": "probe"}], "default_scope": "probe"}
        for scope in data["scopes"]:
            for chain in ("task_data_filters", "task_result_filters"):
                scope[chain] = [*scope.get(chain, []), probe]
        path.write_text(json.dumps(data))


def _run(poc: PocFederation, tmp_path: Path, seal: str) -> tuple[str, np.ndarray]:
    poc.configure(seal=seal)
    _with_probe(poc)
    poc.start()
    _registered(poc, "site-1", "site-2")
    _rounds(poc, 1)
    job, status = _job(poc, tmp_path / f"jobs-{seal}")
    assert status == "FINISHED:COMPLETED", status
    return job, _aggregate(poc, job)


def test_models_travel_sealed_and_aggregate_as_without_sealing(tmp_path: Path) -> None:
    clear_poc = PocFederation(tmp_path / "clear")
    clear_poc.prepare()
    try:
        clear_job, clear = _run(clear_poc, tmp_path, "off")
        clear_wire = _probe(clear_poc, "server", clear_job)
        assert clear_wire and all(line["arrays"] >= 1 for line in clear_wire)
    finally:
        clear_poc.stop()

    poc = PocFederation(tmp_path / "sealed")
    poc.prepare()
    try:
        job, sealed = _run(poc, tmp_path, "on")
        privacy = json.loads((poc.prod / "site-1" / "local" / PRIVACY_FILE).read_text())
        assert privacy["default_scope"] == SEAL_SCOPE
        np.testing.assert_array_equal(sealed, clear)  # the same aggregate, sealed or not
        trained = np.arange(1, 10, dtype=np.float32).reshape(3, 3) + ROUNDS  # NPTrainer: +1
        np.testing.assert_array_equal(sealed, trained)  # and the clients really trained
        # Leaving the server (task data) and leaving each client (results): ciphertext.
        out = _probe(poc, "server", job)
        assert {line["peer"] for line in out} == {"site-1", "site-2"}
        assert len(out) == 2 * ROUNDS
        back = _probe(poc, "site-1", job) + _probe(poc, "site-2", job)
        assert len(back) == 2 * ROUNDS
        for line in out + back:
            assert line["keys"] == ["ccattest.sealed"] and line["arrays"] == 0, line
            assert line["sealed_prefix"] == MAGIC.hex(), line
        logs = (poc.workspace / "logs" / "server.log").read_text()
        assert "sealed train" in logs
    finally:
        poc.stop()


def test_a_site_excluded_mid_job_is_sent_nothing_sealed_after(tmp_path: Path) -> None:
    poc = PocFederation(tmp_path)
    poc.prepare()
    try:
        poc.configure(seal="on")
        _with_probe(poc)
        poc.start()
        _registered(poc, "site-1", "site-2")
        _rounds(poc, 1)
        job, _ = _job(poc, tmp_path / "jobs", rounds=500, wait=False)
        wait_for(lambda: any(line["peer"] == "site-2" for line in _probe(poc, "server", job)),
                 90, "the long job to send site-2 a sealed model")
        _tamper(poc, "site-2")
        wait_for(lambda: "site-2" in poc.status("server").get("excluded", {}), 60,
                 "the server to exclude tampered site-2")
        time.sleep(1)  # a payload sealed just before the exclusion may still be logged
        before = [line for line in _probe(poc, "server", job) if line["peer"] == "site-2"]
        assert before, "site-2 received sealed models before its exclusion"
        to_site_1 = len([line for line in _probe(poc, "server", job)
                         if line["peer"] == "site-1"])
        # The job goes on without site-2 (min_clients is met by the rest): site-1 keeps
        # receiving sealed models, site-2 nothing more.
        wait_for(lambda: len([line for line in _probe(poc, "server", job)
                              if line["peer"] == "site-1"]) >= to_site_1 + 3, 60,
                 "the job to go on with site-1")
        after = [line for line in _probe(poc, "server", job) if line["peer"] == "site-2"]
        assert after == before, "site-2 was sent a model after its exclusion"
        session = poc.session()
        try:
            session.abort_job(job)
        finally:
            session.close()
        logs = (poc.workspace / "logs" / "server.log").read_text()
        assert "nothing is sealed to site-2" in logs
        refusals = _recorded_refusals(poc)
        assert refusals and refusals[0]["site"] == "site-2", refusals
        # Anything asked for site-2 since is refused by the server's own process.
        from ccattest.nvflare.sealing import SealClient
        client = SealClient(poc.prod / "server" / "local" / "cc")
        with pytest.raises(Exception, match="nothing is sealed to site-2"):
            client.ask("key", site="site-2")
        assert client.ask("key", site="site-1")["key"]["suite"] == "mlkem768-x25519"
        assert poc.alive("server") and poc.alive("site-1")
    finally:
        poc.stop()


def _relay_through_tee(poc: PocFederation, site: str, folder: Path) -> subprocess.Popen:
    """`site`'s kit becomes a stolen kit on a machine without the TEE: its attestation key
    moves into a TEE process (ccattest inside a genuine TEE), and its CC manager becomes the
    relayer that forwards every challenge there (testing/relayed_tee.py)."""
    cc = poc.prod / site / "local" / "cc"
    shutil.copytree(cc, folder / "cc")
    (cc / "keys" / "site.key.pem").unlink()  # the one thing the stolen kit lacks
    resources = poc.prod / site / "local" / RESOURCES_FILE
    data = json.loads(resources.read_text())
    (component,) = data["components"]
    component.update(path="ccattest.testing.relayed_tee.RelayingCCManager",
                     args={**component["args"], "tee_socket": str(folder / "tee.sock")})
    resources.write_text(json.dumps(data))
    with (poc.workspace / "logs" / "tee.log").open("ab") as log:
        tee = subprocess.Popen(
            [sys.executable, "-m", "ccattest.testing.relayed_tee",
             str(folder / "cc" / "cc_config.yaml"), str(folder / "tee.sock")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: (folder / KEY_ID_FILE).is_file() or tee.poll() is not None, 60,
             "the TEE process to serve")
    assert tee.poll() is None, (poc.workspace / "logs" / "tee.log").read_text()
    return tee


def _kept_payloads(poc: PocFederation, job: str, peer: str) -> list[tuple[dict, bytes]]:
    """The sealed payloads the server's probe kept for `peer`, with their probe lines."""
    with _server_run(poc, job) as run:
        names = {name.rsplit("/", 1)[-1]: name for name in run.namelist()}
        return [(line, run.read(names[line["file"]])) for line in _probe(poc, "server", job)
                if line["peer"] == peer]


def test_a_relayer_passes_attestation_but_cannot_open_the_model(tmp_path: Path) -> None:
    """Issue 14's relay on real NVFlare: site-2's startup kit, stolen onto a machine
    without the TEE, relays every challenge to ccattest in a genuine TEE fed site-2's name.
    Attestation cannot tell (the TEE is genuine); the model is sealed to the TEE's key, which
    the relayer's process cannot open and the TEE can."""
    poc = PocFederation(tmp_path / "poc")
    poc.prepare()
    folder = Path(tempfile.mkdtemp(prefix="cctee-"))  # short: a Unix socket's path
    (poc.workspace / "logs").mkdir(parents=True, exist_ok=True)
    tee = None
    try:
        poc.configure(seal="on")
        _with_probe(poc, keep=True)
        tee = _relay_through_tee(poc, "site-2", folder)
        poc.start()
        _registered(poc, "site-1", "site-2")
        _rounds(poc, 1)
        tee_key = (folder / KEY_ID_FILE).read_text()
        relayer_key = (poc.prod / "site-2" / "local" / "cc" / RELAYER_KEY_FILE).read_text()
        assert tee_key != relayer_key
        # Attestation passed, at registration and in the round, binding the TEE's key.
        assert "site-2" not in poc.status("server").get("excluded", {})
        bound = {v["seal_key"]["id"] for v in _server_entries(poc, "verdict")
                 if v.get("peer") == "site-2" and v.get("affirming")}
        assert bound == {tee_key}, bound

        job, status = _job(poc, tmp_path / "jobs", rounds=1, min_clients=2)
        # site-2's process cannot open its task data; NVFlare takes a task data filter's
        # failure as fatal and ends the run: closed, with the reason in the server's log.
        job_log = next((poc.prod / "site-2").glob(f"{job}/log.txt")).read_text()
        assert "SealedPayloadInvalid: a sealed payload is for another key" in job_log
        server_log = (poc.workspace / "logs" / "server.log").read_text()
        assert "Result from site-2 is bad, error code: TASK_DATA_FILTER_ERROR" in server_log
        assert status == "FINISHED:EXECUTION_EXCEPTION", status
        assert _probe(poc, "site-2", job) == []  # it never had a model to train on or send
        kept = _kept_payloads(poc, job, "site-2")
        assert kept, "the server sealed nothing for site-2"
        # The payload sealed "to site-2" opens inside the TEE, not in site-2's process.
        from ccattest.nvflare.sealing import _loads

        line, payload = kept[0]
        context = {"job": job, "task": line["task"], "round": line["round"],
                   "sender": "server", "recipient": "site-2"}
        plain = ask_tee(folder / "tee.sock", {"op": "open", "context": context,
                                               "payload": base64.b64encode(payload).decode()})
        model = _loads(base64.b64decode(plain["plain"]))
        assert any(isinstance(v, np.ndarray) for v in model.values()), model
        assert poc.alive("server") and poc.alive("site-1")
        assert "site-1" not in poc.status("server").get("excluded", {})
    finally:
        poc.stop()
        if tee is not None:
            tee.kill()
            tee.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
