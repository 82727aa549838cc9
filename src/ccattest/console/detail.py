"""What the site and job pages show beyond the matrix: one site's verdicts, reasons,
history and collateral, and one receipt checked the way `ccattest audit receipt verify`
checks it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import CCAttestError, ConfigError
from ..nvflare.kits import Kit
from ..record.receipt import verify_receipt
from ..timeutil import parse_instant
from .tally import entry_data
from .views import Federation

HISTORY = 50  # verdicts shown on a site's page, newest first
PAGE = 500


class NotFound(ConfigError):
    """A site or receipt this federation does not have (the API answers 404)."""


def _names(federation: Federation, view: Mapping[str, Any]) -> set[str]:
    names = set(view["sites"])
    for cell in view["matrix"]:
        names.update((cell["verifier"], cell["peer"]))
    return names


def _judge(federation: Federation, name: str, by: str | None) -> str | None:
    """Whose record tells this site's story: the server judges every client; the server
    itself is judged by its clients (the first with a record)."""
    if by is not None:
        return by
    server = federation.server
    if server is not None and server.name != name and federation.has_record(server):
        return server.name
    return next((kit.name for kit in federation.kits
                 if kit.name != name and federation.has_record(kit)), None)


def _verdicts(federation: Federation, judge: str, name: str) -> list[dict[str, Any]]:
    """The judge's newest verdicts about `name`, newest first, read a page at a time from
    the end of the record (verdicts are recorded on change: a site's history is short)."""
    kit = federation.kit(judge)
    if kit is None:
        raise NotFound(f"no site {judge!r} in this federation to read verdicts from")
    found: list[dict[str, Any]] = []
    with federation.record(kit) as store:
        end = store.size() if store is not None else 0
        while store is not None and end > 0 and len(found) < HISTORY:
            page = store.entries(0, end, kind="verdict", limit=PAGE, newest_first=True)
            for entry in page:
                data = entry_data(entry.body)  # None when unreadable: audit verify says why
                if isinstance(data, dict) and data.get("peer") == name:
                    found.append({"index": entry.index, "at": entry.at.isoformat(),
                                  "data": data})
            end = page[-1].index if len(page) == PAGE else 0
    return found[:HISTORY]


def _collateral(federation: Federation, kit: Kit, now: datetime) -> list[dict[str, Any]]:
    """What the site's verifier holds and until when (its status file's telemetry),
    soonest to expire first."""
    telemetry = (federation.status(kit).data or {}).get("telemetry")
    items = telemetry.get("collateral_expiry") if isinstance(telemetry, dict) else None
    shown = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            expires = parse_instant(str(item.get("not_after")))
        except CCAttestError:
            continue
        shown.append({"kind": str(item.get("kind")), "name": str(item.get("name")),
                      "not_after": expires.isoformat(),
                      "seconds_left": int((expires - now).total_seconds())})
    return sorted(shown, key=lambda item: item["seconds_left"])


def site_detail(federation: Federation, name: str, *, by: str | None = None,
                now: datetime) -> dict[str, Any]:
    view = federation.view()
    if name not in _names(federation, view):
        raise NotFound(f"no site {name!r} in this federation",
                       expected=", ".join(sorted(_names(federation, view))))
    site = view["sites"].get(name, {})
    judge = _judge(federation, name, by)
    verdicts = _verdicts(federation, judge, name) if judge is not None else []
    latest = None
    if verdicts:
        data = verdicts[0]["data"]
        latest = {"by": judge, "at": verdicts[0]["at"], "status": data.get("status"),
                  "policy": data.get("policy"), "failures": list(data.get("failures") or []),
                  "results": [r for r in data.get("results") or [] if isinstance(r, dict)]}
    kit = federation.kit(name)
    return {
        "name": name, "role": site.get("role", "unknown"),
        "state": site.get("state", "no kit in this folder"),
        "judged_by": [c for c in view["matrix"] if c["peer"] == name],
        "excluded_by": sorted(view["excluded"].get(name, {})),
        "latest": latest,
        "history": [{"at": v["at"], "by": judge, "status": v["data"].get("status"),
                     "context": v["data"].get("context"),
                     "failures": list(v["data"].get("failures") or [])}
                    for v in verdicts],
        "collateral": _collateral(federation, kit, now) if kit is not None else [],
    }


def _filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:80] or "job"


def receipt_entry(federation: Federation, index: int) -> dict[str, Any]:
    found = federation.events(kind="receipt", after=index - 1, limit=1)
    if not found or found[0]["index"] != index or not isinstance(found[0]["data"], dict) \
            or not isinstance(found[0]["data"].get("token"), str):
        raise NotFound(f"no receipt at index {index} of the server's record",
                       hint="GET /api/v1/receipts lists them")
    return found[0]


def receipt_file(entry: Mapping[str, Any]) -> tuple[str, str]:
    data = entry["data"]
    return data["token"], f"receipt-{_filename(str(data.get('job')))}-" \
                          f"{_filename(str(data.get('phase')))}.jwt"


def check_receipt(federation: Federation, index: int, *, now: datetime) -> dict[str, Any]:
    token, _ = receipt_file(receipt_entry(federation, index))
    keys = federation.jwks()
    if keys is None:
        raise NotFound("no federation key set in these kits",
                       hint="provisioning writes local/cc/federation.jwks.json")
    report = verify_receipt(token, keys, now=now)
    return {"verified": True, "job": report.job, "phase": report.phase,
            "issuer": report.issuer, "issued_at": report.issued_at.isoformat(),
            "participants": list(report.participants),
            "checkpoint_size": report.checkpoint_size, "cosigners": list(report.cosigners),
            "missing_cosigners": list(report.missing_cosigners), "entries": report.entries,
            "statuses": dict(report.statuses)}
