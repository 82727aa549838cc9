"""Record growth: what 30 days of a steady 200-site federation leave on disk.

The issue's claim: storage grows with what changes, not with rounds x N²; a federation of
200 sites with a round every 5 minutes stays under 2 GB on the server over 30 days, and
proportionally less on a client. This writes those 8640 rounds, compressed in time
(timestamps advance 5 minutes a round, nothing sleeps), with fixed seeds, through the real
record (RecordStore, SiteLog, signed checkpoints, witness cosignatures), in the shapes
docs/ARCHITECTURE.md ("The record") gives each entry kind:

- start-up, on both sites: a `config` entry, then per peer a `verdict` and a `registration`;
- every round, the server (coordinator): a checkpoint before the round's witnessing, its
  199 clients' cosignatures of it in one `add_cosignatures` batch, then one `round` entry
  (participants: all 200; judged: each peer's status and fresh evidence digest);
- every round, one client (site-1): its own `round` entry judging its 199 peers, and its
  witness state of the server's log (`set_witnessed`, with the note it cosigned);
- steady-state changes on each site: a peer's judgement changes 3 times a day (`verdict`
  with policy, results, trust vector, ~10 claims, failures); a job 4 times a day (server:
  `gate` + admission `receipt` + a checkpoint; the client: the admission receipt + a
  checkpoint), closed an hour later (a `closing` receipt on both); receipts carry a ~6 KB
  token.

Cosignatures: 199 a round for 8640 rounds would be 1.7M Ed25519 signatures, minutes of CPU
that say nothing about storage. Every witness signs for real in the first
REAL_COSIGN_ROUNDS rounds (which fixes each witness's exact line length), and site-1 signs
for real every round (it needs the note for its witness state); afterwards the other
witnesses' lines are built in the same format (their key ID, the round's timestamp, 64
seeded random bytes instead of a signature): identical length, so identical storage, but
their signatures do not verify. Every line's length is checked against the real one.

Sizes are the SQLite files (database + WAL + shared memory) after the stores are closed
(closing checkpoints the WAL into the database). Append throughput is the time inside
SiteLog.append (encoding, the store's transaction with its fsync, the tree, the automatic
checkpoints); its baseline, timed interleaved in the same run, is the bare `sqlite3` module
inserting the same body bytes, one INSERT per transaction, into a one-table database with
the same pragmas (WAL, synchronous=FULL).

`python -m benchmarks.bench_record [ROUNDS]` (make bench-record) runs it alone; with fewer
rounds the 30-day size is projected linearly from the bytes per round.
"""

from __future__ import annotations

import base64
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ccattest.record import note
from ccattest.record.entry import Entry
from ccattest.record.keys import SiteKeys
from ccattest.record.log import SiteLog
from ccattest.record.store import RecordStore

from .harness import Row, record, show

