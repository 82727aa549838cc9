"""An in-process federation on the software TEE: the mesh core without NVFlare.

Used by the mesh tests and by `make bench` (collective-nonce rounds against all-pairs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from ..errors import CCAttestError
from ..evidence import Evidence
from ..mesh.actions import ActionConfig, Cause, FailureHandler
from ..mesh.agent import SiteAgent
from ..mesh.gate import GateDecision, JobGate
from ..mesh.journal import Journal
from ..mesh.receipts import RECEIPT, ReceiptDesk
from ..mesh.recording import SiteRecord
from ..mesh.registration import RegistrationClient, RegistrationServer
from ..mesh.roster import Roster, SiteSpec
from ..mesh.rounds import RoundCoordinator, RoundParticipant, RoundReport
from ..mesh.transport import LocalTransport, MessageCounter
from ..mesh.trustbook import TrustBook
from ..platforms.software.measure import measure_setting
from ..platforms.software.pki import create_root
from ..policy import Policy, SoftwarePolicy
from ..record.keys import SiteKeys, merge_jwks, note_keys, origin_for
from ..record.log import SiteLog
from ..record.store import RecordStore
from ..record.witness import Witness, Witnessed
from ..seal.keys import SealingKeys, SuiteName
from ..timeutil import utcnow
from ..tokens import SigningKey, jwks
from .software import SoftwareFixture

FEDERATION = "sim"

SERVER = "server"
HONEST = [measure_setting("app", "fedavg v1")]
TAMPERED = [measure_setting("app", "fedavg v1 + exfiltration")]


class SlowAttester:
    """Adds a fixed collection delay, like a real device (SNP ~5 ms, GPU ~200 ms). One
    device answers one request at a time, so concurrent collections queue, as they do on
    /dev/sev-guest or NVML."""

    platform: ClassVar[str] = "software"

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.collections = 0
        self._device = threading.Lock()

    def collect(self, report_data: bytes) -> Evidence:
        with self._device:
            self.collections += 1
            if self.delay:
                time.sleep(self.delay)
            return self.inner.collect(report_data)


@dataclass
class RecordingEffects:
    """Effects that record what was decided and apply exclusions to the site's trust book."""

    trust: TrustBook
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def alert(self, site: str, cause: Cause, detail: str) -> None:
        self.calls.append(("alert", site, f"{cause.value}: {detail}"))

    def exclude_site(self, site: str, detail: str, cause: Cause = Cause.REJECTED) -> None:
        self.trust.exclude(site, detail)
        self.calls.append(("exclude_site", site, detail))

    def stop_jobs(self, site: str, detail: str) -> None:
        self.calls.append(("stop_jobs", site, detail))

    def shutdown(self, site: str, detail: str) -> None:
        self.calls.append(("shutdown", "*", f"{site}: {detail}"))

    def actions(self) -> list[tuple[str, str]]:
        return [(kind, site) for kind, site, _ in self.calls if kind != "alert"]


@dataclass
class SimSite:
    name: str
    fixture: SoftwareFixture | None
    attester: SlowAttester | None
    agent: SiteAgent
    trust: TrustBook
    effects: RecordingEffects
    handler: FailureHandler
    participant: RoundParticipant
    record: SiteRecord = field(default_factory=lambda: SiteRecord(Journal(None, "")))
    desk: ReceiptDesk | None = None


