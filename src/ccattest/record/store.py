"""One site's log on disk: SQLite (a file, the default) or PostgreSQL, through SQLAlchemy Core.

Tables (schema version 1):

- ``entries``: ``idx`` (dense from 0, never reused), ``site``, ``kind``, ``at_us`` (the
  entry's time in microseconds since the epoch: an integer sorts right on both backends, ISO
  text with an optional fraction does not), ``body`` (the canonical entry bytes) and
  ``leaf_hash`` (RFC 9162 ``SHA-256(0x00 || body)``).
- ``head``: one row, the log's size. Every append locks it first (``BEGIN IMMEDIATE`` on
  SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so appenders queue up and the next index
  is always the size: no gaps, no duplicates, whatever the number of writers.
- ``checkpoints``: ``size`` (one per size), ``root``, the signed ``note`` text, ``created_us``.
- ``cosignatures``: ``checkpoint_size``, ``witness``, the cosignature ``line``, its
  ``timestamp`` (seconds, as the cosignature states it); the newest per witness is kept.
- ``evidence``: ``digest`` (SHA-256 of the blob) and ``blob``; only when a site keeps
  evidence; one copy per digest.
- ``witnessed`` (schema version 2): this site's view of OTHER sites' logs, as their witness:
  per ``origin`` the largest checkpoint it checked and cosigned (``size``, ``root``, the
  ``note``). It must survive restarts, or a log could fork behind a witness that forgot.
- ``meta``: what this database is: the format (``ccattest-record``, version 1) and the log's
  origin. Opening a database whose meta names another origin, or that has no meta at all, is
  refused: one site must never append to another site's (or federation's) log.
- ``migrations``: one row per schema migration applied.

Why not Alembic: the store migrates itself when a site opens it, in-process, inside the same
locked transaction that checks the database is this site's log; Alembic wants a script
directory and env.py shipped as package data, its own version table and a second
configuration path, for what is here an ordered list of Python functions. A migration is
``(version, description, function)``; migrations never change once released: a later
version that alters a table freezes the earlier table definitions inside its migration.

Durability (SQLite): WAL journal with ``synchronous=FULL``. WAL never corrupts committed
pages on a crash, a ``kill -9`` or a full disk (a failed write rolls back); with NORMAL it
would also survive a crash but a power loss could drop the last commits, and an index the
store has returned may already be in a checkpoint a witness cosigned: losing it would look
like a rolled-back (forked) log. FULL syncs the WAL at every commit; appends are events (a
few per round), so the fsync costs nothing that matters. PostgreSQL's own defaults
(``fsync``, ``synchronous_commit=on``) give the same guarantee.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    exc,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url

from ..errors import CCAttestError, ConfigError, VerificationFailed
from ..timeutil import require_aware
from . import merkle
from .entry import Entry, decode

FORMAT = "ccattest-record"
FORMAT_VERSION = "1"  # entry encoding v1 (record/entry.py), RFC 9162 SHA-256 tree
DEFAULT_FILE = "record.sqlite3"
CONNECT_TIMEOUT_S = 5  # a database that does not answer fails open() instead of hanging it
BUSY_TIMEOUT_S = 15.0  # how long an SQLite writer waits for another one
SQLITE_CACHE_KIB = 256  # each connection's page cache (SQLite's default is 2 MiB)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_LOCK_KEY = 0x63636174  # "ccat": serializes concurrent first opens (schema creation)
_WRITE = "ccattest_write"

metadata = MetaData()
meta = Table("meta", metadata,
             Column("key", String(64), primary_key=True),
             Column("value", Text, nullable=False))
migrations = Table("migrations", metadata,
                   Column("version", Integer, primary_key=True, autoincrement=False),
                   Column("description", Text, nullable=False),
                   Column("applied_at", Text, nullable=False,
                          server_default=func.current_timestamp()))
head = Table("head", metadata,
             Column("id", Integer, primary_key=True, autoincrement=False),
             Column("size", BigInteger, nullable=False))
entries = Table("entries", metadata,
                Column("idx", BigInteger, primary_key=True, autoincrement=False),
                Column("site", Text, nullable=False),
                Column("kind", String(32), nullable=False),
                Column("at_us", BigInteger, nullable=False),
                Column("body", LargeBinary, nullable=False),
                Column("leaf_hash", LargeBinary(32), nullable=False),
                Index("entries_site", "site"), Index("entries_kind", "kind"),
                Index("entries_at", "at_us"))
checkpoints = Table("checkpoints", metadata,
                    Column("size", BigInteger, primary_key=True, autoincrement=False),
                    Column("root", LargeBinary(32), nullable=False),
                    Column("note", Text, nullable=False),
                    Column("created_us", BigInteger, nullable=False))
cosignatures = Table("cosignatures", metadata,
                     Column("checkpoint_size", BigInteger, ForeignKey("checkpoints.size"),
                            primary_key=True, autoincrement=False),
                     Column("witness", Text, primary_key=True),
                     Column("line", Text, nullable=False),
                     Column("timestamp", BigInteger, nullable=False))
evidence = Table("evidence", metadata,
                 Column("digest", LargeBinary(32), primary_key=True),
                 Column("blob", LargeBinary, nullable=False))
witnessed = Table("witnessed", metadata,
                  Column("origin", Text, primary_key=True),
                  Column("size", BigInteger, nullable=False),
                  Column("root", LargeBinary(32), nullable=False),
                  Column("note", Text, nullable=False),
                  Column("updated_us", BigInteger, nullable=False))


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[meta, head, entries, checkpoints, cosignatures,
                                      evidence])
    conn.execute(insert(head).values(id=1, size=0))


def _v2(conn: Connection) -> None:
    witnessed.create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "meta, head, entries, checkpoints, cosignatures, evidence", _v1),
    Migration(2, "witnessed: the checkpoints of other logs this site cosigned", _v2),
)


class StoreError(CCAttestError):
    """The database failed a read or write after it was opened: a full disk, an I/O error,
    a lost connection. A failed append wrote nothing; earlier entries are untouched."""


@dataclass(frozen=True)
class StoredEntry:
    index: int
    site: str
    kind: str
    at: datetime
    body: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    note: str
    created_at: datetime


@dataclass(frozen=True)
class Cosignature:
    size: int
    witness: str
    line: str
    timestamp: int


def _micros(at: datetime, name: str) -> int:
    return (require_aware(at, name) - _EPOCH) // timedelta(microseconds=1)


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _reason(error: exc.DBAPIError) -> str:
    # The driver's words only: SQLAlchemy's own text would repeat the statement's parameters.
    return str(error.orig).strip().splitlines()[0][:200]


class RecordStore:
    """A site's log. Open it with :meth:`open`; every method is one transaction."""

    def __init__(self, engine: Engine, origin: str, location: str) -> None:
        self._engine = engine
        self.origin = origin
        self.location = location  # printable: never holds a password

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, target: str | os.PathLike[str], *, origin: str | None,
             create: bool = True) -> RecordStore:
        """Open (and with ``create``, make) the log at a path or a SQLAlchemy URL
        (``sqlite:///...``, ``postgresql+psycopg://...``) for the log named ``origin``.
        An auditor who does not know the origin passes None (only with create=False) and
        reads it from the record (``store.origin``)."""
        if origin is None and create:
            raise ConfigError("a new record needs an origin", hint="pass origin=NAME")
        if origin is not None and (not origin or not origin.isprintable()):
            raise ConfigError("a record needs an origin: one line of printable text",
                              found=repr(origin))
        url = _url(target, create)
        location = (str(url.database) if url.get_backend_name() == "sqlite"
                    else url.render_as_string(hide_password=True))
        engine = _engine(url)
        try:
            with engine.connect() as conn:
                conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    origin = _prepare(conn, origin, create, location)
        except exc.DBAPIError as error:
            engine.dispose()
            raise ConfigError(f"cannot open the record at {location}",
                              expected=f"a {FORMAT} database (or none, to create one)",
                              found=_reason(error), hint=_OPEN_HINT[url.get_backend_name()],
                              ) from error
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, origin, location)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, action: str, *, write: bool = False) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{_WRITE: True})
                with conn.begin():
                    yield conn
        except exc.DBAPIError as error:
            reason = _reason(error)
            hint = ("free disk space; nothing of this call was written, earlier entries are "
                    "intact") if "full" in reason.lower() else None
            raise StoreError(f"the record at {self.location} could not {action}",
                             found=reason, hint=hint) from error

    # -- entries ---------------------------------------------------------------------------

    def append(self, body: bytes, entry: Entry | None = None) -> int:
        """Append one canonical entry; returns its index. Non-canonical bytes are refused
        (MalformedEvidence), so one event cannot stand in the log under two leaf hashes.
        A writer that encoded `body` from `entry` itself passes it and skips re-parsing (its
        indexed columns come from `entry`; `audit` checks they agree with the body)."""
        if entry is None:
            entry = decode(body)
        at_us = _micros(entry.at, "entry time")
        with self._transaction("append the entry", write=True) as conn:
            index = _size(conn, lock=True)
            conn.execute(_INSERT_ENTRY, {
                "idx": index, "site": entry.site, "kind": entry.kind, "at_us": at_us,
                "body": bytes(body), "leaf_hash": merkle.leaf_hash(body)})
            conn.execute(_SET_SIZE, {"new_size": index + 1})
        return index

    def size(self) -> int:
        with self._transaction("read its size") as conn:
            return _size(conn)

    def leaf_hashes(self, start: int = 0, end: int | None = None) -> list[bytes]:
        """Leaf hashes of entries [start, end); refuses a log with a hole in it."""
        with self._transaction("read leaf hashes") as conn:
            end = _range(conn, start, end)
            rows = conn.execute(select(entries.c.leaf_hash)
                                .where(entries.c.idx >= start, entries.c.idx < end)
                                .order_by(entries.c.idx)).scalars().all()
        if len(rows) != end - start:
            raise VerificationFailed("the record's entries are not dense: rows are missing",
                                     expected=f"{end - start} entries from {start}",
                                     found=f"{len(rows)}", hint="restore the record from a "
                                     "backup or a witness's copy")
        return [bytes(row) for row in rows]

    def entries(self, start: int = 0, end: int | None = None, *, site: str | None = None,
                kind: str | None = None, since: datetime | None = None,
                until: datetime | None = None, limit: int | None = None,
                newest_first: bool = False) -> list[StoredEntry]:
        """Entries [start, end) in index order, optionally only one site's, one kind's, or
        those at or after ``since`` and before ``until``; at most ``limit`` of them (the
        first ones, or with ``newest_first`` the last ones, newest first). The limit and
        the order are the query's, so a page reads only its own rows."""
        if limit is not None and limit < 0:
            raise ValueError(f"a limit of {limit} entries")
        conditions = [entries.c.idx >= start]
        if site is not None:
            conditions.append(entries.c.site == site)
        if kind is not None:
            conditions.append(entries.c.kind == kind)
        if since is not None:
            conditions.append(entries.c.at_us >= _micros(since, "since"))
        if until is not None:
            conditions.append(entries.c.at_us < _micros(until, "until"))
        with self._transaction("read entries") as conn:
            conditions.append(entries.c.idx < _range(conn, start, end))
            query = select(entries).where(*conditions).order_by(
                entries.c.idx.desc() if newest_first else entries.c.idx)
            rows = conn.execute(query if limit is None else query.limit(limit)).all()
        return [StoredEntry(row.idx, row.site, row.kind, _instant(row.at_us), bytes(row.body),
                            bytes(row.leaf_hash)) for row in rows]

    def verify(self, batch: int = 1000) -> int:
        """Walk the whole log: indices dense from 0 and every leaf hash that of its body.
        Returns the size; raises VerificationFailed at the first fault."""
        with self._transaction("read entries") as conn:
            size = _size(conn)
            for first in range(0, size, batch):
                rows = conn.execute(select(entries.c.idx, entries.c.body, entries.c.leaf_hash)
                                    .where(entries.c.idx >= first, entries.c.idx < first + batch)
                                    .order_by(entries.c.idx)).all()
                for expected, row in enumerate(rows, start=first):
                    if row.idx != expected:
                        raise VerificationFailed("the record has a hole", expected=expected,
                                                 found=row.idx)
                    if merkle.leaf_hash(bytes(row.body)) != bytes(row.leaf_hash):
                        raise VerificationFailed("a stored leaf hash is not its entry's",
                                                 found=f"entry {row.idx}")
                if len(rows) != min(batch, size - first):
                    raise VerificationFailed("the record is shorter than its head says",
                                             expected=size, found=first + len(rows))
        return size

    # -- checkpoints and cosignatures ------------------------------------------------------

    def add_checkpoint(self, size: int, root: bytes, note: str, *, at: datetime,
                       check_root: bool = True) -> bool:
        """Store a signed checkpoint after checking its root against the stored leaves
        (O(size); the log's writer, whose tree was built from those same leaves, skips it
        with check_root=False: `audit` checks every stored root anyway).
        Returns False when the same checkpoint was already stored."""
        created_us = _micros(at, "checkpoint time")
        with self._transaction("store the checkpoint", write=True) as conn:
            logsize = _size(conn)
            if not 0 <= size <= logsize:
                raise VerificationFailed("a checkpoint beyond the log",
                                         expected=f"a size from 0 to {logsize}", found=size)
            actual = root
            if check_root:
                leaves = conn.execute(select(entries.c.leaf_hash).where(entries.c.idx < size)
                                      .order_by(entries.c.idx)).scalars().all()
                actual = merkle.root([bytes(leaf) for leaf in leaves])
            if actual != root:
                raise VerificationFailed(f"the checkpoint's root is not that of the first "
                                         f"{size} entries", expected=actual.hex(),
                                         found=bytes(root).hex())
            stored = conn.execute(select(checkpoints.c.note)
                                  .where(checkpoints.c.size == size)).scalar_one_or_none()
            if stored is not None:
                if stored != note:
                    raise VerificationFailed(f"another checkpoint of size {size} is stored",
                                             hint="a log signs one note per size")
                return False
            conn.execute(insert(checkpoints).values(size=size, root=bytes(root), note=note,
                                                    created_us=created_us))
        return True

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._transaction("read checkpoints") as conn:
            row = conn.execute(select(checkpoints).order_by(checkpoints.c.size.desc())
                               .limit(1)).first()
        return None if row is None else _checkpoint(row)

    def checkpoints(self) -> list[Checkpoint]:
        with self._transaction("read checkpoints") as conn:
            rows = conn.execute(select(checkpoints).order_by(checkpoints.c.size)).all()
        return [_checkpoint(row) for row in rows]

    def add_cosignature(self, size: int, witness: str, line: str, *, timestamp: int) -> bool:
        """Keep a witness's cosignature of the checkpoint of ``size`` (the newest per
        witness). Returns whether it was stored."""
        return self.add_cosignatures(size, [(witness, line, timestamp)]) == 1

    def add_cosignatures(self, size: int, lines: list[tuple[str, str, int]]) -> int:
        """Several witnesses' (witness, line, timestamp) for one checkpoint in one statement
        (a round brings one per client): each is stored unless a cosignature at least as
        new is kept already. Returns how many rows were written."""
        newest: dict[str, tuple[str, int]] = {}
        for witness, line, timestamp in lines:  # one row per witness in one statement
            if witness not in newest or timestamp > newest[witness][1]:
                newest[witness] = (line, timestamp)
        if not newest:
            return 0
        with self._transaction("store cosignatures", write=True) as conn:
            if conn.execute(select(checkpoints.c.size)
                            .where(checkpoints.c.size == size)).first() is None:
                raise VerificationFailed("a cosignature of a checkpoint this log never made",
                                         found=f"size {size}")
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(cosignatures).values([
                {"checkpoint_size": size, "witness": witness, "line": line,
                 "timestamp": timestamp} for witness, (line, timestamp) in newest.items()])
            statement = statement.on_conflict_do_update(
                index_elements=[cosignatures.c.checkpoint_size, cosignatures.c.witness],
                set_={"line": statement.excluded.line,
                      "timestamp": statement.excluded.timestamp},
                where=cosignatures.c.timestamp < statement.excluded.timestamp)
            # RETURNING counts the rows written on both backends (rowcount does not).
            return len(conn.execute(statement.returning(cosignatures.c.witness)).all())

    def checkpoint(self, size: int) -> Checkpoint | None:
        with self._transaction("read checkpoints") as conn:
            row = conn.execute(select(checkpoints).where(checkpoints.c.size == size)).first()
        return None if row is None else _checkpoint(row)

    # -- what this site witnessed of other logs --------------------------------------------

    def witnessed(self, origin: str) -> Checkpoint | None:
        """The largest checkpoint of log ``origin`` this site checked and cosigned."""
        with self._transaction("read witness state") as conn:
            row = conn.execute(select(witnessed).where(witnessed.c.origin == origin)).first()
        return None if row is None else Checkpoint(row.size, bytes(row.root), row.note,
                                                   _instant(row.updated_us))

    def set_witnessed(self, origin: str, size: int, root: bytes, note: str, *,
                      at: datetime) -> None:
        """Remember a checkpoint of ``origin`` the caller has proved consistent with the
        previous one; never moves backwards (a smaller size is refused)."""
        updated_us = _micros(at, "witness time")
        values = {"origin": origin, "size": size, "root": bytes(root), "note": note,
                  "updated_us": updated_us}
        with self._transaction("store witness state", write=True) as conn:
            statement = _SET_WITNESSED[conn.dialect.name == "postgresql"]
            if not conn.execute(statement, values).all():
                raise VerificationFailed(f"witness state of {origin} would move backwards",
                                         found=size)

    def cosignatures(self, size: int) -> list[Cosignature]:
        with self._transaction("read cosignatures") as conn:
            rows = conn.execute(select(cosignatures)
                                .where(cosignatures.c.checkpoint_size == size)
                                .order_by(cosignatures.c.witness)).all()
        return [Cosignature(row.checkpoint_size, row.witness, row.line, row.timestamp)
                for row in rows]

    # -- evidence --------------------------------------------------------------------------

    def put_evidence(self, digest: bytes, blob: bytes) -> bool:
        """Keep an evidence blob under its SHA-256; returns False if it was already kept."""
        actual = hashlib.sha256(blob).digest()
        if actual != digest:
            raise VerificationFailed("the evidence is not the digest it is filed under",
                                     expected=bytes(digest).hex(), found=actual.hex())
        with self._transaction("store evidence", write=True) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            # ON CONFLICT DO NOTHING: two sites' verdicts may file the same evidence at once.
            stored = conn.execute(dialect.insert(evidence)
                                  .values(digest=actual, blob=bytes(blob))
                                  .on_conflict_do_nothing()
                                  .returning(evidence.c.digest)).first()
        return stored is not None

    def get_evidence(self, digest: bytes) -> bytes | None:
        with self._transaction("read evidence") as conn:
            blob = conn.execute(select(evidence.c.blob)
                                .where(evidence.c.digest == digest)).scalar_one_or_none()
        return None if blob is None else bytes(blob)


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(row.size, bytes(row.root), row.note, _instant(row.created_us))


