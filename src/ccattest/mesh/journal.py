"""What a site writes to its record (record/), in the words of the mesh.

Growth follows change, not rounds x N^2: a verdict entry is written at registration and
then only when this site's judgement of a peer changes (status, policy, claims or
failures); every round adds ONE entry holding each judged peer's status and fresh evidence
digest. Peers' verdicts about each other are never copied into this site's record: each
site records its own.

Writing never slows a round: a round's verdicts and its round entry go to a writer thread
(`later`), in order; what needs an entry's index (a registration naming its verdict, a job
receipt citing entries) or must be durable before the site answers (a witness's state, a
checkpoint) runs on the same thread and is waited for (`now`). One thread writes a site's
record, so writers never queue on the database's lock (SQLite's busy handler sleeps).

The record failing (disk full, database gone) never stops attestation: the failure is
logged and reported to `on_failure` once per outage, and the site keeps attesting; with
`required` the site also refuses jobs until the record works again (`healthy`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar

from ..evidence import Evidence
from ..policy import Policy
from ..record.entry import Entry, canonical, decode
from ..record.log import SiteLog
from ..timeutil import utcnow
from .agent import SiteVerdict

log = logging.getLogger("ccattest.record")
T = TypeVar("T")
MAX_FAILURES_KEPT = 8
MAX_EVENTS = 4096  # kept in memory for closing receipts
MAX_QUEUED = 10_000  # entries waiting for the writer; beyond it the round waits
QUEUE_WAIT_S = 5.0  # ... this long at most: then the record is failing (an alert)
# Claims that differ at every collection (the challenge a report answers, its time): they
# are recorded with a verdict but do not make a judgement "changed".
VOLATILE_CLAIMS = frozenset({"report_data", "nonce", "eat_nonce", "user_data", "runtime_data",
                             "timestamp", "iat", "exp", "nbf", "jti"})


def evidence_digest(item: Evidence) -> str:
    """SHA-256 of the evidence envelope's canonical JSON (sorted keys, no spaces): the
    envelope holds only strings, so json.dumps gives the canonical bytes directly."""
    text = json.dumps(item.to_dict(), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def policy_digest(policy: Policy) -> str:
    return hashlib.sha256(canonical(_plain(policy.model_dump(mode="json")))).hexdigest()


def _plain(value: Any) -> Any:
    """A value the canonical encoding accepts: floats and other types become strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Journal:
    """A site's writer of record entries; a `Journal(None, ...)` records nothing."""

    def __init__(self, site_log: SiteLog | None, site: str, *, policy: Policy | None = None,
                 required: bool = False, keep_evidence: bool = False,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.log, self.site, self.required = site_log, site, required
        self.keep_evidence = keep_evidence
        self.on_failure = on_failure
        self.policy = None if policy is None else {"id": policy.id,
                                                   "digest": policy_digest(policy)}
        self._lock = threading.Lock()
        self._judged: dict[str, tuple[Any, int]] = {}  # peer -> (judgement, entry index)
        self._round_of: dict[str, int] = {}  # peer -> index of the last round that judged it
        self.failure: str | None = None
        self.own_evidence: str | None = None  # digest(s) of this site's latest evidence
        self.events: list[tuple[int, str, tuple[str, ...]]] = []  # for closing receipts
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(MAX_QUEUED)
        self._writer: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.log is not None

    @property
    def healthy(self) -> bool:
        return self.failure is None

    def blocks_jobs(self) -> str | None:
        """Why jobs must wait, when the record is required and failing."""
        if self.required and self.failure is not None:
            return f"the record is required and failing: {self.failure}"
        return None

    # -- writing ----------------------------------------------------------------------------

    def later(self, job: Callable[[], object]) -> bool:
        """Run `job` (a write) on the writer thread, after every write queued before it;
        False when it was not queued (no record, or the writer is too far behind)."""
        if self.log is None:
            return False
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._drain, daemon=True,
                                                name=f"ccattest-record-{self.site}")
                self._writer.start()
        try:
            self._queue.put(job, timeout=QUEUE_WAIT_S)  # type: ignore[arg-type]
        except queue.Full:
            self._failed(f"the record's writer is {MAX_QUEUED} entries behind; an entry "
                         "was dropped")
            return False
        return True

    def _drain(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except Exception as error:  # a bug in one write must not stop the writer
                self._failed(f"{type(error).__name__}: {error}")
            finally:
                self._queue.task_done()

    def now(self, job: Callable[[], T]) -> T:
        """Run `job` on the writer thread, after what is queued, and wait for its result."""
        if self.log is None or threading.current_thread() is self._writer:
            return job()
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(job())
            except BaseException as error:  # handed to the waiting caller
                done.set_exception(error)

        if not self.later(run):  # the writer is stuck far behind: run it here
            return job()
        return done.result()

    def flush(self) -> None:
        """Wait until every queued write is done."""
        if self._writer is not None:
            self.now(lambda: None)

    def close(self) -> None:
        self.flush()
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=QUEUE_WAIT_S)

    def _append(self, kind: str, data: Mapping[str, Any], at: datetime | None = None
                ) -> int | None:
        return self.now(lambda: self._write(kind, data, at))  # after what rounds queued

    def _write(self, kind: str, data: Mapping[str, Any], at: datetime | None = None
               ) -> int | None:
        if self.log is None:
            return None
        try:
            index = self.log.append(Entry(kind, self.site, at or utcnow(), _plain(data)))
        except Exception as error:  # a record failure must never stop a round
            self._failed(f"{type(error).__name__}: {error}")
            return None
        if self.failure is not None:
            log.warning("ccattest: the record works again (%s)", self.log.store.location)
            self.failure = None
        return index

    def _failed(self, detail: str) -> None:
        first = self.failure is None
        self.failure = detail[:300]
        log.error("ccattest: the record could not be written: %s", detail)
        if first and self.on_failure is not None:
            self.on_failure(self.failure)

    def checkpoint(self, at: datetime | None = None) -> bytes | None:
        """Sign and store a checkpoint of everything written and queued."""
        site_log = self.log
        if site_log is None:
            return None
        try:
            return self.now(lambda: site_log.checkpoint(at=at or utcnow()))
        except Exception as error:
            self._failed(f"checkpoint: {type(error).__name__}: {error}")
            return None

    def config(self, *, config_digest: str, platforms: Iterable[str],
               record: Mapping[str, Any], at: datetime | None = None) -> int | None:
        """A config entry when what the site runs with differs from the last one written."""
        data = {"policy": self.policy, "config": config_digest,
                "platforms": sorted(platforms), "record": dict(record)}
        if self.log is None:
            return None
        try:
            last = self.log.store.entries(kind="config", site=self.site)
        except Exception as error:
            self._failed(f"{type(error).__name__}: {error}")
            return None
        if last and decode(last[-1].body).data == _plain(data):
            return None
        return self._append("config", data, at)

    def verdict(self, verdict: SiteVerdict, evidence: Sequence[Evidence], *, context: str,
                definitive: bool, round_id: str | None = None,
                digests: Mapping[str, str] | None = None) -> int | None:
        """Record a judgement; in rounds only when it changed. Returns the index of the
        entry that now stands for this judgement (new or earlier). Rounds call it on the
        writer thread (RoundParticipant.record_round), after the site has answered."""
        return self.now(lambda: self._verdict(verdict, evidence, context, definitive,
                                              round_id, digests))

    def _verdict(self, verdict: SiteVerdict, evidence: Sequence[Evidence], context: str,
                 definitive: bool, round_id: str | None,
                 digests: Mapping[str, str] | None) -> int | None:
        if digests is None:
            digests = {item.platform: evidence_digest(item) for item in evidence}
        if self.keep_evidence and self.log is not None:
            for item in evidence:
                self._keep(item)
        failures = verdict.failures()[:MAX_FAILURES_KEPT]
        # What makes a judgement "the same", compared with == (C speed, no encoding): its
        # status, policy, failures and each platform's claims but the per-collection ones.
        key = (verdict.status, failures, verdict.seal_key,
               [(r.platform, r.status.value, {k: v for k, v in r.claims.items()
                                               if k not in VOLATILE_CLAIMS})
                for r in verdict.results])
        with self._lock:
            previous = self._judged.get(verdict.site)
        if context == "round" and previous is not None and previous[0] == key and definitive:
            return previous[1]
        results = [{"platform": r.platform, "status": r.status.value,
                    "trust_vector": r.trust_vector.to_dict(),
                    "evidence": digests.get(r.platform), "claims": _plain(dict(r.claims)),
                    "expires": r.expires_at.isoformat()} for r in verdict.results]
        data = {"peer": verdict.site, "context": context, "round": round_id,
                "definitive": definitive, "status": verdict.status,
                "affirming": verdict.affirming, "policy": self.policy, "results": results,
                "failures": failures}
        if verdict.seal_key is not None:  # the peer's attested sealing key (seal/)
            data["seal_key"] = {"suite": verdict.seal_key.suite.value,
                                "id": verdict.seal_key.key_id}
        index = self._write("verdict", data, verdict.at)
        if index is not None and definitive:
            with self._lock:
                self._judged[verdict.site] = (key, index)
        return index

    def _keep(self, item: Evidence) -> None:
        assert self.log is not None
        blob = canonical(item.to_dict())
        try:
            self.log.store.put_evidence(hashlib.sha256(blob).digest(), blob)
        except Exception as error:
            self._failed(f"evidence: {type(error).__name__}: {error}")

    def registration(self, peer: str, stage: str, *, definitive: bool, status: str,
                     verdict: int | None, at: datetime | None = None) -> int | None:
        return self._append("registration", {"peer": peer, "stage": stage,
                                             "definitive": definitive, "status": status,
                                             "verdict": verdict}, at)

    def round(self, *, round_id: str, transcript: str, coordinator: str,
              participants: Sequence[str], missing: Mapping[str, str],
              judged: Mapping[str, tuple[str, str | None]], at: datetime) -> None:
        """One entry a round, written behind the round (it never waits for the disk)."""
        data = {"round": round_id, "transcript": transcript, "coordinator": coordinator,
                "participants": sorted(participants),
                "missing": {site: why[:200] for site, why in sorted(missing.items())},
                "judged": {peer: list(value) for peer, value in sorted(judged.items())}}

        def write() -> None:
            index = self._write("round", data, at)
            if index is None:
                return
            if missing:
                self._event(index, "round", tuple(missing))
            with self._lock:
                for peer, (status, _) in judged.items():
                    if status == "affirming":
                        self._round_of[peer] = index
                    else:
                        self._round_of.pop(peer, None)

        if threading.current_thread() is self._writer:
            write()
        else:
            self.later(write)

    def gate(self, job: str, participants: Sequence[str], *, allowed: bool,
             reasons: Sequence[str], byoc: bool = False, at: datetime | None = None
             ) -> int | None:
        return self._append("gate", {"job": job, "participants": sorted(participants),
                                     "allowed": allowed, "reasons": list(reasons)[:16],
                                     "byoc": byoc}, at)

    def action(self, site: str, cause: str, action: str, detail: str) -> int | None:
        index = self._append("action", {"site": site, "cause": cause, "action": action,
                                        "detail": detail[:300]})
        return self._event(index, "action", (site,))

    def exclusion(self, site: str, detail: str) -> int | None:
        index = self._append("exclusion", {"site": site, "detail": detail[:300]})
        return self._event(index, "exclusion", (site,))

    def _event(self, index: int | None, kind: str, sites: tuple[str, ...]) -> int | None:
        if index is not None:
            with self._lock:
                self.events = [*self.events[-(MAX_EVENTS - 1):], (index, kind, sites)]
        return index

    def events_since(self, start: int, sites: Iterable[str]) -> list[int]:
        """Indices of exclusions, actions and rounds with missing sites, at or after
        `start`, that concern any of `sites` (what a closing receipt lists)."""
        self.flush()
        wanted = set(sites)
        with self._lock:
            return [index for index, _, about in self.events
                    if index >= start and wanted.intersection(about)]

    def readmission(self, site: str, detail: str) -> int | None:
        return self._append("readmission", {"site": site, "detail": detail[:300]})

    def receipt(self, job: str, phase: str, issuer: str, token: str) -> int | None:
        return self._append("receipt", {"job": job, "phase": phase, "issuer": issuer,
                                        "token": token})

    # -- what a receipt cites ---------------------------------------------------------------

    def relied_on(self, site: str) -> dict[str, int | None] | None:
        """The entries standing for this site's current definitive verdict and the last
        round that affirmed it; None when none was recorded."""
        self.flush()
        with self._lock:
            judged = self._judged.get(site)
            if judged is None:
                return None
            return {"verdict": judged[1], "round": self._round_of.get(site)}
