"""`ccattest audit receipt`: a job's receipts from a record, and the offline check a data
owner runs with a receipt and the federation's public keys alone.

    ccattest audit receipt JOB_ID PATH [--output DIR] [--json]
    ccattest audit receipt verify RECEIPT --jwks FILE [--min-cosigners N] [--checkpoint F]
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import CCAttestError, ConfigError
from .app import audit_app
from .common import EXIT_USAGE, fail, out, parse_at, read_file


def _width() -> int:
    import shutil

    return max(40, shutil.get_terminal_size((80, 24)).columns)


def _say(text: str, indent: str = "") -> None:
    for line in textwrap.wrap(text, width=_width(), initial_indent=indent,
                              subsequent_indent=indent + "  ", break_on_hyphens=False,
                              break_long_words=False) or [""]:
        out().print(line, soft_wrap=True, highlight=False, markup=False)


@audit_app.command("receipt", no_args_is_help=True)
def audit_receipt(
    args: Annotated[list[str], typer.Argument(
        metavar="JOB_ID PATH | verify RECEIPT",
        help="A job id and a record (print its receipts), or `verify` and a receipt file "
        "(check it offline; - reads standard input).")],
    jwks: Annotated[Path | None, typer.Option(
        "--jwks", metavar="FILE", help="The federation's JWK Set (federation.jwks.json): "
        "the server's receipt key, its log key and every witness's key.")] = None,
    min_cosigners: Annotated[int | None, typer.Option(
        "--min-cosigners", min=0, metavar="N", help="How many participants must have "
        "cosigned the receipt's checkpoint (default: every participant but the server).")
    ] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="DIR", help="Save each receipt as DIR/JOB.PHASE.jwt.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    at: Annotated[str | None, typer.Option(
        metavar="TIME", help="Judge cosignature times as of TIME (default: now).")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", metavar="FILE", help="verify: keep the receipt's cosigned checkpoint "
        "in FILE, to prove later that the log still extends it (audit consistency).")
    ] = None,
) -> None:
    """Print a job's receipts, or verify one offline.

    A receipt is the server's signed statement of which sites it relied on when it
    admitted a job (and, at the job's end, what happened while it ran), with inclusion
    proofs into its log and the cosignatures of the job's clients.

    Exit status: 0 verified, 1 forged or inconsistent (the fault is named), 2 unusable.
    """
    try:
        if len(args) == 2 and args[0] == "verify":
            _verify(args[1], jwks, min_cosigners, as_json, parse_at(at), checkpoint)
        elif len(args) == 2:
            _show(args[0], Path(args[1]), jwks, output, as_json)
        else:
            typer.echo("error: expected JOB_ID PATH, or verify RECEIPT; see "
                       "ccattest audit receipt --help", err=True)
            raise typer.Exit(EXIT_USAGE)
    except CCAttestError as error:
        fail(error)


def _read_token(source: str) -> str:
    data = sys.stdin.buffer.read(2 << 20) if source == "-" else read_file(Path(source),
                                                                          "receipt")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError("a receipt is a JWT (ASCII text)", found="binary data") from None


def _verify(source: str, jwks_path: Path | None, min_cosigners: int | None, as_json: bool,
            now: Any, keep: Path | None = None) -> None:
    from ..record.receipt import verify_receipt
    from ..tokens import load_jwks

    if jwks_path is None:
        raise ConfigError("checking a receipt needs the federation's public keys",
                          hint="pass --jwks federation.jwks.json (written at provisioning)")
    report = verify_receipt(_read_token(source), load_jwks(jwks_path), now=now,
                            min_cosigners=min_cosigners)
    if keep is not None:
        try:
            keep.write_bytes(report.checkpoint)
        except OSError as exc:
            raise ConfigError(f"cannot write {keep}", found=exc.strerror) from None
    if as_json:
        typer.echo(json.dumps({
            "verified": True, "job": report.job, "phase": report.phase,
            "issuer": report.issuer, "issued_at": report.issued_at.isoformat(),
            "participants": list(report.participants), "statuses": dict(report.statuses),
            "checkpoint_size": report.checkpoint_size, "cosigners": list(report.cosigners),
            "missing_cosigners": list(report.missing_cosigners), "entries": report.entries,
            "events": [{"kind": e.kind, "at": e.at.isoformat(), "data": dict(e.data)}
                       for e in report.events]}, indent=1))
        return
    clients = len(report.cosigners) + len(report.missing_cosigners)
    _say(f"receipt of job {report.job} ({report.phase}) by {report.issuer}: VERIFIED")
    _say(f"issued {report.issued_at.isoformat().replace('+00:00', 'Z')}", "  ")
    _say("participants: " + ", ".join(f"{site} ({report.statuses.get(site, '?')})"
                                       for site in report.participants), "  ")
    cosigned = ", ".join(report.cosigners) or "nobody"
    _say(f"checkpoint of size {report.checkpoint_size} cosigned by {cosigned} "
         f"({len(report.cosigners)} of {clients} clients)", "  ")
    if report.missing_cosigners:
        _say("not cosigned by " + ", ".join(report.missing_cosigners), "  ")
    _say(f"{report.entries} entries proved included in the server's log", "  ")
    for event in report.events:
        what = event.data.get("detail") or event.data.get("missing") or ""
        _say(f"during the job: {event.kind} {event.data.get('site', '')} {what}".rstrip(),
             "  ")
    if keep is not None:
        _say(f"checkpoint kept in {keep}", "  ")


def _show(job: str, path: Path, jwks_path: Path | None, output: Path | None,
          as_json: bool) -> None:
    from ..tokens import load_jwks
    from .audit_source import open_record, select_entries

    with open_record(str(path)) as source:
        found = [(stored, data) for stored, data, readable
                 in select_entries(source, site=None, kind="receipt", since=None)
                 if readable and isinstance(data, dict)]
    receipts = [(stored, data) for stored, data in found if data.get("job") == job]
    if not receipts:
        known = sorted({str(data.get("job")) for _, data in found})
        raise ConfigError(f"no receipt of job {job} in this record",
                          expected="one of " + (", ".join(known[-8:]) or "(no receipts yet)"))
    keys = load_jwks(jwks_path) if jwks_path is not None else None
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    rows = []
    for stored, data in receipts:
        token = str(data.get("token", ""))
        phase = str(data.get("phase"))
        saved = None
        if output is not None:
            saved = output / f"{job}.{phase}.jwt"
            saved.write_text(token + "\n")
        rows.append({"index": stored.index, "phase": phase, "issuer": data.get("issuer"),
                     "at": stored.at.isoformat(), "token": token,
                     "saved": str(saved) if saved else None})
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        when = str(row["at"]).replace("+00:00", "Z")
        _say(f"#{row['index']}  {when}  {row['phase']} receipt by {row['issuer']}")
        if keys is not None:
            from ..record.receipt import verify_receipt
            from ..timeutil import utcnow

            report = verify_receipt(str(row["token"]), keys, now=utcnow(), min_cosigners=0)
            _say("participants: " + ", ".join(report.participants) + "; cosigned by "
                 + (", ".join(report.cosigners) or "nobody"), "  ")
        if row["saved"]:
            _say(f"saved to {row['saved']}", "  ")
    if output is None:
        _say("save them with --output DIR; check one with: ccattest audit receipt verify "
             "FILE --jwks federation.jwks.json")
