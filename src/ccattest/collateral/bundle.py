"""Offline collateral bundles: export a cache at a connected site, import it at an air-gapped
one; and prefill a cache for a list of SNP reports.

A bundle is ONE JSON document (UTF-8):

    {"format": "ccattest-collateral-bundle/1",
     "created_at": "2026-11-26T12:00:00+00:00",
     "manifest": [{"kind": "snp.vcek", "key": ["Milan", "<hwid hex>", "blSPL=3,..."],
                   "source": "https://kdsintf.amd.com/vcek/v1/...",
                   "fetched_at": ..., "not_before": ..., "not_after": ...,
                   "sha256": "<hex>", "size": 1360}, ...],
     "blobs": {"<sha256 hex>": "<base64>", ...}}

Why JSON with base64 and not a tar.gz: collateral is small (kilobytes per item), so the
base64 overhead does not matter, while a JSON document is parsed by the standard library in
one bounded step with no archive members to extract: no path traversal, links, device files
or decompression bombs to defend against, and nothing is written while reading. The manifest
comes first and is plain text, so an operator can read what a bundle carries (sources,
validity) before carrying it across an air gap, and diff two bundles.

Import checks everything before it stores anything: each blob's SHA-256 must be the one the
manifest names, every item must parse as its kind and belong under its key, and the validity
the manifest states must be the one the bytes carry. The digests catch corruption and
careless edits; they do not make a bundle authentic (anyone can recompute them). Authenticity
comes at verification time, from the signatures up to the pinned vendor roots.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CCAttestError, ConfigError
from ..platforms.snp.abi import SnpReport, parse_report
from ..timeutil import require_aware, utcnow
from .cache import CachedItem, CollateralCache, atomic_write, decode_data, item_from_record

if TYPE_CHECKING:
    from ..platforms.snp.kds import KdsClient

BUNDLE_FORMAT = "ccattest-collateral-bundle/1"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_ITEMS = 100_000


# --- writing ----------------------------------------------------------------------------------

def dump_bundle(items: Iterable[CachedItem], *, created_at: datetime) -> bytes:
    """The bundle document for `items`."""
    items = list(items)
    document = {
        "format": BUNDLE_FORMAT,
        "created_at": require_aware(created_at, "created_at").isoformat(),
        "manifest": [item.metadata() for item in items],
        "blobs": {item.sha256: _b64(item.data) for item in items},
    }
    return json.dumps(document, indent=1).encode("utf-8")


def select_items(cache: CollateralCache, *, kinds: Iterable[str] | None = None,
                 valid_at: datetime | None = None) -> list[CachedItem]:
    """The cache's items, only those of `kinds` if given, only those valid at `valid_at` if
    given (to leave expired items behind)."""
    wanted = None if kinds is None else frozenset(kinds)
    at = None if valid_at is None else require_aware(valid_at, "valid_at")
    return [item for item in cache.items()
            if (wanted is None or item.kind in wanted) and (at is None or item.valid_at(at))]


def export_bundle(cache: CollateralCache, path: Path, *, kinds: Iterable[str] | None = None,
                  valid_at: datetime | None = None,
                  created_at: datetime | None = None) -> list[CachedItem]:
    """Write the cache (or the subset select_items picks) to one bundle file, atomically.
    Returns the items written."""
    items = select_items(cache, kinds=kinds, valid_at=valid_at)
    body = dump_bundle(items, created_at=created_at or utcnow())
    try:
        atomic_write(Path(path), body)
    except OSError as exc:
        raise ConfigError("cannot write the collateral bundle", expected="a writable path",
                          found=f"{path}: {exc.strerror or exc}") from None
    return items


# --- reading ----------------------------------------------------------------------------------

def load_bundle(data: bytes) -> list[CachedItem]:
    """Parse and check a bundle; every item checked, or ConfigError naming the first bad one."""
    document = _document(data)
    manifest, blobs = _parts(document)
    digests = {digest: _blob(digest, value) for digest, value in blobs.items()}
    items: list[CachedItem] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for index, entry in enumerate(manifest):
        item = _item(index, entry, digests)
        if (item.kind, item.key) in seen:
            raise ConfigError(f"bundle names item {index} twice",
                              found=f"{item.kind} {'/'.join(item.key)}")
        seen.add((item.kind, item.key))
        items.append(item)
    unused = set(digests) - {item.sha256 for item in items}
    if unused:
        raise ConfigError("bundle carries blobs its manifest does not name",
                          expected="one blob per manifest digest", found=sorted(unused))
    return items


def read_bundle(path: Path) -> list[CachedItem]:
    """load_bundle for a file, bounded in size."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise ConfigError("collateral bundle too large",
                              expected=f"at most {MAX_BUNDLE_BYTES} bytes", found=f"{size} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError("cannot read the collateral bundle", expected="a readable file",
                          found=f"{path}: {exc.strerror or exc}") from None
    return load_bundle(data)