ROUNDS = 8640  # 30 days of 5-minute rounds
SITES = 200  # the server and 199 clients
ROUND_EVERY = timedelta(minutes=5)
VERDICT_EVERY = 96  # rounds: a peer's judgement changes 3 times a day, on each site
JOB_EVERY = 72  # rounds: 4 jobs a day
JOB_ROUNDS = 12  # a job runs an hour: its closing receipt comes 12 rounds after admission
MISSING_RATE = 0.01  # a round in a hundred misses one site
REAL_COSIGN_ROUNDS = 2
TOKEN_BYTES = 4500  # base64url: a ~6 KB receipt token
BOUND = 2_000_000_000  # the "under 2 GB" for the server, in bytes
SEED = 11
FEDERATION = "bench"
SERVER, CLIENT = "server", "site-1"
START = datetime(2025, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUSES = ("affirming", "warning", "contraindicated")
_VECTOR = {"affirming": 2, "warning": 32, "contraindicated": 96}


def _hex(rng: random.Random, n: int = 32) -> str:
    return rng.randbytes(n).hex()


def _token(rng: random.Random) -> str:
    """A JWT-shaped string of about 6 KB (header.payload.signature, base64url)."""
    def part(n: int) -> str:
        return base64.urlsafe_b64encode(rng.randbytes(n)).rstrip(b"=").decode("ascii")
    return f"{part(30)}.{part(TOKEN_BYTES)}.{part(96)}"


class _Bare:
    """The baseline: the sqlite3 module, one table, one INSERT a transaction."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("CREATE TABLE entries (idx INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        self.seconds, self.count = 0.0, 0

    def insert(self, body: bytes) -> None:
        start = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT INTO entries (body) VALUES (?)", (body,))
        self.conn.execute("COMMIT")
        self.seconds += time.perf_counter() - start
        self.count += 1


@dataclass
class _Site:
    """One site's record, with the time its appends took and its judgements of its peers."""

    name: str
    keys: SiteKeys
    path: Path
    store: RecordStore
    log: SiteLog
    bare: _Bare
    peers: list[str]
    status: dict[str, str]
    seconds: float = 0.0  # all this site's work in the rounds (not start-up)
    append_seconds: float = 0.0
    appends: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def append(self, kind: str, at: datetime, data: dict[str, Any]) -> int:
        entry = Entry(kind, self.name, at, data)
        start = time.perf_counter()
        index = self.log.append(entry)
        self.append_seconds += time.perf_counter() - start
        self.appends += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.bare.insert(entry.encode())  # the same bytes, timed on their own
        return index


def _open(name: str, directory: Path, bare: _Bare, names: list[str]) -> _Site:
    keys = SiteKeys.generate(FEDERATION, name)
    path = directory / f"{name}.sqlite3"
    store = RecordStore.open(path, origin=keys.log.name)
    peers = [peer for peer in names if peer != name]
    return _Site(name, keys, path, store, SiteLog(store, keys.log), bare, peers,
                 dict.fromkeys(peers, "affirming"))


def _policy(rng: random.Random) -> dict[str, str]:
    return {"id": "ccattest/default", "digest": _hex(rng)}


def _verdict(peer: str, status: str, context: str, round_id: str | None, at: datetime,
             policy: dict[str, str], rng: random.Random) -> dict[str, Any]:
    affirming = status == "affirming"
    vector = {"instance-identity": 2, "configuration": 2, "executables": _VECTOR[status],
              "file-system": 2, "hardware": 2, "runtime-opaque": 2}
    claims = {"tee": "sev-snp", "measurement": _hex(rng, 48), "report_data_bound": True,
              "debug": False, "policy_version": "3", "firmware": "1.55.21",
              "reported_tcb": f"0x{rng.getrandbits(64):016x}", "chip_id": _hex(rng, 64),
              "guest_svn": rng.randrange(1, 16), "hostname": f"{peer}.example.org"}
    failures = [] if affirming else [
        f"executables: measurement {claims['measurement'][:16]}... is not among the "
        "policy's reference values"]
    return {"peer": peer, "context": context, "round": round_id, "definitive": True,
            "status": status, "affirming": affirming, "policy": policy,
            "results": [{"platform": "software", "status": status, "trust_vector": vector,
                         "evidence": _hex(rng), "claims": claims,
                         "expires": (at + timedelta(hours=1)).isoformat()}],
            "failures": failures}


def _start(site: _Site, at: datetime, policy: dict[str, str], rng: random.Random) -> None:
    """What a site writes when it starts: its config, then each peer's registration."""
    site.append("config", at, {"policy": policy, "config": _hex(rng), "platforms": ["software"],
                               "record": {"checkpoint_every": site.log.checkpoint_every,
                                          "keep_evidence": False}})
    for peer in site.peers:
        index = site.append("verdict", at, _verdict(peer, "affirming", "confirm", None, at,
                                                    policy, rng))
        site.append("registration", at, {"peer": peer, "stage": "confirm", "definitive": True,
                                         "status": "affirming", "verdict": index})
    site.log.checkpoint(at=at)


def _change_verdict(site: _Site, round_id: str, at: datetime, policy: dict[str, str],
                    rng: random.Random) -> None:
    peer = rng.choice(site.peers)
    current = site.status[peer]
    status = "affirming" if current != "affirming" else rng.choice(_STATUSES[1:])
    site.status[peer] = status
    site.append("verdict", at, _verdict(peer, status, "round", round_id, at, policy, rng))


def _round_entry(site: _Site, round_id: str, transcript: str, at: datetime, names: list[str],
                 evidence: dict[str, str], missing: dict[str, str]) -> None:
    judged = {peer: [site.status[peer], evidence[peer]] for peer in site.peers
              if peer not in missing}
    site.append("round", at, {"round": round_id, "transcript": transcript,
                              "coordinator": SERVER, "participants": names,
                              "missing": missing, "judged": judged})


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
               if p.exists())


