"""`CCManager`: the ccattest CC manager as an NVFlare FLComponent (site resources.json).

    {"id": "ccattest", "path": "ccattest.nvflare.CCManager",
     "args": {"cc_config": "cc/cc_config.yaml"}}          (relative to the site's local/)

Put it in `local/ccattest__p_resources.json` so only the parent process loads it.
Registration rejects with NotAuthenticated (the server keeps running); every other failure
goes through the configured action. Errors in handlers fail closed: NVFlare swallows
exceptions from event handlers, which would otherwise admit the client.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from nvflare.apis.event_type import EventType
from nvflare.apis.fl_component import FLComponent
from nvflare.apis.fl_constant import FLContextKey
from nvflare.apis.fl_context import FLContext
from nvflare.apis.fl_exception import NotAuthenticated

from ..errors import CCAttestError
from ..mesh.actions import FailureHandler
from ..mesh.config import SealMode, build_agent, load_cc_config
from ..mesh.gate import JobGate
from ..mesh.receipts import RECEIPT, ReceiptDesk
from ..mesh.recording import open_site_record
from ..mesh.registration import RegistrationClient, RegistrationServer
from ..mesh.rounds import (
    ATTEST,
    CONTRIBUTE,
    COSIGN,
    VERIFY,
    RoundCoordinator,
    RoundParticipant,
)
from ..mesh.scheduler import PeriodicRunner
from ..mesh.sealing import SealDesk
from ..mesh.telemetry import Telemetry
from ..mesh.trustbook import TrustBook
from ..mesh.watchdog import ServerWatch
from ..timeutil import utcnow
from .admin import register_admin_command, take_requests
from .effects import ClientEffects, ServerEffects
from .sealing import SealService
from .transport import CellTransport, serve

HELLO_PROP = "ccattest_hello"  # never "_cc_info": a client would read its own value back
REPLY_PROP = "_cc_info"  # the one prop NVFlare copies into the registration reply
REPLY_KEY = "ccattest"
CONFIRM = "register.confirm"
SERVER = "server"
FAN_OUT = 256  # sites a round asks at once
RECENT_ROUNDS = 10  # rounds the server's status file keeps for `ccattest status`
EXCLUSIONS_FILE = "exclusions.json"  # beside cc_config.yaml: kept across restarts
log = logging.getLogger("ccattest.nvflare")


class CCManager(FLComponent):
    def __init__(self, cc_config: str = "cc/cc_config.yaml") -> None:
        super().__init__()
        self.cc_config_path = cc_config
        self._lock = threading.Lock()
        self.ready = False
        self.events: list[dict[str, Any]] = []

    # --- setup ---------------------------------------------------------------------------
    def _setup(self, fl_ctx: FLContext) -> None:
        workspace = fl_ctx.get_prop(FLContextKey.WORKSPACE_OBJECT)
        local = Path(workspace.get_site_config_dir()) if workspace else Path(
            fl_ctx.get_prop(FLContextKey.WORKSPACE_ROOT) or ".") / "local"
        config_path = local / self.cc_config_path
        self.config, base = load_cc_config(config_path)
        self.status_path = base / "status.json"
        self.engine = fl_ctx.get_engine()
        self.is_server = hasattr(self.engine, "get_clients")
        self.telemetry = Telemetry()  # its snapshot goes into status.json for /metrics
        self.agent = self._build_agent(self.config, base)
        self.trust = TrustBook(self.config.site)
        self.record = open_site_record(
            self.config, base, self.agent, server=SERVER, is_server=self.is_server,
            config_text=config_path.read_bytes(),
            on_failure=lambda detail: self._note("record_failed", self.config.site, detail))
        journal = self.record.journal
        effects = (ServerEffects(self.engine, self.trust, self._note) if self.is_server
                   else ClientEffects(self.engine, self.trust, SERVER, self._note))
        self.handler = FailureHandler(self.config.actions, effects, journal=journal,
                                      trust=self.trust)
        self.cc_dir = base
        self._restore_exclusions()
        self.handler.on_change = self._keep_exclusions
        self.participant = RoundParticipant(self.agent, self.trust, handler=self.handler,
                                            journal=journal, witness=self.record.witness,
                                            telemetry=self.telemetry)
        self.gate = JobGate(self.trust, self.agent.roster,
                            all_cc=self.config.seal.mode is SealMode.REQUIRED)
        window = timedelta(seconds=self.config.rounds.registration_window_seconds)
        self.registration_server = RegistrationServer(self.agent, self.trust, window=window,
                                                      journal=journal, handler=self.handler)
        self.registration_client = RegistrationClient(self.agent, SERVER, self.trust, journal,
                                                      handler=self.handler)
        self.transport: CellTransport | None = None
        cosign_timeout = (self.config.record.receipt_cosign_seconds if self.config.record
                          else self.config.rounds.request_timeout_seconds)
        self.receipts = ReceiptDesk(self.record, self.config.site, self.agent.roster,
                                    lambda: self.transport, timeout=cosign_timeout)
        self._gate_noted: dict[str, tuple[str, ...]] = {}  # job -> last refusal recorded
        self.runner: PeriodicRunner | None = None
        self.coordinator: RoundCoordinator | None = None
        self._pending_confirm: dict[str, Any] | None = None
        self.rounds = 0  # the server: rounds it ran (clients count theirs in the participant)
        self.recent_rounds: list[dict[str, Any]] = []
        self.console = self._start_console(local.parent) if self.is_server else None
        self.seal_service = self._start_sealing(base, journal)
        if self.is_server and not register_admin_command(self.readmit):
            log.warning("ccattest: this NVFlare has no admin command hook; use "
                        "`ccattest nvflare readmit SITE --kit KIT`")
        self.ready = True
        log.info("ccattest: %s ready (%s, CC %s)", self.config.site,
                 "server" if self.is_server else "client",
                 "enabled" if self.agent.cc_enabled else "disabled")

    def _build_agent(self, config: Any, base: Path) -> Any:
        # A seam for the test harness: testing/relayed_tee.py's hostile manager relays.
        return build_agent(config, base, self.telemetry)

    # --- dispatch ------------------------------------------------------------------------
    def handle_event(self, event_type: str, fl_ctx: FLContext) -> None:
        if event_type == EventType.SYSTEM_BOOTSTRAP:
            self._setup(fl_ctx)
            return
        if not self.ready:
            if event_type == EventType.CLIENT_REGISTER_RECEIVED:
                raise NotAuthenticated("ccattest is not configured on this server")
            return
        handler = self._handlers().get(event_type)
        if handler is None:
            return
        try:
            handler(fl_ctx)
        except NotAuthenticated:
            raise
        except Exception as error:
            log.exception("ccattest: handling %s failed", event_type)
            self._fail_closed(event_type, fl_ctx, error)
        finally:
            self._write_status()

    def _handlers(self) -> dict[str, Any]:
        if self.is_server:
            return {
                EventType.CLIENT_REGISTER_RECEIVED: self._on_register_received,
                EventType.SYSTEM_START: self._on_server_start,
                EventType.SUBMIT_JOB: self._on_submit_job,
                EventType.BEFORE_CHECK_CLIENT_RESOURCES: self._on_server_check,
                EventType.JOB_COMPLETED: self._on_job_end,
                EventType.JOB_ABORTED: self._on_job_end,
                EventType.SYSTEM_END: self._on_end,
            }
        return {
            EventType.BEFORE_CLIENT_REGISTER: self._on_before_register,
            EventType.AFTER_CLIENT_REGISTER: self._on_after_register,
            EventType.SYSTEM_START: self._on_client_start,
            EventType.BEFORE_CHECK_RESOURCE_MANAGER: self._on_client_check,
            EventType.SYSTEM_END: self._on_end,
        }

    def _fail_closed(self, event_type: str, fl_ctx: FLContext, error: Exception) -> None:
        reason = f"ccattest could not decide ({type(error).__name__}: {error})"
        if event_type == EventType.CLIENT_REGISTER_RECEIVED:
            raise NotAuthenticated(reason) from None
        if event_type in (EventType.SUBMIT_JOB, EventType.BEFORE_CHECK_CLIENT_RESOURCES,
                          EventType.BEFORE_CHECK_RESOURCE_MANAGER):
            fl_ctx.set_prop(FLContextKey.JOB_BLOCK_REASON, reason, private=True, sticky=False)
        if event_type == EventType.AFTER_CLIENT_REGISTER:
            self.handler.effects.shutdown(SERVER, reason)

    # --- registration --------------------------------------------------------------------
    def _on_before_register(self, fl_ctx: FLContext) -> None:
        hello = self.registration_client.hello(utcnow())
        fl_ctx.set_prop(HELLO_PROP, hello, private=False, sticky=False)

    def _on_register_received(self, fl_ctx: FLContext) -> None:
        if fl_ctx.get_prop(FLContextKey.CLIENT_TYPE) == "admin":
            return
        client = self._authenticated_client(fl_ctx)
        peer = fl_ctx.get_peer_context()
        hello = peer.get_prop(HELLO_PROP) if peer else None
        try:
            reply = self.registration_server.on_hello(client, hello, utcnow())
        except CCAttestError as error:
            self._note("registration_refused", client, str(error))
            raise NotAuthenticated(f"ccattest: {client} refused: {error}") from None
        self._note("registration_provisional", client, "hello judged; awaiting confirmation")
        fl_ctx.set_prop(REPLY_PROP, {REPLY_KEY: reply}, private=False, sticky=False)

    @staticmethod
    def _authenticated_client(fl_ctx: FLContext) -> str:
        """The name NVFlare bound to the client's mTLS certificate, never just the asserted
        one; a mismatch is refused."""
        session = fl_ctx.get_prop("client_reg_session")
        bound = getattr(session, "client_name", None)
        peer = fl_ctx.get_peer_context()
        asserted = peer.get_identity_name() if peer else None
        if not bound or (asserted and asserted != bound):
            raise NotAuthenticated(f"ccattest: client identity unclear (connection: {bound}, "
                                   f"asserted: {asserted})")
        return str(bound)

    def _on_after_register(self, fl_ctx: FLContext) -> None:
        if not fl_ctx.get_prop(FLContextKey.CLIENT_TOKEN):
            return  # NVFlare refused us; it ends the process itself
        reply = (fl_ctx.get_prop(REPLY_PROP) or {}).get(REPLY_KEY)
        try:
            self.registration_client.on_reply(reply, utcnow())
        except CCAttestError as error:
            self._note("server_refused", SERVER, str(error))
            self.handler.effects.shutdown(SERVER, f"refusing the server: {error}")
            return
        self._note("server_attested", SERVER, "server evidence answered our challenge")
        if reply and "challenge" in reply:
            self._pending_confirm = reply

    # --- cells and rounds ----------------------------------------------------------------
    def _on_server_start(self, fl_ctx: FLContext) -> None:
        cell = self.engine.get_cell()
        serve(cell, [CONFIRM, CONTRIBUTE, ATTEST, VERIFY], self._serve_server)
        rounds = self.config.rounds
        self.transport = CellTransport(cell)
        self.coordinator = RoundCoordinator(
            self.participant, self.transport, self.agent.roster,
            members=lambda: [c.name for c in self.engine.get_clients()],
            handler=self.handler, deadline=timedelta(seconds=rounds.deadline_seconds),
            witnessed=self.record.witnessed, telemetry=self.telemetry,
            # Every site collects in one wave (a request a thread, idle threads are cheap);
            # 16 made a 100-site round take 7 waves of collection.
            max_workers=FAN_OUT)
        self.runner = PeriodicRunner(self._round, interval=rounds.interval_seconds,
                                     jitter=rounds.jitter)
        self.runner.start()

    def _serve_server(self, sender: str, topic: str, body: dict[str, Any]) -> dict[str, Any]:
        if topic == CONFIRM:
            verdict = self.registration_server.on_confirm(sender, body, utcnow())
            # on_confirm applied the actions: a rejection, or a re-admission
            self._note("registration_confirmed" if verdict.affirming else "confirm_rejected",
                       sender, "; ".join(verdict.failures()[:3]) or verdict.status)
            self._write_status()
            return verdict.summary()
        return self.participant.handle(sender, topic, body)

    def _round(self) -> None:
        assert self.coordinator is not None
        self._take_readmit_requests()
        report = self.coordinator.run_round()
        last = {"round_id": report.round_id, "at": report.started.isoformat(),
                "seconds": round(report.seconds, 3), "sites": report.sites,
                "attested": report.attested, "unreachable": report.unreachable}
        with self._lock:
            self.rounds += 1
            self.last_round = last
            self.recent_rounds = [*self.recent_rounds, last][-RECENT_ROUNDS:]
        log.info("ccattest: round %s: %d sites attested, %d unreachable, %.2fs",
                 report.round_id, len(report.attested), len(report.unreachable), report.seconds)
        self._write_status()

    def _serve_client(self, sender: str, topic: str, body: dict[str, Any]) -> dict[str, Any]:
        if sender != SERVER:  # only the server coordinates rounds and issues receipts
            raise CCAttestError(f"ccattest: {topic} from {sender}, not the server")
        if topic == RECEIPT:
            answer = self.receipts.on_receipt(sender, body)
            kept = "kept" if answer["recorded"] else "checked (the record is failing)"
            self._note("receipt_recorded", SERVER,
                       f"{kept} the {answer['phase']} receipt of job {answer['job']}")
            return answer
        if topic == CONTRIBUTE:
            self._take_readmit_requests()
        try:
            return self.participant.handle(sender, topic, body)
        finally:
            if topic == VERIFY:
                self._write_status()

    def _on_client_start(self, fl_ctx: FLContext) -> None:
        cell = self.engine.get_cell()
        serve(cell, [CONTRIBUTE, ATTEST, VERIFY, COSIGN, RECEIPT], self._serve_client)
        self.transport = CellTransport(cell)
        if self.agent.roster.is_cc(SERVER):
            # Peers the server leaves out of its rounds, and a server that stops sending
            # them, are unreachable by this site's own judgement and grace.
            rounds = self.config.rounds
            self.participant.watch_peers = True
            watch = ServerWatch(self.participant, self.handler, SERVER, expected=timedelta(
                seconds=rounds.interval_seconds * (1 + rounds.jitter)
                + rounds.deadline_seconds))
            self.runner = PeriodicRunner(self._watch(watch), interval=rounds.interval_seconds / 2,
                                         jitter=0, name="ccattest-server-watch")
            self.runner.start()
        if self._pending_confirm is not None:
            body = self.registration_client.confirm(self._pending_confirm)
            self.transport.request(SERVER, CONFIRM, body,
                                   timeout=self.config.rounds.request_timeout_seconds)
            self._note("confirmed", SERVER, "answered the server's challenge")

    def _watch(self, watch: ServerWatch) -> Any:
        def check() -> None:
            if watch.check():
                self._write_status()
        return check

    # --- jobs ----------------------------------------------------------------------------
    def _on_submit_job(self, fl_ctx: FLContext) -> None:
        meta = fl_ctx.get_prop(FLContextKey.JOB_META) or {}
        if meta.get("byoc"):
            fl_ctx.set_prop(FLContextKey.JOB_BLOCK_REASON,
                            "ccattest: BYOC jobs (custom code) are refused in CC mode",
                            private=True, sticky=False)
            self._note("job_refused", "*", f"BYOC job {meta.get('name', '')}")
            self.record.journal.gate(str(meta.get("name", "")), [], allowed=False,
                                     reasons=["BYOC jobs (custom code) are refused in CC mode"],
                                     byoc=True)

    def _gate(self, participants: Any, job: str) -> str | None:
        """Why the job may not run here, or None; refusals are recorded once per reason."""
        decision = self.gate.check(participants, at=utcnow())
        reasons = list(decision.reasons)
        blocked = self.record.journal.blocks_jobs()
        if blocked:
            reasons.append(blocked)
        if not reasons:
            return None
        if self._gate_noted.get(job) != tuple(reasons):  # the scheduler asks every second
            self._gate_noted[job] = tuple(reasons)
            self.record.journal.gate(job, list(participants), allowed=False, reasons=reasons)
        return "; ".join(reasons)

    def _on_server_check(self, fl_ctx: FLContext) -> None:
        participants = fl_ctx.get_prop(FLContextKey.JOB_PARTICIPANTS) or []
        job = str(fl_ctx.get_prop(FLContextKey.CURRENT_JOB_ID) or "")
        refusal = self._gate(participants, job)
        if refusal is not None:
            fl_ctx.set_prop(FLContextKey.JOB_BLOCK_REASON, f"ccattest: {refusal}",
                            private=True, sticky=False)
            self._note("job_blocked", "*", refusal)
            return
        self._gate_noted.pop(job, None)
        if self.receipts.admit(job, list(participants)) is not None:
            self._note("receipt_issued", "*", f"admission receipt of job {job}")

    def _on_client_check(self, fl_ctx: FLContext) -> None:
        peer = fl_ctx.get_peer_context()
        participants = (peer.get_prop(FLContextKey.JOB_PARTICIPANTS) if peer else None) or []
        job = str((peer.get_prop(FLContextKey.CURRENT_JOB_ID) if peer else None) or "")
        refusal = self._gate({SERVER, *participants} - {self.config.site}, job)
        if refusal is not None:
            fl_ctx.set_prop(FLContextKey.JOB_BLOCK_REASON, f"ccattest: {refusal}",
                            private=True, sticky=False)
            self._note("job_blocked", "*", refusal)

    def _on_job_end(self, fl_ctx: FLContext) -> None:
        data = fl_ctx.get_prop(FLContextKey.EVENT_DATA) or {}
        job = str(data.get("job_id", "")) if isinstance(data, dict) else ""
        if job and self.receipts.close(job) is not None:
            self._note("receipt_issued", "*", f"closing receipt of job {job}")

    def _on_end(self, fl_ctx: FLContext) -> None:
        if self.console is not None:
            self.console.stop()
        if self.seal_service is not None:
            self.seal_service.close()
        if self.runner is not None:
            self.runner.stop()
        if self.coordinator is not None:
            self.coordinator.close()
        self.record.close()

    # --- exclusions: kept across restarts, lifted by operators --------------------------
    @property
    def _exclusions_path(self) -> Path:
        return self.cc_dir / EXCLUSIONS_FILE

    def _restore_exclusions(self) -> None:
        """What this site excluded before a restart stays excluded until fresh affirming
        evidence re-admits it under the same rules: a restart never washes a verdict out.
        (NVFlare's own disabled_clients.json keeps them disabled on the server too.)"""
        path = self._exclusions_path
        if not path.exists():
            return
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CCAttestError(f"cannot read the kept exclusions {path}: {error}") from None
        for site in self.handler.restore(data):
            self._note("excluded_before_restart", site,
                       "excluded before the restart; re-admitted only on fresh evidence")

    def _keep_exclusions(self) -> None:
        path = self._exclusions_path
        tmp = path.with_name(f".{EXCLUSIONS_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(self.handler.readmissions.to_wire(), indent=1))
        os.replace(tmp, path)

    def readmit(self, site: str, by: str) -> str:
        """Manual re-admission (admin command, request file): lift the hold only."""
        lifted = self.handler.lift(site, by)
        outcome = (f"{site}: hold lifted ({lifted.cause}); re-admitted at its next fresh "
                   "affirming attestation")
        self._note("readmit_requested", site, f"{by}: {outcome}")
        self._write_status()
        return outcome

    def _take_readmit_requests(self) -> None:
        for site, outcome in take_requests(self.cc_dir, self.readmit):
            log.warning("ccattest: readmit request for %s: %s", site, outcome)

    def _start_sealing(self, cc_dir: Path, journal: Any) -> SealService | None:
        """seal: on/required: this site's job processes seal and open models through it."""
        if self.config.seal.mode is SealMode.OFF or self.agent.sealing is None:
            return None
        desk = SealDesk(self.config.site, self.agent.sealing, self.trust, self.agent.roster,
                        self.config.seal.mode, journal)
        return SealService(desk, cc_dir, role="server" if self.is_server else "client")

    # --- status for operators and the demo -----------------------------------------------
    def _start_console(self, kit: Path) -> Any:
        """cc_config `console:`: the dashboard beside the server. A console that cannot
        start is reported, never a reason to stop the federation."""
        settings = self.config.console
        if settings is None:
            return None
        from ..console.server import ConsoleServer
        from ..console.tls import MutualTls
        from ..console.views import Federation

        try:
            tls = MutualTls.for_federation(Federation.find(kit)) if settings.client_certs \
                else None
            console = ConsoleServer(kit, host=settings.host, port=settings.port,
                                    client_certs=tls).start()
        except CCAttestError as error:
            log.error("ccattest: the console did not start: %s", error)
            self._note("console_failed", self.config.site, str(error))
            return None
        log.info("ccattest: console at %s (token in %s)", console.url, console.token_file)
        self._note("console_started", self.config.site, console.url)
        return console

    def _note(self, kind: str, site: str, detail: str) -> None:
        with self._lock:
            self.events.append({"at": utcnow().isoformat(), "event": kind, "site": site,
                                "detail": detail[:300]})
            del self.events[:-200]

    def _record_status(self) -> dict[str, Any] | None:
        journal = self.record.journal
        if self.config.record is None:
            return None
        return {"location": self.record.location,
                "size": journal.log.size if journal.log is not None else None,
                "healthy": journal.healthy, "failure": journal.failure}

    def _write_status(self) -> None:
        if not self.ready:
            return
        with self._lock:
            if self.is_server:
                rounds, last = self.rounds, getattr(self, "last_round", None)
            else:  # a client takes part in the server's rounds: it counts those it judged in
                rounds, last = self.participant.completed()
            status = {
                "site": self.config.site,
                "role": "server" if self.is_server else "client",
                "updated": utcnow().isoformat(),
                "matrix": [{"verifier": c.verifier, "peer": c.peer, "status": c.status,
                            "at": c.at.isoformat(),
                            "last_good": c.last_good.isoformat() if c.last_good else None}
                           for c in self.trust.matrix()],
                "excluded": self.trust.excluded(),
                "held": {site: {"cause": e.cause, "since": e.since.isoformat(),
                                "hold": e.blocks(utcnow())}
                         for site, e in self.handler.readmissions.excluded().items()},
                "rounds": rounds,
                "last_round": last,
                "recent_rounds": list(self.recent_rounds),
                "events": list(self.events),
                "record": self._record_status(),
                "telemetry": self.telemetry.snapshot(),
            }
            tmp = self.status_path.with_name(f".status.{os.getpid()}.json")
            tmp.write_text(json.dumps(status, indent=1))
            os.replace(tmp, self.status_path)