class SimulatedFederation:
    def __init__(self, sites: dict[str, SimSite], *, delay: float, roster: Roster,
                 fan_out: int = 16) -> None:
        self.sites = sites
        self.roster = roster
        self.counter = MessageCounter()
        handlers = {name: self._handler(site) for name, site in sites.items()}
        self.transports = {name: LocalTransport(name, handlers, delay=delay, counter=self.counter)
                           for name in sites}
        server = sites[SERVER]
        self.registration = RegistrationServer(server.agent, server.trust,
                                               journal=server.record.journal)
        self.coordinator = RoundCoordinator(server.participant, self.transports[SERVER], roster,
                                            members=lambda: list(self.sites),
                                            handler=server.handler, max_workers=fan_out,
                                            witnessed=server.record.witnessed)
        self.gate = JobGate(server.trust, roster)
        for name, site in sites.items():
            if site.record.journal.enabled:
                site.desk = ReceiptDesk(site.record, name, roster,
                                        lambda name=name: self.transports[name], timeout=10)

    @classmethod
    def create(cls, n_clients: int, *, collect_delay: float = 0.0, message_delay: float = 0.0,
               not_cc: Sequence[str] = (), tampered: Sequence[str] = (),
               actions: ActionConfig | None = None, fan_out: int = 16,
               record_dir: Path | None = None, checkpoint_every: int = 64,
               sealing: SuiteName | None = None) -> SimulatedFederation:
        """With `record_dir`, every site keeps a record (SQLite in record_dir/<site>) and
        the clients witness the server's log, as on NVFlare. With `sealing`, every CC site
        binds a sealing key of that suite into its evidence."""
        now = utcnow()
        root = create_root(now)
        names = [SERVER] + [f"site-{i}" for i in range(1, n_clients + 1)]
        roster = Roster([SiteSpec(n, n not in not_cc) for n in names])
        reference = SoftwareFixture.create(SERVER, now=now, root=root, items=HONEST)
        policy = Policy(id="sim", software=SoftwarePolicy(
            allow=True, measurements=[reference.measurement]))
        records = (_records(names, record_dir, policy, checkpoint_every)
                   if record_dir is not None else {})
        sites = {}
        for name in names:
            fixture = attester = None
            attesters: list[Any] = []
            if name not in not_cc:
                items = TAMPERED if name in tampered else HONEST
                fixture = SoftwareFixture.create(name, now=now, root=root, items=items)
                attester = SlowAttester(fixture.attester, collect_delay)
                attesters = [attester]
            verifiers = {"software": reference.verifier()}
            keys = SealingKeys(sealing, now) if sealing is not None and attesters else None
            agent = SiteAgent(name, attesters, verifiers, policy, roster, sealing=keys)
            trust = TrustBook(name)
            effects = RecordingEffects(trust)
            record = records.get(name) or SiteRecord(Journal(None, name))
            handler = FailureHandler(actions or ActionConfig(), effects, journal=record.journal)
            participant = RoundParticipant(agent, trust, handler=handler,
                                           journal=record.journal, witness=record.witness)
            sites[name] = SimSite(name, fixture, attester, agent, trust, effects, handler,
                                  participant, record)
        return cls(sites, delay=message_delay, roster=roster, fan_out=fan_out)

    def _handler(self, site: SimSite):
        def handle(sender: str, topic: str, body: dict[str, Any]) -> dict[str, Any]:
            if topic == "register.confirm" and site.name == SERVER:
                verdict = self.registration.on_confirm(sender, body, utcnow())
                return verdict.summary()
            if topic == RECEIPT and site.desk is not None:
                return site.desk.on_receipt(sender, body)
            return site.participant.handle(sender, topic, body)
        return handle

    def admit(self, job: str, participants: Sequence[str]) -> tuple[GateDecision, str | None]:
        """The server's gate for a job, and its admission receipt when admitted."""
        server = self.sites[SERVER]
        decision = self.gate.check(participants, at=utcnow())
        if not decision.allowed:
            server.record.journal.gate(job, participants, allowed=False,
                                       reasons=decision.reasons)
            return decision, None
        assert server.desk is not None
        return decision, server.desk.admit(job, participants)

    def flush(self) -> None:
        """Wait until every site has written what its rounds queued for its record."""
        for site in self.sites.values():
            site.record.journal.flush()

    @property
    def jwks(self) -> dict[str, Any] | None:
        return self.sites[SERVER].record.jwks

    def register(self, client: str, at: datetime | None = None) -> tuple[bool, str]:
        """The full registration exchange for one client; (accepted, why)."""
        at = at or utcnow()
        site = self.sites[client]
        reg = RegistrationClient(site.agent, SERVER, site.trust, site.record.journal)
        try:
            reply = self.registration.on_hello(client, reg.hello(at), at)
            reg.on_reply(reply, at)
            if "challenge" in reply:
                self.transports[client].request(SERVER, "register.confirm", reg.confirm(reply),
                                                timeout=10)
        except CCAttestError as error:
            return False, str(error)
        return True, "registered"

    def round(self) -> RoundReport:
        return self.coordinator.run_round()

    def collections(self) -> int:
        return sum(site.attester.collections for site in self.sites.values() if site.attester)

    def close(self) -> None:
        self.coordinator.close()
        for site in self.sites.values():
            site.record.close()


def _records(names: Sequence[str], folder: Path, policy: Policy, checkpoint_every: int
             ) -> dict[str, SiteRecord]:
    """Every site's record, keys and the federation's key set, as provisioning makes them."""
    keys = {name: SiteKeys.generate(FEDERATION, name) for name in names}
    result_key = SigningKey.generate()
    federation = merge_jwks([jwks([result_key])["keys"],
                             *(k.public_jwks() for k in keys.values())])
    found = note_keys(federation)
    records = {}
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        store = RecordStore.open(folder / name / "record.sqlite3",
                                 origin=origin_for(FEDERATION, name), create=True)
        site_log = SiteLog(store, keys[name].log, checkpoint_every=checkpoint_every)
        journal = Journal(site_log, name, policy=policy)
        record = SiteRecord(journal, keys=keys[name], jwks=federation, note_keys=found,
                            location=store.location)
        if name == SERVER:
            record.result_key = result_key
            record.witnessed = Witnessed(site_log, {n: key for n, key in found.witnesses.items()
                                                    if n != SERVER})
        else:
            record.witness = Witness(store, keys[name].witness,
                                     found.log(origin_for(FEDERATION, SERVER)),
                                     run=journal.now)
        records[name] = record
    return records
