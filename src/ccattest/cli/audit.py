"""`ccattest audit`: check a site's record without trusting whoever kept it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import CCAttestError
from .app import audit_app
from .common import fail, out


@audit_app.command("verify")
def audit_verify(
    path: Annotated[Path, typer.Argument(
        metavar="PATH", help="A site's workspace or local/cc/ folder, its record file, or a "
        "database URL.")],
    key: Annotated[str | None, typer.Option(
        metavar="VERIFIER_KEY", help="The log's public key (NAME+ID+KEY, signed-note form): "
        "check every checkpoint's signature too.")] = None,
) -> None:
    """Re-hash every entry, rebuild the Merkle tree and check every checkpoint.

    Exit status: 0 intact, 1 tampered (the first fault is named), 2 unusable.
    """
    from ..record import note
    from ..record.audit import audit
    from ..record.log import locate
    from ..record.store import RecordStore

    try:
        log_key = note.Verifier.parse(key) if key else None
        with RecordStore.open(locate(path), origin=None, create=False) as store:
            report = audit(store, log_key)
    except CCAttestError as error:
        fail(error)
    signed = (f", {report.signatures_checked} signatures checked" if log_key is not None
              else " (signatures not checked: pass --key)")
    out().print(f"record of {report.origin}: intact, {report.size} entries, "
                f"{report.checkpoints} checkpoints{signed}", soft_wrap=True, highlight=False)
