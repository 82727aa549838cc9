"""`ccattest audit`: check a site's record without trusting whoever kept it.

Every command reads a record database or an export file (`audit export` writes one) alike.
Exit status: 0 intact (or extends), 1 tampered (the first fault is named), 2 unusable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import CCAttestError, ConfigError
from .app import audit_app
from .common import fail, out

# Text, not a Path: a Path would fold a database URL's "//" into "/".
RecordArgument = Annotated[str, typer.Argument(
    metavar="PATH", help="A site's workspace or local/cc/ folder, its record file, a "
    "database URL, or an export file.")]
JwksOption = Annotated[Path | None, typer.Option(
    "--jwks", metavar="FILE", help="The federation's JWK Set: the log's key and every "
    "witness's key.")]


def _say(text: str) -> None:
    out().print(text, soft_wrap=True, highlight=False, markup=False)


@audit_app.command("verify")
def audit_verify(
    path: RecordArgument,
    key: Annotated[str | None, typer.Option(
        metavar="VERIFIER_KEY", help="The log's public key (NAME+ID+KEY, signed-note form): "
        "check every checkpoint's signature too.")] = None,
    jwks: JwksOption = None,
) -> None:
    """Re-hash every entry, rebuild the Merkle tree and check every checkpoint (and, with
    --jwks, every witness's cosignature).

    Exit status: 0 intact, 1 tampered (the first fault is named), 2 unusable.
    """
    from ..record import note
    from ..record.audit import audit
    from ..timeutil import utcnow
    from .audit_source import open_record, read_jwks

    try:
        if key and jwks:
            raise ConfigError("give the log's key or the federation's key set, not both",
                              hint="--jwks holds the log's key too")
        log_key = note.Verifier.parse(key) if key else None
        keys = read_jwks(jwks) if jwks else None
        with open_record(path) as source:
            witnesses: dict[str, note.Verifier] = {}
            if keys is not None:
                log_key, witnesses = keys.log(source.origin), dict(keys.witnesses)
            report = audit(source, log_key, witnesses=witnesses, now=utcnow())
    except CCAttestError as error:
        fail(error)
    signed = (f", {report.signatures_checked} signatures checked" if log_key is not None
              else " (signatures not checked: pass --key or --jwks)")
    # The origin alone on the first line: it is long and must not break.
    _say(f"record of {report.origin}: intact")
    _say(f"  {report.size} entries, {report.checkpoints} checkpoints{signed}")
    if report.cosignatures_checked or report.cosignatures_unchecked or keys is not None:
        line = (f"  cosignatures: {report.cosignatures_checked} checked, "
                f"{report.cosignatures_unchecked} unchecked")
        if report.unknown_witnesses:
            line += (" (no key for " + ", ".join(report.unknown_witnesses) + ")"
                     if keys is not None else " (pass --jwks to check them)")
        _say(line)


@audit_app.command("log")
def audit_log(
    path: RecordArgument,
    site: Annotated[str | None, typer.Option(metavar="SITE", help="Only this site's "
                                             "entries.")] = None,
    kind: Annotated[str | None, typer.Option(metavar="KIND", help="Only entries of this "
                                             "kind (verdict, round, gate, ...).")] = None,
    since: Annotated[str | None, typer.Option(metavar="TIME", help="Only entries at or after "
                                              "this ISO 8601 time or date.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines: index, kind, site, at, "
                                          "data (values whole).")] = False,
) -> None:
    """List the record's events, oldest first. Lists what is stored; `audit verify`
    checks it."""
    from ..render import terminal_width
    from .audit_log import entry_lines, json_line
    from .audit_source import open_record, select_entries

    try:
        with open_record(path) as source:
            shown = select_entries(source, site=site, kind=kind, since=since)
    except CCAttestError as error:
        fail(error)
    if not shown:
        filtered = site is not None or kind is not None or since is not None
        typer.echo("no entries match" if filtered else "the record has no entries")
        return
    width = terminal_width()
    for stored, data, readable in shown:
        if as_json:
            typer.echo(json_line(stored.index, stored.at, stored.kind, stored.site, data))
        else:
            typer.echo("\n".join(entry_lines(stored.index, stored.at, stored.kind,
                                             stored.site, data, width, readable=readable)))


@audit_app.command("export")
def audit_export(
    path: RecordArgument,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE",
                                         help="The export file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it "
                                        "exists.")] = False,
) -> None:
    """Write the record as one self-contained file (JSON lines: entries, checkpoints,
    cosignatures) that `audit verify` checks like the database."""
    from ..record.export import write_export
    from .audit_source import open_record

    try:
        with open_record(path) as source:
            count = write_export(source, output, overwrite=force)
            origin = source.origin
    except CCAttestError as error:
        fail(error)
    _say(f"exported {count} entries of {origin} to {output}")


@audit_app.command("consistency")
def audit_consistency(
    old_checkpoint: Annotated[Path, typer.Argument(
        metavar="OLD_CHECKPOINT", help="A file holding a signed checkpoint of this log, kept "
        "from earlier.")],
    path: RecordArgument,
    jwks: JwksOption = None,
) -> None:
    """Prove the record extends a checkpoint kept from earlier (RFC 9162 consistency):
    nothing it covered was rewritten, dropped or forked.

    Exit status: 0 extends, 1 does not, 2 unusable.
    """
    from ..record.audit import check_consistency
    from .audit_source import kept_checkpoint, open_record, read_jwks

    try:
        keys = read_jwks(jwks) if jwks else None
        with open_record(path) as source:
            old = kept_checkpoint(old_checkpoint, source.origin, keys)
            report = check_consistency(source, old)
    except CCAttestError as error:
        fail(error)
    signed = ("its signature checked" if keys is not None
              else "its signature not checked: pass --jwks")
    _say(f"record of {report.origin}: extends the kept checkpoint")
    _say(f"  size {report.old_size} to {report.size}, a proof of {report.proof_length} hashes;"
         f" {signed}")
