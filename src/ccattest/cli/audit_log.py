"""`ccattest audit log`'s view of entries: one header line per entry and a short summary
built from the fields docs/ARCHITECTURE.md documents per kind ("The record"), wrapped to
the terminal. Long hex is shortened here only; `--json` prints every value whole.

Entries come from whoever kept the record, so any shape must print: a summary that does not
fit its kind's documented fields falls back to the list of keys the data holds.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..text import human

INDENT = "    "
_HEX = re.compile(r"\A[0-9a-fA-F]{16,}\Z")  # digests, round ids: 8 digits tell them apart


def short(value: Any) -> Any:
    """The value with every long hex string cut to its first 8 digits and an ellipsis."""
    if isinstance(value, str):
        return value[:8] + "…" if _HEX.match(value) else value
    if isinstance(value, Mapping):
        return {key: short(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [short(item) for item in value]
    return value


def words(value: Any) -> str:
    return human(short(value))


def instant(at: datetime) -> str:
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def entry_lines(index: int, at: datetime, kind: str, site: str, data: Any,
                width: int, *, readable: bool = True) -> list[str]:
    """`#index  time  kind  site`, then the summary indented, every line within width."""
    width = max(width, 40)
    # A header too long for the line (a long site name) goes on indented less than the
    # summary, so the two never read as one.
    head = textwrap.wrap(f"#{index}  {instant(at)}  {kind}  {site}", width=width,
                         subsequent_indent="  ", break_on_hyphens=False)
    text = summary(kind, data) if readable else "(not a canonical entry: see audit verify)"
    body = textwrap.wrap(text, width=width, initial_indent=INDENT,
                         subsequent_indent=INDENT, break_on_hyphens=False)
    return head + body


def json_line(index: int, at: datetime, kind: str, site: str, data: Any) -> str:
    when = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"index": index, "kind": kind, "site": site, "at": when, "data": data},
                      ensure_ascii=False, separators=(",", ":"))


def summary(kind: str, data: Any) -> str:
    if not isinstance(data, Mapping):
        return f"data: {type(data).__name__}" if data is not None else "(no data)"
    describe = _SUMMARIES.get(kind)
    try:
        text = describe(data) if describe is not None else None
    except (KeyError, TypeError, ValueError, AttributeError):  # a shape of its own
        text = None
    if text is None:
        return "data: " + (", ".join(sorted(data)) if data else "none")
    return text


def _count(value: Any) -> str:
    return str(len(value)) if isinstance(value, list | tuple | Mapping) else words(value)


def _policy(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"{words(value.get('id'))}@{words(value.get('digest'))}"
    return words(value)


def _verdict(data: Mapping[str, Any]) -> str:
    context = data.get("context")
    if context == "round" and data.get("round") is not None:
        context = f"round {words(data['round'])}"
    text = f"peer {words(data['peer'])}: {words(data['status'])}"
    notes = [words(context)] if context is not None else []
    if data.get("definitive"):
        notes.append("definitive")
    if notes:
        text += f" ({', '.join(notes)})"
    if data.get("policy") is not None:
        text += f" policy {_policy(data['policy'])}"
    results = data.get("results") or []
    if results:
        text += "; " + ", ".join(f"{words(r['platform'])} {words(r['status'])}"
                                 for r in results)
    failures = data.get("failures") or []
    if failures:
        text += "; failures: " + "; ".join(words(f) for f in failures)
    return text


def _round(data: Mapping[str, Any]) -> str:
    missing = data.get("missing") or {}
    text = (f"round {words(data['round'])}: {_count(data.get('participants', []))} "
            f"participants, {len(missing)} missing")
    if missing:
        text += f" ({words(missing)})"
    if data.get("coordinator") is not None:
        text += f"; coordinator {words(data['coordinator'])}"
    return text


def _registration(data: Mapping[str, Any]) -> str:
    text = f"peer {words(data['peer'])}: {words(data.get('stage'))}"
    if data.get("status") is not None:
        text += f", {words(data['status'])}"
    if data.get("definitive"):
        text += ", definitive"
    if data.get("verdict") is not None:
        text += f" (verdict #{words(data['verdict'])})"
    return text


def _gate(data: Mapping[str, Any]) -> str:
    text = f"job {words(data['job'])}: {'admitted' if data['allowed'] else 'refused'}"
    reasons = data.get("reasons") or []
    if reasons:
        text += " (" + "; ".join(words(reason) for reason in reasons) + ")"
    return text


def _receipt(data: Mapping[str, Any]) -> str:
    text = f"job {words(data['job'])}: {words(data['phase'])} receipt"
    if data.get("issuer") is not None:
        text += f" by {words(data['issuer'])}"
    return text


def _action(data: Mapping[str, Any]) -> str:
    text = f"site {words(data['site'])}: {words(data['action'])}"
    if data.get("cause") is not None:
        text += f" ({words(data['cause'])})"
    if data.get("detail"):
        text += f": {words(data['detail'])}"
    return text


def _membership(verb: str) -> Callable[[Mapping[str, Any]], str]:
    def describe(data: Mapping[str, Any]) -> str:
        text = f"site {words(data['site'])} {verb}"
        return text + (f": {words(data['detail'])}" if data.get("detail") else "")
    return describe


def _config(data: Mapping[str, Any]) -> str | None:
    parts = []
    if data.get("policy") is not None:
        parts.append(f"policy {_policy(data['policy'])}")
    if data.get("config") is not None:
        parts.append(f"config {words(data['config'])}")
    if data.get("platforms") is not None:
        parts.append(f"platforms {words(data['platforms'])}")
    record = data.get("record")
    if isinstance(record, Mapping):
        parts.append(f"record {words(record)}")
    return ", ".join(parts) or None


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "verdict": _verdict, "round": _round, "registration": _registration, "gate": _gate,
    "receipt": _receipt, "action": _action, "exclusion": _membership("excluded"),
    "readmission": _membership("readmitted"), "config": _config,
}
