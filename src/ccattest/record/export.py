"""A record as one self-contained file an auditor can be handed: JSON lines.

    {"format": "ccattest-record-export", "version": 1, "origin": O, "size": N}
    {"index": 0, "entry": "<canonical entry bytes, as UTF-8 text>"}     (N lines, in order)
    {"checkpoint": "<signed note>", "cosignatures": ["— witness base64", ...]}

Entries travel as their exact canonical bytes (a JSON string holding JSON), so anyone
recomputes each leaf hash from the file alone; leaf hashes and roots are not exported, they
are what an auditor recomputes. `read_export` is strict, because the file comes from
whoever kept the record: bounded sizes, one shape per line, indices dense from 0, the
header's size equal to the entries that follow. Bytes that cannot be an export are
MalformedEvidence naming the line; whether the entries match their checkpoints is the
audit's question (record/audit.py), answered with VerificationFailed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ConfigError, MalformedEvidence
from . import merkle, note
from .audit import RecordSource
from .entry import MAX_ENTRY_BYTES, decode
from .store import Cosignature, StoredEntry

FORMAT = "ccattest-record-export"
VERSION = 1
MAX_EXPORT_BYTES = 4 << 30
# An entry line holds the entry's text as a JSON string: its quotes and backslashes are
# escaped (it has no raw control characters: it is canonical JSON), so at most twice it.
MAX_LINE_BYTES = 2 * MAX_ENTRY_BYTES + (1 << 16)
HEADER_KEYS = frozenset({"format", "version", "origin", "size"})
ENTRY_KEYS = frozenset({"index", "entry"})
CHECKPOINT_KEYS = frozenset({"checkpoint", "cosignatures"})


@dataclass(frozen=True)
class ExportedCheckpoint:
    size: int
    root: bytes
    note: str


@dataclass
class ExportedRecord:
    """An export file read back: a RecordSource, so `audit` checks it like a database."""

    origin: str
    size: int
    _entries: list[StoredEntry] = field(default_factory=list, repr=False)
    _checkpoints: list[ExportedCheckpoint] = field(default_factory=list, repr=False)
    _cosignatures: dict[int, list[Cosignature]] = field(default_factory=dict, repr=False)

    def entries(self) -> list[StoredEntry]:
        return list(self._entries)

    def checkpoints(self) -> list[ExportedCheckpoint]:
        return list(self._checkpoints)

    def cosignatures(self, size: int) -> list[Cosignature]:
        return list(self._cosignatures.get(size, []))


def write_export(source: RecordSource, path: Path | str, *, overwrite: bool = False) -> int:
    """Write `source` to `path`; returns the number of entries. The file appears whole or
    not at all (written beside, then renamed); an existing file is kept unless `overwrite`.
    Checkpoints are read before entries, so an export of a log that is being appended to
    holds every entry its checkpoints name, and a record whose tail was dropped exports a
    checkpoint that says so."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists", hint="choose another name, or overwrite it "
                          "on purpose (--force)")
    checkpoints = sorted(source.checkpoints(), key=lambda c: c.size)
    stored = list(source.entries())
    size = len(stored)
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}", found=exc.strerror) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            _line(handle, {"format": FORMAT, "version": VERSION, "origin": source.origin,
                           "size": size})
            for entry in stored:
                _line(handle, {"index": entry.index, "entry": _text(entry)})
            for checkpoint in checkpoints:
                lines = [c.line.rstrip("\n") for c in source.cosignatures(checkpoint.size)]
                _line(handle, {"checkpoint": checkpoint.note, "cosignatures": lines})
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # fails if the name was taken meanwhile
            os.unlink(temporary)
    except FileExistsError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ConfigError(f"{target} exists", hint="choose another name") from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ConfigError(f"cannot write {target}", found=exc.strerror) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return size


def _text(entry: StoredEntry) -> str:
    try:
        return entry.body.decode("utf-8")
    except UnicodeDecodeError:  # only a damaged record holds such bytes: nothing to export
        raise MalformedEvidence(f"entry {entry.index} is not UTF-8 text: it cannot be exported",
                                hint="`ccattest audit verify` says what is wrong") from None


def _line(handle: BinaryIO, value: dict[str, Any]) -> None:
    # ensure_ascii=False: an entry's text stays the exact UTF-8 it was hashed as.
    handle.write(json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                 .encode("utf-8") + b"\n")


def is_export(path: Path | str) -> bool:
    """Whether a file looks like an export (its first byte opens a JSON object); a SQLite
    file starts "SQLite format 3"."""
    try:
        with open(path, "rb") as handle:
            return handle.read(1) == b"{"
    except OSError:
        return False


def read_export(path: Path | str) -> ExportedRecord:
    """An export file, read whole and checked line by line (module docstring)."""
    target = Path(path)
    try:
        handle = open(target, "rb")  # noqa: SIM115 - closed below, errors are typed
    except FileNotFoundError:
        raise ConfigError(f"export not found: {target}") from None
    except IsADirectoryError:
        raise ConfigError(f"{target} is a folder, not an export file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {target}", found=exc.strerror) from None
    with handle:
        try:
            total = os.fstat(handle.fileno()).st_size
            if total > MAX_EXPORT_BYTES:
                raise MalformedEvidence("export file too large",
                                        expected=f"at most {MAX_EXPORT_BYTES} bytes",
                                        found=f"{total} bytes")
            return _Reader(handle).read()
        except OSError as exc:
            raise ConfigError(f"cannot read {target}", found=exc.strerror) from None


