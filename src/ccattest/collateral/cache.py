"""A cache of collateral (vendor certificates, CRLs, ...) keyed by what it is and for whom.

An item is addressed by a *kind* ("snp.vcek", "snp.cert_chain", "snp.crl", ...) and a tuple
of key parts (for a VCEK: product, hwID, TCB). It is served only while it is valid at the
time the caller gives: the validity window comes from the bytes themselves (a certificate's
notAfter, a CRL's nextUpdate, the earliest notAfter of a chain), never from a clock here.

Each kind has a checker, registered by the module that fetches it, that parses the bytes,
checks they belong under the key, and returns their validity window. Every write goes
through it, so the cache never holds bytes that do not parse.

Items live in memory and, when a directory is given, one file per item: the file name is a
SHA-256 of the kind and key (keys are never joined into paths), written to a uniquely named
file in the same directory and moved into place with os.replace, so that readers never see
half a file. Writing files is collateral management; verification never does it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import importlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CCAttestError, CollateralUnavailable, ConfigError
from ..timeutil import require_aware

if TYPE_CHECKING:
    from ..mesh.telemetry import Telemetry

log = logging.getLogger(__name__)

Key = tuple[str, ...]
ITEM_FORMAT = "ccattest-collateral-item/1"
MAX_ITEM_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Window:
    """When an item may be used: from not_before to not_after, both inclusive."""

    not_before: datetime
    not_after: datetime


Checker = Callable[[Key, bytes], Window]
_CHECKERS: dict[str, Checker] = {}
# Kinds whose checkers a module registers when imported; loaded on first use, so that a cache
# read from disk or from a bundle understands them without the caller importing the fetcher.
_PROVIDERS = {"snp.": "ccattest.platforms.snp.kds", "tdx.": "ccattest.platforms.tdx.pcs",
              "nvgpu.rim": "ccattest.platforms.nvgpu.rimservice",
              "nvgpu.ocsp": "ccattest.platforms.nvgpu.ocsp", "maa.": "ccattest.platforms.azure.maa"}


def register_kind(kind: str, checker: Checker) -> None:
    """Declare a kind of collateral: `checker(key, data)` returns the item's validity window
    or raises a CCAttestError when the bytes do not parse or do not belong under the key."""
    _CHECKERS[kind] = checker


def _checker(kind: str) -> Checker:
    if kind not in _CHECKERS:
        for prefix, module in _PROVIDERS.items():
            if kind.startswith(prefix):
                importlib.import_module(module)
    checker = _CHECKERS.get(kind)
    if checker is None:
        raise ConfigError("unknown kind of collateral", expected=f"one of {sorted(_CHECKERS)}",
                          found=repr(kind))
    return checker


def check_item(kind: str, key: Key, data: bytes) -> Window:
    """The validity window of `data` as an item of `kind` under `key`; CollateralUnavailable
    if it does not parse or belongs elsewhere."""
    checker = _checker(kind)
    try:
        return checker(key, bytes(data))
    except CCAttestError as exc:
        found = exc.found if exc.found not in (None, "") else preview(data)
        raise CollateralUnavailable(f"not a valid {kind} item: {exc.message}",
                                    expected=exc.expected or f"a well-formed {kind} item",
                                    found=found, hint=exc.hint) from None


def preview(data: bytes) -> str:
    """A short description of bytes for error messages."""
    head = bytes(data[:16]).hex()
    return f"{len(data)} bytes" + (f" starting {head}" if head else "")


def normalize_key(key: Iterable[str]) -> Key:
    if isinstance(key, str | bytes):
        raise ConfigError("collateral key must be a sequence of strings",
                          expected="tuple of str", found=type(key).__name__)
    parts = tuple(key)
    if not all(isinstance(part, str) for part in parts):
        raise ConfigError("collateral key parts must be strings", expected="tuple of str",
                          found=[type(part).__name__ for part in parts])
    return parts


def file_name(kind: str, key: Key) -> str:
    """The item's file name: a hash, so that no key part ever reaches a path."""
    encoded = json.dumps([kind, *key], separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest() + ".json"


@dataclass(frozen=True)
class CachedItem:
    """One piece of collateral and where and when it came from."""

    kind: str
    key: Key
    data: bytes
    source: str  # the URL it was fetched from
    fetched_at: datetime
    window: Window

    @property
    def not_before(self) -> datetime:
        return self.window.not_before

    @property
    def not_after(self) -> datetime:
        """End of validity: VCEK notAfter, CRL nextUpdate, earliest notAfter of a chain."""
        return self.window.not_after

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def valid_at(self, at: datetime) -> bool:
        return self.window.not_before <= at <= self.window.not_after

    def metadata(self) -> dict[str, Any]:
        """Everything but the bytes, JSON-ready (bundle manifests, item files, --json)."""
        return {
            "kind": self.kind, "key": list(self.key), "source": self.source,
            "fetched_at": self.fetched_at.isoformat(),
            "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
            "sha256": self.sha256, "size": len(self.data),
        }


def make_item(kind: str, key: Iterable[str], data: bytes, *, source: str,
              fetched_at: datetime) -> CachedItem:
    """A checked item: the only way bytes become a CachedItem."""
    parts = normalize_key(key)
    fetched_at = require_aware(fetched_at, "fetched_at")
    if not isinstance(source, str):
        raise ConfigError("collateral source must be a string", found=type(source).__name__)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ConfigError("collateral must be bytes", found=type(data).__name__)
    data = bytes(data)
    if len(data) > MAX_ITEM_BYTES:
        raise CollateralUnavailable(f"{kind} item too large", expected=f"<= {MAX_ITEM_BYTES}",
                                    found=f"{len(data)} bytes")
    window = check_item(kind, parts, data)
    return CachedItem(kind, parts, data, source, fetched_at, window)


class CollateralCache:
    """Collateral in memory and, optionally, in `directory` (one file per item). Thread-safe:
    the in-memory map is guarded by a lock; files are replaced atomically."""

    def __init__(self, directory: Path | None = None, *,
                 telemetry: Telemetry | None = None) -> None:
        self.directory = None if directory is None else Path(directory)
        self._items: dict[tuple[str, Key], CachedItem] = {}
        self._lock = threading.Lock()
        self.telemetry = telemetry  # told of every lookup and of every item held

    def get(self, kind: str, key: Iterable[str], at: datetime) -> CachedItem | None:
        """The item for (kind, key) if one is valid at `at`, else None."""
        at = require_aware(at, "cache lookup time")
        parts = normalize_key(key)
        with self._lock:
            item = self._items.get((kind, parts))
        if (item is None or not item.valid_at(at)) and self.directory is not None:
            stored = self._read(kind, parts)
            if stored is not None:
                item = self._remember(stored)
        found = item if item is not None and item.valid_at(at) else None
        if self.telemetry is not None:
            self.telemetry.collateral_lookup(kind, hit=found is not None)
        return found

    def put(self, kind: str, key: Iterable[str], data: bytes, *, source: str,
            fetched_at: datetime) -> CachedItem:
        """Check and store one item (in memory, and on disk when the cache has a directory)."""
        item = make_item(kind, key, data, source=source, fetched_at=fetched_at)
        if self.directory is not None:
            self._write(item)
        return self._remember(item)

    def items(self) -> list[CachedItem]:
        """Every item held, valid or not, memory first then disk, sorted by kind and key."""
        if self.directory is not None:
            for path in self._item_files():
                stored = self._load(path)
                if stored is not None:
                    self._remember(stored, replace=False)
        with self._lock:
            return sorted(self._items.values(), key=lambda item: (item.kind, item.key))

    # --- memory -----------------------------------------------------------------------------

    def _remember(self, item: CachedItem, *, replace: bool = True) -> CachedItem:
        with self._lock:
            if replace:
                self._items[(item.kind, item.key)] = item
            kept = self._items.setdefault((item.kind, item.key), item)
        if self.telemetry is not None:
            self.telemetry.collateral_held(kept.kind, kept.key, kept.not_after)
        return kept

    # --- disk ---------------------------------------------------------------------------------

    def _ensure_directory(self) -> Path:
        assert self.directory is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("cannot create the collateral cache directory",
                              expected="a writable directory",
                              found=f"{self.directory}: {exc.strerror or exc}") from None
        return self.directory

    def _write(self, item: CachedItem) -> None:
        directory = self._ensure_directory()
        body = json.dumps({"format": ITEM_FORMAT, **item.metadata(),
                           "data": base64.b64encode(item.data).decode("ascii")},
                          indent=1).encode("utf-8")
        target = directory / file_name(item.kind, item.key)
        try:
            atomic_write(target, body)
        except OSError as exc:
            raise ConfigError("cannot write to the collateral cache",
                              expected="a writable directory",
                              found=f"{target}: {exc.strerror or exc}") from None

    def _item_files(self) -> list[Path]:
        assert self.directory is not None
        try:
            return sorted(path for path in self.directory.glob("*.json")
                          if not path.name.startswith("."))
        except OSError:
            return []

    def _read(self, kind: str, key: Key) -> CachedItem | None:
        assert self.directory is not None
        item = self._load(self.directory / file_name(kind, key))
        # A hash names the file; the contents must still be the item asked for.
        return item if item is not None and (item.kind, item.key) == (kind, key) else None

    def _load(self, path: Path) -> CachedItem | None:
        """An item file, checked like any new item; an unreadable one is a miss (logged),
        so the next fetch replaces it."""
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        try:
            return _item_from_file(raw)
        except CCAttestError as exc:
            log.warning("ignoring collateral cache file %s: %s", path, exc)
            return None


def atomic_write(target: Path, body: bytes) -> None:
    """Write `body` to a uniquely named file beside `target`, then move it into place."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.stem[:16]}.", suffix=".tmp",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(body)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _item_from_file(raw: bytes) -> CachedItem:
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError("cache file is not JSON", found=str(exc)) from None
    if not isinstance(record, dict) or record.get("format") != ITEM_FORMAT:
        raise ConfigError("not a collateral cache file", expected=ITEM_FORMAT)
    item = item_from_record(record, decode_data(record.get("data")))
    if item.sha256 != record.get("sha256"):
        raise ConfigError("cache file digest does not match its data",
                          expected=record.get("sha256"), found=item.sha256)
    return item


def decode_data(value: object) -> bytes:
    if not isinstance(value, str):
        raise ConfigError("item data must be base64 text", found=type(value).__name__)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("item data is not base64", found=str(exc)) from None


def item_from_record(record: dict[str, Any], data: bytes) -> CachedItem:
    """Rebuild a checked item from its metadata (item file or bundle manifest) and bytes.
    The validity window is recomputed from the bytes and must agree with the record."""
    kind, key, source = record.get("kind"), record.get("key"), record.get("source")
    if not isinstance(kind, str) or not isinstance(key, list) or not isinstance(source, str):
        raise ConfigError("collateral record lacks kind, key or source",
                          expected="kind: str, key: [str], source: str",
                          found={name: type(record.get(name)).__name__
                                 for name in ("kind", "key", "source")})
    item = make_item(kind, key, data, source=source,
                     fetched_at=_instant(record.get("fetched_at"), "fetched_at"))
    for name in ("not_before", "not_after"):
        stated = _instant(record.get(name), name)
        if stated != getattr(item, name):
            raise ConfigError(f"record's {name} does not match its data",
                              expected=getattr(item, name).isoformat(),
                              found=stated.isoformat())
    return item


def _instant(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be an ISO 8601 string", found=type(value).__name__)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name} is not an ISO 8601 time", found=repr(value)) from None
    return require_aware(parsed, name)
