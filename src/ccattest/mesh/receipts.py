"""Job receipts in the federation: the server issues them at admission and at the job's
end, after asking the job's clients to witness (cosign) the checkpoint the receipt's proofs
lead to; every client verifies the receipt it is sent and keeps a copy in its own record,
so no single site's record is the only one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from ..errors import CCAttestError, MalformedEvidence, VerificationFailed
from ..record import note
from ..record.receipt import issue_receipt, verify_receipt
from ..timeutil import utcnow
from .recording import SiteRecord
from .roster import Roster
from .rounds import COSIGN
from .transport import Transport

RECEIPT = "record.receipt"
MAX_OPEN_JOBS = 1024
log = logging.getLogger("ccattest.record")


class ReceiptDesk:
    def __init__(self, record: SiteRecord, identity: str, roster: Roster,
                 transport: Callable[[], Transport | None], *, timeout: float = 10.0) -> None:
        self.record, self.identity, self.roster = record, identity, roster
        self.transport, self.timeout = transport, timeout
        self._lock = threading.Lock()
        self._open: dict[str, tuple[int, dict[str, Any], list[str]]] = {}

    @property
    def journal(self) -> Any:
        return self.record.journal

    def _can_issue(self) -> bool:
        return (self.journal.log is not None and self.record.result_key is not None
                and self.record.witnessed is not None)

    # -- the server ---------------------------------------------------------------------------

    def admit(self, job: str, participants: Sequence[str], *, at: datetime | None = None
              ) -> str | None:
        """The admission receipt of a job the gate let through (once per job)."""
        with self._lock:
            if job in self._open or not self._can_issue():
                return None
        at = at or utcnow()
        gate = self.journal.gate(job, participants, allowed=True, reasons=[], at=at)
        if gate is None:
            return None
        relied = {site: (self.journal.relied_on(site)
                         if site != self.identity and self.roster.is_cc(site) else None)
                  for site in participants}
        with self._lock:
            while len(self._open) >= MAX_OPEN_JOBS:
                self._open.pop(next(iter(self._open)))
            self._open[job] = (gate, relied, list(participants))
        return self._issue(job, "admission", list(participants), gate, relied, at)

    def close(self, job: str, *, at: datetime | None = None) -> str | None:
        """The closing receipt: the admission's proofs plus every exclusion, action and
        round with missing sites that concerned the job's participants while it ran."""
        with self._lock:
            opened = self._open.pop(job, None)
        if opened is None or not self._can_issue():
            return None
        gate, relied, participants = opened
        events = self.journal.events_since(gate, participants)
        return self._issue(job, "closing", participants, gate, relied, at or utcnow(),
                           events=events, admission=gate)

    def _issue(self, job: str, phase: str, participants: list[str], gate: int,
               relied: dict[str, Any], at: datetime, *, events: Sequence[int] = (),
               admission: int | None = None) -> str | None:
        record = self.record
        assert record.witnessed is not None and record.result_key is not None
        clients = [site for site in participants
                   if site != self.identity and site in record.witnessed.witnesses]
        with record.witnessed.lock:  # rounds show witnesses no older checkpoint meanwhile
            checkpoint = self.journal.checkpoint(at)
            if checkpoint is None:
                return None
            try:
                self._gather(checkpoint, clients)
                size = note.Checkpoint.parse(note.parse(checkpoint).text).size
                cosigned = record.witnessed.cosigned_note(size)
            except CCAttestError as error:
                return self._failed(job, phase, error)
        try:
            token = issue_receipt(self.journal.log, record.result_key, job=job, phase=phase,
                                  issuer=self.identity, participants=participants, gate=gate,
                                  relied=relied, checkpoint=cosigned,
                                  server_evidence=self.journal.own_evidence, at=at,
                                  events=events, admission=admission)
        except CCAttestError as error:
            return self._failed(job, phase, error)
        self.journal.receipt(job, phase, self.identity, token)
        self._deliver(token, clients)
        log.info("ccattest: %s receipt for job %s (%d participants)", phase, job,
                 len(participants))
        return token

    def _failed(self, job: str, phase: str, error: CCAttestError) -> None:
        self.journal.action(self.identity, "record", "alert",
                            f"no {phase} receipt for job {job}: {error}")
        log.error("ccattest: no %s receipt for job %s: %s", phase, job, error)

    def _gather(self, checkpoint: bytes, clients: list[str]) -> None:
        transport = self.transport()
        witnessed = self.record.witnessed
        if transport is None or witnessed is None or not clients:
            return

        def ask(site: str) -> str | None:
            seen = witnessed.seen_by(site, None)
            for _ in range(2):  # once more from the size the witness says it needs
                body = {"log": witnessed.view(checkpoint, seen, site).to_wire()}
                try:
                    answer = transport.request(site, COSIGN, body, timeout=self.timeout)
                except CCAttestError as error:
                    log.warning("ccattest: %s did not cosign: %s", site, error)
                    return None
                if isinstance(answer.get("cosignature"), str):
                    return str(answer["cosignature"])
                seen = answer.get("witnessed")
                if not isinstance(seen, int):
                    log.warning("ccattest: %s refused to cosign: %s", site,
                                answer.get("witness_error"))
                    return None
            return None

        with ThreadPoolExecutor(max_workers=min(16, len(clients))) as pool:
            lines = dict(zip(clients, pool.map(ask, clients), strict=True))
        _, refused = witnessed.accept(checkpoint, {s: line for s, line in lines.items() if line},
                                      at=utcnow())
        for site, why in refused.items():
            log.warning("ccattest: cosignature of %s refused: %s", site, why)

    def _deliver(self, token: str, clients: list[str]) -> None:
        transport = self.transport()
        if transport is None:
            return
        for site in clients:
            try:
                transport.request(site, RECEIPT, {"token": token}, timeout=self.timeout)
            except CCAttestError as error:
                log.warning("ccattest: could not send the receipt to %s: %s", site, error)

    # -- a client -----------------------------------------------------------------------------

    def on_receipt(self, sender: str, body: Any) -> dict[str, Any]:
        """Check a receipt the server sent and keep it in this site's record."""
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or self.record.jwks is None:
            raise MalformedEvidence("a receipt message carries no receipt, or this site has "
                                    "no federation key set to check it")
        report = verify_receipt(token, self.record.jwks, now=utcnow(), min_cosigners=0)
        if report.issuer != sender or self.identity not in report.participants:
            raise VerificationFailed("a receipt not meant for this site",
                                     expected=f"issued by {sender}, naming {self.identity}",
                                     found=f"issued by {report.issuer}, naming "
                                           f"{', '.join(report.participants)}")
        index = self.journal.receipt(report.job, report.phase, report.issuer, token)
        return {"recorded": index is not None, "job": report.job, "phase": report.phase}
