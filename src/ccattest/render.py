"""Human output: verdicts that read well at 80 columns, errors that say what to do.

Lines are laid out here (textwrap at the terminal's width) and written as they are, so that
words are never cut and a long hex value (a measurement to copy into a policy) is printed
whole on a line of its own. Verdicts and errors are plain text with ANSI colour on a
terminal (NO_COLOR is honoured); rich is imported only for the demo's tables.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from .errors import (
    CCAttestError,
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    hint_for,
)
from .result import AttestationResult, Reason, Tier

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

STATUS_STYLE = {
    Tier.AFFIRMING: "bold green",
    Tier.WARNING: "bold yellow",
    Tier.CONTRAINDICATED: "bold red",
    Tier.NONE: "bold magenta",
}
MEANING = {
    Tier.AFFIRMING: "accepted",
    Tier.WARNING: "accepted with reservations",
    Tier.CONTRAINDICATED: "rejected",
    Tier.NONE: "no verdict: the input could not be used",
}
LABEL = {Tier.NONE: "NO VERDICT"}
CONTRAINDICATED_NOTE = ("contraindicated: the verifier found evidence that the site must "
                        "not be trusted (a failed check or a policy rule).")
_DEVICE = re.compile(r"\A([a-z]+)(\d+):(.+)\Z")
# A value that is one unbreakable token: hex digests, base64, URLs, paths.
_TOKEN = re.compile(r"\A\S{24,}\Z")


def status_label(result: AttestationResult) -> str:
    return LABEL.get(result.status, result.status.value.upper())


def status_text(result: AttestationResult, *, mark_unverified: bool = True) -> Text:
    from rich.text import Text

    label = status_label(result)
    if mark_unverified and not result.verified and result.status is not Tier.NONE:
        label += " (not verified)"
    return Text(label, style=STATUS_STYLE[result.status])


def verdict_lines(result: AttestationResult, width: int, *, color: bool = False) -> list[str]:
    """The verdict first: platform, attester, status and what it means in words."""
    who = result.attester or "an unnamed attester"
    meaning = MEANING[result.status]
    if not result.verified and result.status is Tier.CONTRAINDICATED:
        meaning += ": the evidence did not verify"
    label = status_label(result)
    lines = _wrap(f"{result.platform} evidence from {who}: {label} ({meaning})", width,
                  indent="  ", first="")
    painted = _paint(label, _ANSI[result.status], color)
    return [line.replace(f": {label} ", f": {painted} ", 1) for line in lines]


def result_lines(result: AttestationResult, width: int, *, verbose: bool = False) -> list[str]:
    """Everything after the verdict line: the checks that did not pass (all of them with
    `verbose`), the trust vector in one line, and how long the verdict holds."""
    lines: list[str] = []
    shown = result.reasons if verbose else result.failures()
    for reason in group_devices(shown):
        lines += reason_lines(reason, width, verbose=verbose)
    passed = len(result.reasons) - len(result.failures())
    if not verbose and passed:
        lines.append(f"  {passed} check{'s' if passed != 1 else ''} passed "
                     "(--verbose shows every check)")
    vector = " ".join(f"{k}={v}" for k, v in result.trust_vector.to_dict().items())
    lines += _wrap(f"trust vector (AR4SI): {vector or 'no claims'}", width, indent="  ")
    if result.verified and result.status in (Tier.AFFIRMING, Tier.WARNING):
        until = f"valid until {_instant(result.expires_at)}"
        if result.expiry_source:  # what bounds it: the policy's lifetime or a CRL, TCB Info...
            until += f" (set by {result.expiry_source})"
        lines += _wrap(f"{until}, under policy {result.policy_id}", width, indent="    ")
    return lines


def group_devices(reasons: Sequence[Reason]) -> list[Reason]:
    """One line for a finding that several devices share ("gpu0-7:cc_mode: ..."), so an
    8-GPU verdict reads like a 1-GPU one."""
    groups: dict[tuple[object, ...], tuple[Reason, list[int]]] = {}
    for reason in reasons:
        match = _DEVICE.match(reason.check)
        if match is None:
            groups[(id(reason),)] = (reason, [])
            continue
        key = (match.group(1), match.group(3), reason.passed, reason.message, reason.expected,
               reason.found)
        groups.setdefault(key, (reason, []))[1].append(int(match.group(2)))
    merged = []
    for key, (reason, numbers) in groups.items():
        if len(numbers) > 1:
            reason = Reason(f"{key[0]}{_ranges(numbers)}:{key[1]}", reason.passed,
                            reason.message, reason.expected, reason.found)
        merged.append(reason)
    return merged


def _ranges(numbers: list[int]) -> str:
    values = sorted(numbers)
    if values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ",".join(str(v) for v in values)


def reason_lines(reason: Reason, width: int, *, verbose: bool = False) -> list[str]:
    mark = "ok  " if reason.passed else ("FAIL" if verbose else "-")
    lines = _wrap(f"{mark} {reason.check}: {reason.message}", width, indent="      ")
    details = []
    if reason.expected is not None:
        details.append(("expected", reason.expected))
    if reason.found is not None:
        details.append(("found", reason.found))
    inline = ", ".join(f"{name} {value}" for name, value in details)
    if details and len(inline) + 6 <= width and not any(_TOKEN.match(v) for _, v in details):
        lines.append("      " + inline)
        return lines + _hint_lines(reason, width)
    for name, value in details:
        if _TOKEN.match(value):  # whole, on its own line, to copy
            lines.append(f"      {name}:")
            lines.append(value)
        else:
            lines += _wrap(f"{name} {value}", width, indent="        ", first="      ")
    return lines + _hint_lines(reason, width)


def _hint_lines(reason: Reason, width: int) -> list[str]:
    if reason.passed or not reason.hint:
        return []
    return _wrap(f"fix: {reason.hint}", width, indent="        ", first="      ")


def print_result(stream: TextIO, result: AttestationResult, *, verbose: bool = False) -> None:
    width = terminal_width()
    lines = [*verdict_lines(result, width, color=wants_color(stream)),
             *result_lines(result, width, verbose=verbose)]
    stream.write("\n".join(lines) + "\n")


def results_table(rows: Sequence[tuple[str, AttestationResult]], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for column in ("site", "platform", "status", "verified", "measurement"):
        table.add_column(column, no_wrap=True)
    table.add_column("why", overflow="fold", ratio=1)
    for site, result in rows:
        failures = result.failures()
        why = "; ".join(reason.message for reason in failures) or "all checks passed"
        measurement = str(result.claims.get("measurement", "-"))
        table.add_row(site, result.platform, status_text(result, mark_unverified=False),
                      "yes" if result.verified else "no",
                      measurement[:8] + ("…" if len(measurement) > 8 else ""), why)
    return table


def error_hint(error: CCAttestError) -> str:
    """What to do, for every error: its own hint, or the usual fix for its kind."""
    hint = hint_for(error)
    if hint:
        return hint
    if isinstance(error, MalformedEvidence):
        return "check that the file is the evidence you meant, and --platform if you gave one"
    if isinstance(error, CollateralUnavailable):
        return ("pass the collateral with --collateral (a cache, or a bundle from `ccattest "
                "collateral export`), or check the network")
    if isinstance(error, ConfigError):
        return "see the command's --help"
    return "check that the evidence, the nonce and the identity are the ones you meant"


def error_lines(error: CCAttestError) -> list[str]:
    """One line with what is wrong and what to do, then the details."""
    lines = [f"error: {error.message}; {error_hint(error)}"]
    if error.expected is not None:
        lines.append(f"  expected: {error.expected}")
    if error.found is not None:
        lines.append(f"  found:    {error.found}")
    return lines


def print_error(stream: TextIO, error: CCAttestError) -> None:
    """Never hard-wrapped: in a log or a pipe a URL or a path must stay on one line."""
    first, *rest = error_lines(error)
    head, _, tail = first.partition(": ")
    first = _paint(head + ":", _ANSI_ERROR, wants_color(stream)) + " " + tail
    stream.write("\n".join([first, *rest]) + "\n")
    stream.flush()


def wants_color(stream: TextIO) -> bool:
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def terminal_width() -> int:
    """COLUMNS, else the terminal's width, else 80 (a pipe or a file)."""
    return shutil.get_terminal_size((80, 24)).columns


_ANSI = {Tier.AFFIRMING: "1;32", Tier.WARNING: "1;33", Tier.CONTRAINDICATED: "1;31",
         Tier.NONE: "1;35"}
_ANSI_ERROR = "1;31"


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _wrap(text: str, width: int, *, indent: str, first: str = "  ") -> list[str]:
    return textwrap.wrap(text, width=max(width, 40), initial_indent=first,
                         subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False) or [first.rstrip()]


def _instant(when: datetime) -> str:
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")

