"""`ccattest demo`: a three-site federation on software TEEs, start to finish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import CCAttestError, PlatformUnavailable
from .app import app
from .common import EXIT_OK, EXIT_REJECTED, err, fail, out


@app.command()
def demo(
    work_dir: Annotated[Path, typer.Option(
        metavar="DIR", help="Where the demo keeps its keys and files.")] = Path(".demo"),
    local: Annotated[bool, typer.Option(
        "--local", help="Without NVFlare: three software sites attest in-process.")] = False,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Keep the federation and its dashboard running until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(
        min=1, max=65535, metavar="PORT", help="The dashboard's port on 127.0.0.1 (another "
        "free one when taken).")] = 8765,
) -> None:
    """A three-site NVFlare federation on software TEEs.

    It shows mutual attestation, live rounds and a job, then tampers with one site and
    applies the configured action, while a dashboard on 127.0.0.1 shows the same live
    (its address is printed). Everything stops at the end, or with --serve at Ctrl-C.
    """
    try:
        if local:
            from ..demo import run_demo

            ok = run_demo(work_dir, out()) == 1  # exactly the tampered site is refused
        else:
            ok = _federation_demo(work_dir, serve, port)
    except CCAttestError as error:
        fail(error)
    except TimeoutError as error:
        err().print(f"[red]demo stalled[/red]: {error}", soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED) from None
    except (RuntimeError, OSError) as error:  # how NVFlare's admin API reports failures
        err().print(f"[red]demo failed[/red]: {error}", soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED) from None
    raise typer.Exit(EXIT_OK if ok else EXIT_REJECTED)


def _federation_demo(work_dir: Path, serve: bool, port: int) -> bool:
    try:
        from ..nvflare.demo import run_federation_demo
    except ImportError:
        raise PlatformUnavailable("NVFlare is not installed",
                                  hint="pip install 'ccattest[nvflare]', or run "
                                  "`ccattest demo --local`") from None
    import shutil

    shutil.rmtree(work_dir, ignore_errors=True)
    return run_federation_demo(work_dir, out(), serve=serve, port=port)
