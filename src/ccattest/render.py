"""Human output: verdicts that read well at 80 columns, errors that say what to do.

Lines are laid out here (textwrap at the console's width) and printed without rich's own
wrapping, so that words are never cut and a long hex value (a measurement to copy into a
policy) is printed whole on a line of its own.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import (
    CCAttestError,
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    hint_for,
)
from .result import AttestationResult, Reason, Tier

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
# A value that is one unbreakable token: hex digests, base64, URLs, paths.
_TOKEN = re.compile(r"\A\S{24,}\Z")


def status_label(result: AttestationResult) -> str:
    return LABEL.get(result.status, result.status.value.upper())


def status_text(result: AttestationResult, *, mark_unverified: bool = True) -> Text:
    label = status_label(result)
    if mark_unverified and not result.verified and result.status is not Tier.NONE:
        label += " (not verified)"
    return Text(label, style=STATUS_STYLE[result.status])


def verdict_line(result: AttestationResult) -> Text:
    who = result.attester or "an unnamed attester"
    meaning = MEANING[result.status]
    if not result.verified and result.status is Tier.CONTRAINDICATED:
        meaning += ": the evidence did not verify"
    return Text.assemble(f"{result.platform} evidence from {who}: ", status_text(result),
                         f" ({meaning})")


def result_lines(result: AttestationResult, width: int, *, verbose: bool = False) -> list[str]:
    """Everything after the verdict line: the checks that did not pass (all of them with
    `verbose`), the trust vector in one line, and how long the verdict holds."""
    lines: list[str] = []
    shown = result.reasons if verbose else result.failures()
    for reason in shown:
        lines += reason_lines(reason, width, verbose=verbose)
    passed = len(result.reasons) - len(result.failures())
    if not verbose and passed:
        lines.append(f"  {passed} check{'s' if passed != 1 else ''} passed "
                     "(--verbose shows every check)")
    vector = " ".join(f"{k}={v}" for k, v in result.trust_vector.to_dict().items())
    lines += _wrap(f"trust vector (AR4SI): {vector or 'no claims'}", width, indent="  ")
    if result.verified and result.status in (Tier.AFFIRMING, Tier.WARNING):
        until = f"valid until {_instant(result.expires_at)}"
        bound = result.collateral.get("expires_because") if result.collateral else None
        if isinstance(bound, str):
            until += f" ({bound})"
        lines += _wrap(f"{until}, under policy {result.policy_id}", width, indent="  ")
    return lines


def reason_lines(reason: Reason, width: int, *, verbose: bool = False) -> list[str]:
    mark = "ok  " if reason.passed else ("FAIL" if verbose else "-")
    lines = _wrap(f"{mark} {reason.check}: {reason.message}", width, indent="      ")
    details = []
    if reason.expected is not None:
        details.append(("expected", reason.expected))
    if reason.found is not None:
        details.append(("found", reason.found))
    inline = ", ".join(f"{name} {value}" for name, value in details)
    if details and len(inline) + 4 <= width and not any(_TOKEN.match(v) for _, v in details):
        lines.append("      " + inline)
        return lines
    for name, value in details:
        if _TOKEN.match(value):  # whole, on its own line, to copy
            lines.append(f"      {name}:")
            lines.append(value)
        else:
            lines += _wrap(f"{name} {value}", width, indent="        ", first="      ")
    return lines


def print_result(console: Console, result: AttestationResult, *, verbose: bool = False) -> None:
    console.print(verdict_line(result), soft_wrap=True)
    for line in result_lines(result, console.width, verbose=verbose):
        console.print(Text(line), soft_wrap=True)


def results_table(rows: Sequence[tuple[str, AttestationResult]], title: str) -> Table:
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


def print_error(console: Console, error: CCAttestError) -> None:
    first, *rest = error_lines(error)
    head, _, tail = first.partition(": ")
    console.print(Text.assemble((head + ": ", "bold red"), tail), soft_wrap=True)
    for line in rest:
        console.print(Text(line), soft_wrap=True)


def _wrap(text: str, width: int, *, indent: str, first: str = "  ") -> list[str]:
    return textwrap.wrap(text, width=max(width, 40), initial_indent=first,
                         subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False) or [first.rstrip()]


def _instant(when: datetime) -> str:
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")

