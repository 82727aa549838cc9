"""What the `audit` commands share: opening a record (a database or an export file) and
reading the federation's key set. Imported by the commands when they run."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MalformedEvidence, VerificationFailed
from .common import read_file

if TYPE_CHECKING:
    from ..record import note
    from ..record.audit import RecordSource
    from ..record.keys import NoteKeys
    from ..record.store import StoredEntry


@contextmanager
def open_record(name: str) -> Iterator[RecordSource]:
    """A site's record by any name `audit verify` takes (a database URL, a file or a site's
    folder), or an export file: a file whose first byte is `{` (SQLite's start "SQLite")."""
    from ..record.export import is_export, read_export
    from ..record.log import locate
    from ..record.store import RecordStore

    if "://" not in name and Path(name).is_file() and is_export(name):
        yield read_export(name)
        return
    with RecordStore.open(locate(name), origin=None, create=False) as store:
        yield store


def read_jwks(path: Path) -> NoteKeys:
    """The record keys (logs and witnesses) of a federation's JWK Set file."""
    from ..record.keys import note_keys

    try:
        document = json.loads(read_file(path, "key set"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ConfigError(f"{path} is not a JWK Set", expected="a JSON object with a "
                          '"keys" list', hint="pass the federation\'s federation.jwks.json"
                          ) from None
    return note_keys(document)


def select_entries(source: RecordSource, *, site: str | None, kind: str | None,
                   since: str | None) -> list[tuple[StoredEntry, Any, bool]]:
    """The entries `audit log` shows, each with its data and whether it decoded (a damaged
    record still lists; `audit verify` says what is wrong)."""
    from ..record.entry import KINDS, decode
    from ..record.store import RecordStore
    from ..timeutil import parse_instant

    if kind is not None and kind not in KINDS:
        close = difflib.get_close_matches(kind, sorted(KINDS), n=1)
        raise ConfigError(f"unknown entry kind {kind!r}"
                          + (f": did you mean {close[0]!r}?" if close else ""),
                          expected="one of " + ", ".join(sorted(KINDS)))
    after = parse_instant(since) if since else None
    if isinstance(source, RecordStore):  # let the database filter (it has the indexes)
        rows = source.entries(site=site, kind=kind, since=after)
    else:
        rows = [row for row in source.entries()
                if (site is None or row.site == site) and (kind is None or row.kind == kind)
                and (after is None or row.at >= after)]
    shown = []
    for row in rows:
        try:
            shown.append((row, decode(row.body).data, True))
        except MalformedEvidence:
            shown.append((row, None, False))
    return shown


def kept_checkpoint(path: Path, origin: str, keys: NoteKeys | None) -> note.Checkpoint:
    """A signed checkpoint someone kept, of the log `origin`; with the key set, signed by
    that log's key (a checkpoint nobody can vouch for proves nothing: exit 2, not 1)."""
    from ..record import note

    data = read_file(path, "checkpoint")
    head = note.Checkpoint.parse(note.parse(data).text)
    if head.origin != origin:
        raise ConfigError("the kept checkpoint is of another log", expected=origin,
                          found=head.origin)
    if keys is not None:
        try:
            note.open_checkpoint(data, keys.log(origin))
        except VerificationFailed as error:
            raise ConfigError("the kept checkpoint is not signed by the log's key",
                              found=error.message) from None
    return head
