"""Human output: results as rich tables, errors as what-was-expected-and-found."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import CCAttestError
from .result import AttestationResult, Tier

STATUS_STYLE = {
    Tier.AFFIRMING: "bold green",
    Tier.WARNING: "bold yellow",
    Tier.CONTRAINDICATED: "bold red",
    Tier.NONE: "bold magenta",
}


def status_text(result: AttestationResult, *, mark_unverified: bool = True) -> Text:
    label = result.status.value.upper()
    if mark_unverified and not result.verified:
        label += " (not verified)"
    return Text(label, style=STATUS_STYLE[result.status])


def print_result(console: Console, result: AttestationResult) -> None:
    who = result.attester or "unknown attester"
    console.print(Text.assemble(f"{result.platform} evidence from {who}: ",
                                status_text(result)))
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("check", "", "message", "expected", "found"):
        table.add_column(column, overflow="fold")
    for reason in result.reasons:
        mark = Text("ok", style="green") if reason.passed else Text("FAIL", style="red")
        table.add_row(reason.check, mark, reason.message, _short(reason.expected),
                      _short(reason.found))
    console.print(table)
    vector = ", ".join(f"{k}={v}" for k, v in result.trust_vector.to_dict().items())
    console.print(f"trust vector: {vector or '(no claims)'}")
    if result.verified:
        console.print(f"valid until {result.expires_at.isoformat()} under policy "
                      f"{result.policy_id}")


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


def print_error(console: Console, error: CCAttestError) -> None:
    console.print(Text.assemble(("error: ", "bold red"), (type(error).__name__, "red"),
                                ": ", error.message))
    if error.expected is not None:
        console.print(f"  expected: {error.expected}")
    if error.found is not None:
        console.print(f"  found:    {error.found}")
    if error.hint:
        console.print(f"  hint:     {error.hint}")


def _short(value: str | None, limit: int = 40) -> str:
    if value is None:
        return ""
    return value if len(value) <= limit else value[: limit - 3] + "..."