# Built once: an append runs these three, and building a statement costs more than the
# statement (SQLAlchemy caches the compiled form, not the construction).
_READ_SIZE = select(head.c.size).where(head.c.id == 1)
_LOCK_SIZE = _READ_SIZE.with_for_update()
_INSERT_ENTRY = insert(entries)
_SET_SIZE = update(head).where(head.c.id == 1).values(size=bindparam("new_size"))


def _upsert_witnessed(dialect: Any) -> Any:
    """Insert or move forward (never back) a witness state, in one statement."""
    statement = dialect.insert(witnessed)
    return statement.on_conflict_do_update(
        index_elements=[witnessed.c.origin],
        set_={k: statement.excluded[k] for k in ("size", "root", "note", "updated_us")},
        where=witnessed.c.size <= statement.excluded.size,
    ).returning(witnessed.c.size)


_SET_WITNESSED = {False: _upsert_witnessed(sqlite), True: _upsert_witnessed(postgresql)}


def _size(conn: Connection, *, lock: bool = False) -> int:
    # The head row is the appenders' lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already
    # holds the database's write lock (and SQLAlchemy leaves FOR UPDATE out there).
    return int(conn.execute(_LOCK_SIZE if lock else _READ_SIZE).scalar_one())


def _range(conn: Connection, start: int, end: int | None) -> int:
    size = _size(conn)
    end = size if end is None else end
    if not 0 <= start <= end <= size:
        raise ValueError(f"entries [{start}, {end}) are not within the log of {size}")
    return end