class _Reader:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.number = 0  # the line being read, from 1
        self.read_bytes = 0

    def fail(self, message: str, **details: Any) -> MalformedEvidence:
        return MalformedEvidence(f"export line {self.number}: {message}", **details)

    def next_object(self) -> dict[str, Any] | None:
        raw = self.handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self.number += 1
        self.read_bytes += len(raw)
        if self.read_bytes > MAX_EXPORT_BYTES:  # the file grew while it was read
            raise self.fail("the export is too large", expected=f"at most {MAX_EXPORT_BYTES}"
                            " bytes")
        if len(raw) > MAX_LINE_BYTES:
            raise self.fail("line too long", expected=f"at most {MAX_LINE_BYTES} bytes")
        if not raw.endswith(b"\n"):
            raise self.fail("the file ends inside a line", hint="the export was cut short")
        try:
            value = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys,
                               parse_float=_no_float, parse_constant=_no_float)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self.fail("not a JSON line", found=str(exc)[:120]) from None
        if not isinstance(value, dict):
            raise self.fail("not a JSON object", found=type(value).__name__)
        return value

    def read(self) -> ExportedRecord:
        header = self.next_object()
        if header is None:
            raise MalformedEvidence("the export is empty", expected="a header line")
        if set(header) != HEADER_KEYS or header["format"] != FORMAT:
            raise self.fail("not a ccattest record export header",
                            expected=f'{{"format": "{FORMAT}", "version", "origin", "size"}}')
        if not _integer(header["version"]) or header["version"] != VERSION:
            raise self.fail("unsupported export version", expected=VERSION,
                            found=repr(header["version"]))
        origin, size = header["origin"], header["size"]
        if not isinstance(origin, str) or not note.valid_name(origin):
            raise self.fail("the origin is not a log name", found=repr(origin)[:80])
        if not _integer(size) or not 0 <= size <= merkle.MAX_SIZE:
            raise self.fail("the size is not a count of entries", found=repr(size)[:40])
        record = ExportedRecord(origin, size)
        line = self.next_object()
        while line is not None and set(line) == ENTRY_KEYS:
            record._entries.append(self.entry(line, len(record._entries)))
            line = self.next_object()
        if len(record._entries) != size:
            raise MalformedEvidence(f"the export's header says {size} entries, the file "
                                    f"holds {len(record._entries)}",
                                    hint="the export was cut short or entries were removed")
        while line is not None:
            self.checkpoint(line, record)
            line = self.next_object()
        return record

    def entry(self, line: dict[str, Any], expected: int) -> StoredEntry:
        index, text = line["index"], line["entry"]
        if not _integer(index) or index != expected:
            raise self.fail("entry indices must be dense from 0", expected=expected,
                            found=repr(index)[:40])
        if not isinstance(text, str):
            raise self.fail("an entry is a string of its canonical bytes",
                            found=type(text).__name__)
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
            raise self.fail(f"entry {index} is not UTF-8 text") from None
        try:
            entry = decode(body)
        except MalformedEvidence as error:
            raise self.fail(f"entry {index}: {error.message}", found=error.found,
                            expected=error.expected) from None
        return StoredEntry(index, entry.site, entry.kind, entry.at, body,
                           merkle.leaf_hash(body))

    def checkpoint(self, line: dict[str, Any], record: ExportedRecord) -> None:
        if set(line) != CHECKPOINT_KEYS:
            raise self.fail("neither an entry nor a checkpoint line",
                            expected="index and entry, or checkpoint and cosignatures "
                                     "(entries come before checkpoints)",
                            found=", ".join(sorted(line))[:120])
        text, lines = line["checkpoint"], line["cosignatures"]
        if not isinstance(text, str) or not isinstance(lines, list) or not all(
                isinstance(item, str) for item in lines):
            raise self.fail("a checkpoint is a note and a list of cosignature lines")
        try:
            data = text.encode("utf-8")
            head = note.Checkpoint.parse(note.parse(data).text)
        except (MalformedEvidence, UnicodeEncodeError) as error:
            raise self.fail("the checkpoint is not a signed checkpoint note",
                            found=getattr(error, "message", "not UTF-8")) from None
        if record._checkpoints and head.size <= record._checkpoints[-1].size:
            raise self.fail("checkpoints must be in increasing size, one per size",
                            expected=f"a size above {record._checkpoints[-1].size}",
                            found=head.size)
        record._checkpoints.append(ExportedCheckpoint(head.size, head.root, text))
        cosignatures: list[Cosignature] = []
        for position, item in enumerate(lines, 1):
            cosignatures.append(self.cosignature(data, head.size, item, position,
                                                 cosignatures))
        if cosignatures:
            record._cosignatures[head.size] = cosignatures

    def cosignature(self, data: bytes, size: int, item: str, position: int,
                    earlier: list[Cosignature]) -> Cosignature:
        what = f"cosignature {position}"
        if "\n" in item:
            raise self.fail(f"{what} is more than one line")
        try:
            # The line read as the last signature of the note it was stored beside.
            signed = note.parse(data + item.encode("utf-8") + b"\n").signatures[-1]
            timestamp = note.cosignature_timestamp(signed.signature)
        except (MalformedEvidence, UnicodeEncodeError) as error:
            raise self.fail(f"{what} is not a cosignature line",
                            found=getattr(error, "message", "not UTF-8")) from None
        if any(c.witness == signed.name for c in earlier):
            raise self.fail(f"{what} repeats the witness {signed.name}",
                            hint="a record keeps one cosignature per witness and checkpoint")
        return Cosignature(size, signed.name, item, timestamp)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):  # two readings of one line: refuse, as notes do
        raise ValueError("an object repeats a key")
    return value


def _no_float(text: str) -> Any:
    raise ValueError(f"no floats in an export, found {text[:20]}")


__all__ = ["FORMAT", "MAX_EXPORT_BYTES", "MAX_LINE_BYTES", "VERSION", "ExportedCheckpoint",
           "ExportedRecord", "is_export", "read_export", "write_export"]