def import_bundle(cache: CollateralCache, path: Path) -> list[CachedItem]:
    """Check the whole bundle, then store its items in `cache` (all or none). Returns the
    items stored, expired ones included (the cache serves each only while it is valid)."""
    items = read_bundle(path)
    return [cache.put(item.kind, item.key, item.data, source=item.source,
                      fetched_at=item.fetched_at) for item in items]


def _document(data: bytes) -> dict[str, Any]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ConfigError("collateral bundle must be bytes", found=type(data).__name__)
    if len(data) > MAX_BUNDLE_BYTES:
        raise ConfigError("collateral bundle too large", expected=f"at most {MAX_BUNDLE_BYTES} "
                          "bytes", found=f"{len(data)} bytes")
    try:
        document = json.loads(bytes(data))
    except (ValueError, RecursionError) as exc:
        raise ConfigError("collateral bundle is not JSON", expected=BUNDLE_FORMAT,
                          found=str(exc)) from None
    found = document.get("format") if isinstance(document, dict) else type(document).__name__
    if found != BUNDLE_FORMAT:
        raise ConfigError("not a collateral bundle", expected=f"format {BUNDLE_FORMAT!r}",
                          found=repr(found))
    return document


def _parts(document: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    manifest, blobs = document.get("manifest"), document.get("blobs")
    if not isinstance(manifest, list) or not isinstance(blobs, dict):
        raise ConfigError("collateral bundle lacks its manifest or blobs",
                          expected="manifest: list, blobs: object",
                          found=f"manifest: {type(manifest).__name__}, "
                                f"blobs: {type(blobs).__name__}")
    if len(manifest) > MAX_ITEMS:
        raise ConfigError("collateral bundle has too many items", expected=f"<= {MAX_ITEMS}",
                          found=len(manifest))
    return manifest, blobs


def _blob(digest: str, value: object) -> bytes:
    try:
        data = decode_data(value)
    except ConfigError as exc:
        raise ConfigError(f"bundle blob {digest[:16]} is not base64", found=exc.found) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ConfigError("bundle blob does not match its SHA-256 (corrupted or tampered)",
                          expected=digest, found=actual)
    return data


def _item(index: int, entry: object, digests: dict[str, bytes]) -> CachedItem:
    if not isinstance(entry, dict):
        raise ConfigError(f"bundle item {index} is not an object", found=type(entry).__name__)
    digest = entry.get("sha256")
    data = digests.get(digest) if isinstance(digest, str) else None
    if data is None:
        raise ConfigError(f"bundle item {index} has no blob",
                          expected="a sha256 naming one of the blobs", found=repr(digest))
    if entry.get("size", len(data)) != len(data):
        raise ConfigError(f"bundle item {index} has the wrong size",
                          expected=entry.get("size"), found=len(data))
    try:
        return item_from_record(entry, data)
    except CCAttestError as exc:
        raise ConfigError(f"bundle item {index} ({entry.get('kind')!r}) is refused: "
                          f"{exc.message}", expected=exc.expected, found=exc.found) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- prefilling ---------------------------------------------------------------------------------

def fetch_for_reports(client: KdsClient, reports: Iterable[SnpReport | bytes], *,
                      product: str | None = None, crl: bool = False,
                      at: datetime | None = None) -> int:
    """Put into the client's cache what each report needs from AMD KDS (VCEK, chain and, with
    `crl`, the CRL), fetching only what is not cached yet. Reports may be raw bytes.
    `product` names the product of v2 reports, which do not carry it. Returns the number of
    distinct items the reports need, all now cached. Stops at the first failure."""
    from ..platforms.snp.kds import requests_for

    if client.cache is None:
        raise ConfigError("fetching for reports needs a cache",
                          hint="create the KdsClient with cache=CollateralCache(directory)")
    needed = {}
    for report in reports:
        parsed = report if isinstance(report, SnpReport) else parse_report(report)
        for request in requests_for(parsed, product=product, crl=crl):
            needed.setdefault((request.kind, request.key), request)
    for request in needed.values():
        client.fetch(request, at=at)
    return len(needed)