# -- opening: URLs, engines, schema ----------------------------------------------------------

_OPEN_HINT = {
    "sqlite": "is this the site's record file? a damaged record is restored from a backup "
              "or rebuilt from a witness's copy; a database of another program is never used",
    "postgresql": "check the URL, that PostgreSQL runs and accepts this user from this host, "
                  "and that the database exists",
}


def _url(target: str | os.PathLike[str], create: bool) -> URL:
    text = os.fspath(target)
    if "://" not in text:
        return _sqlite_url(Path(text), create)
    try:
        url = make_url(text)
    except (exc.ArgumentError, ValueError):
        raise ConfigError("not a database URL", expected="a path, sqlite:///PATH or "
                          "postgresql+psycopg://USER@HOST:PORT/DB",
                          found=_redact(text)) from None
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        if url.query:  # the store sets its own pragmas; an ignored option would mislead
            raise ConfigError("a record's SQLite URL takes no options",
                              found="?" + "&".join(sorted(url.query)),
                              hint="give a plain path to name a file with '?' in it")
        return _sqlite_url(Path(url.database or ""), create)
    if url.drivername in ("postgresql", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    raise ConfigError("a record is kept in SQLite or PostgreSQL",
                      expected="a path, sqlite:///PATH or postgresql+psycopg://...",
                      found=f"{url.drivername}://...")


def _redact(text: str) -> str:
    # A URL that does not parse may still hold a password: show only the scheme.
    return text.split("://", 1)[0] + "://..."


def _sqlite_url(path: Path, create: bool) -> URL:
    if str(path) in ("", ".", ":memory:"):
        raise ConfigError("a record must be a file", expected="a path to the record file",
                          found=repr(str(path)), hint=f"e.g. local/cc/{DEFAULT_FILE}")
    if not path.exists() and not create:
        raise ConfigError("no record at this path", found=str(path),
                          hint="open it with create to start a new log")
    if not path.parent.is_dir():
        raise ConfigError("the record's folder does not exist", found=str(path.parent))
    # URL.create, not text: a path with '?' or '#' in it cannot become URL options.
    return URL.create("sqlite+pysqlite", database=str(path))


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "postgresql":
        return create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S,
                                                "application_name": "ccattest-record"})
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # We issue BEGIN ourselves: pysqlite's implicit BEGIN is deferred and comes late.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        # A foreign file must not run code from its schema (triggers, views) as ours.
        cursor.execute("PRAGMA trusted_schema = OFF")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")  # why: the module docstring
        # A record is appended to and read near its end: a small page cache serves that,
        # and SQLite's default (2 MiB a connection, times pooled connections, times every
        # record a site keeps) only fills with history, which long-running sites pay in RSS.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock at BEGIN: two deferred transactions that both read then
    # write would deadlock into SQLITE_BUSY; IMMEDIATE makes the second one wait its turn.
    if conn.get_execution_options().get(_WRITE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _prepare(conn: Connection, origin: str | None, create: bool, location: str) -> str:
    """Check (or make) this log's identity and bring its schema up to date."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
    tables = set(inspect(conn).get_table_names())
    if not tables:
        if not create:
            raise ConfigError(f"no record at {location}", hint="open it with create to "
                              "start a new log")
        migrations.create(conn)
        _migrate(conn, 0)
        conn.execute(insert(meta), [{"key": "format", "value": FORMAT},
                                    {"key": "format_version", "value": FORMAT_VERSION},
                                    {"key": "origin", "value": origin}])
        return str(origin)
    if not {"meta", "migrations"} <= tables:
        raise ConfigError(f"{location} is not a ccattest record",
                          expected=f"a {FORMAT} database",
                          found="tables " + ", ".join(sorted(tables)[:8]),
                          hint="give the record its own file or database")
    found = {row.key: row.value for row in conn.execute(select(meta.c.key, meta.c.value))}
    if (found.get("format"), found.get("format_version")) != (FORMAT, FORMAT_VERSION):
        raise ConfigError(f"{location} is not a ccattest record of this version",
                          expected=f"{FORMAT} {FORMAT_VERSION}",
                          found=f"{found.get('format')} {found.get('format_version')}")
    if origin is None:  # an auditor: the record says whose log it is
        origin = str(found.get("origin") or "")
    if found.get("origin") != origin:
        raise ConfigError(f"{location} is another log", expected=f"origin {origin!r}",
                          found=f"origin {found.get('origin')!r}",
                          hint="each site (and federation) keeps its own record")
    version = conn.execute(select(func.max(migrations.c.version))).scalar_one() or 0
    if version > MIGRATIONS[-1].version:
        raise ConfigError(f"{location} was written by a newer ccattest",
                          expected=f"schema version {MIGRATIONS[-1].version} or older",
                          found=f"version {version}", hint="upgrade ccattest")
    _migrate(conn, version)
    return origin


def _migrate(conn: Connection, version: int) -> None:
    for migration in MIGRATIONS:
        if migration.version > version:
            migration.apply(conn)
            conn.execute(insert(migrations).values(version=migration.version,
                                                   description=migration.description))


__all__ = [
    "DEFAULT_FILE",
    "MIGRATIONS",
    "Checkpoint",
    "Cosignature",
    "Migration",
    "RecordStore",
    "StoreError",
    "StoredEntry",
]