def bytes_per_round(rounds: int, sites: int, *, directory: Path | None = None,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write `rounds` rounds of a `sites`-site federation into the server's and site-1's
    records; returns sizes, counts and timings. The files go to a temporary folder, removed
    afterwards, unless `directory` is given (then they stay there)."""
    if sites < 2 or rounds < 1:
        raise ValueError("at least one round of two sites")
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="ccattest-bench-record-") as temp:
            return bytes_per_round(rounds, sites, directory=Path(temp), progress=progress)
    began = time.perf_counter()
    rng = random.Random(SEED)
    names = [SERVER, *(f"site-{i}" for i in range(1, sites))]
    bare = _Bare(directory / "bare.sqlite3")
    server, client = (_open(name, directory, bare, names) for name in (SERVER, CLIENT))
    witnesses = {name: (SiteKeys.generate(FEDERATION, name).witness if name != CLIENT
                        else client.keys.witness) for name in names if name != SERVER}
    server_key = server.keys.log.verifier
    line_length: dict[str, int] = {}
    policy = _policy(rng)
    _start(server, START, policy, rng)
    _start(client, START, policy, rng)
    closing: dict[int, str] = {}  # round -> the job that closes then
    cosignature_rows = real_cosignatures = 0
    for number in range(rounds):
        at = START + (number + 1) * ROUND_EVERY
        timestamp = (at - _EPOCH) // timedelta(seconds=1)
        round_id, transcript = rng.randbytes(8).hex(), _hex(rng)
        evidence = {name: _hex(rng) for name in names}  # one fresh evidence per site a round
        missing = {}
        if rng.random() < MISSING_RATE and sites > 2:  # never the server or site-1
            missing[rng.choice(names[2:])] = "unreachable"
        # The server: a checkpoint before the witnessing, the clients' cosignatures, the round.
        start = time.perf_counter()
        checkpoint = server.log.checkpoint(at=at)
        head = note.Checkpoint.parse(note.parse(checkpoint).text)
        lines = []
        for name, witness in witnesses.items():
            if name in missing:
                continue
            if number < REAL_COSIGN_ROUNDS or name == CLIENT:
                cosigned = note.cosign(checkpoint, witness, server_key, at=at)
                line = note.parse(cosigned).signatures[-1].line()
                line_length.setdefault(name, len(line))
                real_cosignatures += 1
                if name == CLIENT:
                    client_note = cosigned.decode("utf-8")
            else:  # same format and length, a seeded stand-in for the signature
                line = note.Signature(witness.name, witness.key_id,
                                      timestamp.to_bytes(8, "big") + rng.randbytes(64)).line()
            if len(line) != line_length[name]:
                raise RuntimeError(f"{name}'s stand-in cosignature line has the wrong length")
            lines.append((name, line, timestamp))
        cosignature_rows += server.store.add_cosignatures(head.size, lines)
        _round_entry(server, round_id, transcript, at, names, evidence, missing)
        if number % VERDICT_EVERY == 7:
            _change_verdict(server, round_id, at, policy, rng)
        if number % JOB_EVERY == 3:
            job = rng.randbytes(8).hex()
            closing[number + JOB_ROUNDS] = job
            server.append("gate", at, {"job": job, "participants": names, "allowed": True,
                                       "reasons": [], "byoc": False})
            server.append("receipt", at, {"job": job, "phase": "admission", "issuer": SERVER,
                                          "token": _token(rng)})
            server.log.checkpoint(at=at)
        if number in closing:
            server.append("receipt", at, {"job": closing[number], "phase": "closing",
                                          "issuer": SERVER, "token": _token(rng)})
        server.seconds += time.perf_counter() - start
        # The client: its own round entry, its witness state, its changes.
        start = time.perf_counter()
        _round_entry(client, round_id, transcript, at, names, evidence, missing)
        if CLIENT not in missing:
            client.store.set_witnessed(server.log.origin, head.size, head.root, client_note,
                                       at=at)
        if number % VERDICT_EVERY == 41:
            _change_verdict(client, round_id, at, policy, rng)
        if number % JOB_EVERY == 3:
            client.append("receipt", at, {"job": closing[number + JOB_ROUNDS],
                                          "phase": "admission", "issuer": SERVER,
                                          "token": _token(rng)})
            client.log.checkpoint(at=at)
        if number in closing:
            client.append("receipt", at, {"job": closing.pop(number), "phase": "closing",
                                          "issuer": SERVER, "token": _token(rng)})
        client.seconds += time.perf_counter() - start
        if progress is not None and ((number + 1) % 48 == 0 or number + 1 == rounds):
            elapsed = time.perf_counter() - began
            left = elapsed / (number + 1) * (rounds - number - 1)
            progress(f"record growth: round {number + 1}/{rounds} of {sites} sites, "
                     f"{(server.seconds + client.seconds) / (number + 1) * 1000:.0f} ms a "
                     f"round, about {left / 60:.1f} min left")
    end = START + (rounds + 1) * ROUND_EVERY
    result: dict[str, Any] = {"rounds": rounds, "sites": sites,
                              "real_cosignatures": real_cosignatures}
    for site in (server, client):
        site.log.checkpoint(at=end)  # at shutdown
        checkpoints = len(site.store.checkpoints())
        site.store.close()
        size = _size(site.path)
        result[site.name if site is server else "client"] = {
            "name": site.name, "origin": site.log.origin, "path": str(site.path),
            "log_key": str(site.keys.log.verifier),
            "witness_key": str(site.keys.witness.verifier), "bytes": size,
            "bytes_per_round": size / rounds, "entries": site.log.size,
            "appends": site.appends, "kinds": dict(site.kinds), "checkpoints": checkpoints,
            "seconds": site.seconds, "append_seconds": site.append_seconds,
            "cosignatures": cosignature_rows if site is server else 0}
    bare.conn.close()
    result["baseline"] = {"bytes": _size(directory / "bare.sqlite3"), "inserts": bare.count,
                          "seconds": bare.seconds}
    result["seconds"] = time.perf_counter() - began
    return result


def rows(console: Console, progress: Callable[[str], None] | None = None, *,
         rounds: int = ROUNDS, sites: int = SITES) -> list[Row]:
    result = bytes_per_round(rounds, sites, progress=progress)
    server, client, bare = result["server"], result["client"], result["baseline"]
    scale = ROUNDS / rounds  # 1 when all 30 days were written
    server_30 = server["bytes"] * scale
    client_30 = client["bytes"] * scale
    appends = server["appends"] + client["appends"]
    ours = appends / (server["append_seconds"] + client["append_seconds"])
    base = bare["inserts"] / bare["seconds"]
    table = Table(title=f"record growth: {rounds} rounds of {sites} sites, a round every "
                  "5 minutes (compressed in time)", header_style="bold",
                  caption="bare: the bare sqlite3 baseline holding both sites' entry bodies "
                  "and nothing else; ms/round: each site's own work in a round")
    for column in ("site", "entries", "checkpoints", "cosignature rows", "file",
                   "bytes/round", "30 days", "ms/round"):
        table.add_column(column, justify="left" if column == "site" else "right")
    for label, site in (("server", server), ("site-1", client)):
        table.add_row(label, f"{site['entries']:,}", f"{site['checkpoints']:,}",
                      f"{site['cosignatures']:,}", f"{site['bytes'] / 1e6:,.1f} MB",
                      f"{site['bytes_per_round']:,.0f}",
                      f"{site['bytes'] * scale / 1e6:,.0f} MB",
                      f"{site['seconds'] / rounds * 1000:.1f}")
    table.add_row("bare", f"{bare['inserts']:,}", "", "",
                  f"{bare['bytes'] / 1e6:,.1f} MB", f"{bare['bytes'] / rounds:,.0f}",
                  f"{bare['bytes'] * scale / 1e6:,.0f} MB", "")
    console.print(table)
    written = ("all 30 days written" if rounds == ROUNDS else
               f"{rounds} rounds written, 30 days projected linearly")
    verdict = "under" if server_30 < BOUND else "OVER"
    console.print(
        f"Record growth ({written}, {result['seconds']:.0f} s): the server's record is "
        f"{server_30 / 1e9:.2f} GB after 30 days, {verdict} the issue's 2 GB bound; the "
        f"client's {client_30 / 1e9:.2f} GB ({client_30 / server_30:.0%} of the server's). "
        f"Cosignatures: {result['real_cosignatures']:,} signed for real (every witness in the "
        f"first {REAL_COSIGN_ROUNDS} rounds, site-1 every round); the other "
        f"{server['cosignatures'] - result['real_cosignatures']:,} lines have the real lines' "
        "format and length with random bytes for the signature. Append throughput: time in "
        "SiteLog.append beside a bare sqlite3 INSERT of the same bytes (WAL, synchronous=FULL, "
        "one per transaction), interleaved.")
    return [
        Row("record server bytes per round (200 sites)", round(server["bytes_per_round"]),
            "bytes", "2 GB / 8640 rounds (issue)", round(BOUND / ROUNDS),
            round(server["bytes_per_round"] / (BOUND / ROUNDS), 4)),
        Row("record server 30-day size (200 sites)", round(server_30 / 1e6, 1), "MB",
            "2 GB (issue)", BOUND / 1e6, round(server_30 / BOUND, 4)),
        Row("record client bytes per round (200 sites)", round(client["bytes_per_round"]),
            "bytes", "server bytes per round", round(server["bytes_per_round"]),
            round(client["bytes_per_round"] / server["bytes_per_round"], 4)),
        Row("record client 30-day size (200 sites)", round(client_30 / 1e6, 1), "MB",
            "server 30-day size", round(server_30 / 1e6, 1), round(client_30 / server_30, 4)),
        Row("record append throughput", round(ours, 1), "entries/s",
            "bare sqlite3 INSERT (WAL, FULL)", round(base, 1), round(ours / base, 3)),
    ]


def round_seconds(clients: int, rounds: int, *, with_record: bool,
                  collect_delay: float = 0.005) -> tuple[list[float], float]:
    """Wall time of each round of an in-process federation (the mesh's real code: rounds,
    verdicts, witnessing), with every site keeping its record on disk or none at all; and
    the process's CPU seconds a round (all sites share this machine's cores)."""
    import tempfile

    from ccattest.testing.federation import SimulatedFederation

    with tempfile.TemporaryDirectory(prefix="ccattest-round-") as folder:
        fed = SimulatedFederation.create(clients, collect_delay=collect_delay,
                                         record_dir=Path(folder) if with_record else None)
        try:
            for name in list(fed.sites)[1:]:
                fed.register(name)
            fed.round()  # the first round writes every first verdict: not steady state
            cpu = time.process_time()
            walls = [fed.round().seconds for _ in range(rounds)]
            fed.flush()  # what the rounds queued for their records is part of their cost
            return walls, (time.process_time() - cpu) / rounds
        finally:
            fed.close()


def verify_step(clients: int = 20, repeats: int = 40) -> dict[str, float]:
    """One site's part of a round, timed alone (single-threaded, median seconds): its VERIFY
    step (judging every peer) without a record; with the record's writes made inline (all
    the work the record costs); with them behind the round as the mesh does (what the
    round waits for); and the witness check and cosignature it answers with."""
    import statistics
    import tempfile

    from ccattest.mesh.journal import Journal
    from ccattest.mesh.rounds import VERIFY
    from ccattest.mesh.wire import Transcript
    from ccattest.testing.federation import SimulatedFederation
    from ccattest.timeutil import utcnow

    with tempfile.TemporaryDirectory(prefix="ccattest-verify-") as folder:
        fed = SimulatedFederation.create(clients, record_dir=Path(folder))
        try:
            for name in list(fed.sites)[1:]:
                fed.register(name)
            fed.round()
            site = fed.sites["site-1"]
            participant, captured = site.participant, []
            original = participant.handle

            def spy(sender: str, topic: str, body: dict[str, Any]) -> dict[str, Any]:
                if topic == VERIFY:
                    captured.append(body)
                return original(sender, topic, body)

            participant.handle = spy  # type: ignore[method-assign]
            fed.round()
            fed.flush()
            participant.handle = original  # type: ignore[method-assign]
            body = captured[-1]
            transcript = Transcript.from_wire(body["transcript"])
            journal, witness = participant.journal, participant.witness

            def step(record: str) -> float:
                participant._contributed[transcript.round_id] = \
                    transcript.contribution_of("site-1") or b""
                participant._verified._entries.clear()
                participant.journal = journal if record != "none" else Journal(None, "site-1")
                inline = record == "inline"
                if inline:
                    journal.later = lambda job: job()  # type: ignore[method-assign]
                started = time.perf_counter()
                participant._verify(transcript, body["evidence"], "server")
                took = time.perf_counter() - started
                if inline:
                    del journal.later
                journal.flush()
                return took

            def witnessing() -> float:
                assert witness is not None
                log = fed.sites["server"].record.witnessed
                assert log is not None
                checkpoint = log.log.checkpoint(at=utcnow())
                view = log.view(checkpoint, witness.seen_size(), "site-1")
                started = time.perf_counter()
                participant.cosign("server", view.to_wire())
                took = time.perf_counter() - started
                fed.sites["server"].record.journal.log.append(  # type: ignore[union-attr]
                    Entry("action", "server", utcnow(), {"site": "bench"}))
                return took

            times: dict[str, list[float]] = {"none": [], "behind": [], "inline": [],
                                             "witness": []}
            for _ in range(repeats):
                for mode in ("none", "behind", "inline"):
                    times[mode].append(step(mode))
                times["witness"].append(witnessing())
            participant.journal = journal
            return {mode: statistics.median(values) for mode, values in times.items()}
        finally:
            fed.close()


def round_rows(console: Console, *, clients: int = 20, rounds: int = 15) -> list[Row]:
    """A round's wall time with the record beside the same federation without it, runs
    interleaved so that the machine's other work falls on both alike; and one site's share
    of a round timed alone."""
    import statistics

    timed: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(2):
        for with_record in (False, True):
            walls, seconds = round_seconds(clients, rounds, with_record=with_record)
            timed[with_record] += walls
            cpu[with_record].append(seconds)
    ours, bare = statistics.median(timed[True]), statistics.median(timed[False])
    cpu_ours, cpu_bare = statistics.median(cpu[True]), statistics.median(cpu[False])
    per_site = (cpu_ours - cpu_bare) / (clients + 1) * 1000
    console.print(
        f"Round wall time, {clients + 1} sites in one process (5 ms collections), median of "
        f"{len(timed[True])} rounds each: {ours * 1000:.1f} ms with every site's record "
        f"(verdicts on change, a round entry per site, a checkpoint and {clients} "
        f"cosignatures a round) beside {bare * 1000:.1f} ms without. Appends are written "
        "behind the round, so no round waits on the disk; what remains is CPU: "
        f"{cpu_ours * 1000:.0f} ms against {cpu_bare * 1000:.0f} ms a round for all sites, "
        f"{per_site:.1f} ms a site, which here all sites share two cores for.")
    step = verify_step(clients)
    console.print(
        f"One site's VERIFY step alone (judging {clients} peers, single-threaded, median): "
        f"{step['none'] * 1000:.2f} ms without a record, {step['behind'] * 1000:.2f} ms with "
        f"it written behind the round, {step['inline'] * 1000:.2f} ms with every write "
        f"inline; the witness check and cosignature beside it: "
        f"{step['witness'] * 1000:.2f} ms (one durable write).")
    return [Row("one site's VERIFY step with the record", round(step["behind"] * 1000, 3),
                "ms", "the same step without a record", round(step["none"] * 1000, 3),
                round(step["behind"] / step["none"], 3)),
            Row("witness check and cosignature (a client, a round)",
                round(step["witness"] * 1000, 3), "ms", "the site's VERIFY step without a "
                "record", round(step["none"] * 1000, 3),
                round(step["witness"] / step["none"], 3)),
            Row(f"round wall time with the record ({clients + 1} sites)",
                round(ours * 1000, 2), "ms", "the same rounds without a record",
                round(bare * 1000, 2), round(ours / bare, 3)),
            Row("record CPU a site a round", round(per_site, 2), "ms",
                "the site's whole round (CPU) without a record",
                round(cpu_bare / (clients + 1) * 1000, 2),
                round(per_site / (cpu_bare / (clients + 1) * 1000), 3))]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    console = Console()
    with console.status("record growth: 30 days of 5-minute rounds, 200 sites "
                        "(~3 min)...") as status:
        growth = rows(console, status.update, rounds=rounds)
    with console.status("rounds with and without the record (~1 min)..."):
        growth += round_rows(console)
    show(console, growth)
    record(growth)


if __name__ == "__main__":
    main()
