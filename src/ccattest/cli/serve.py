"""`ccattest serve`: the federation console's HTTP API over a site's kit or a POC folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import CCAttestError, ConfigError
from .app import app
from .common import fail, out


@app.command("serve")
def serve(
    workspace: Annotated[Path, typer.Argument(
        metavar="WORKSPACE", help="A site's kit (its token goes in local/cc/), or a prod or "
        "POC folder (every site in it; the token goes at its top).")],
    host: Annotated[str, typer.Option(
        metavar="ADDRESS", help="Where to listen. Anything but 127.0.0.1 exposes the console "
        "to the network: say so on purpose.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, metavar="PORT")] = 8765,
) -> None:
    """Serve the federation console's JSON API (/api/v1) and Prometheus metrics (/metrics).

    Every route but /healthz needs the bearer token from the console.token file, made on
    first start (mode 0600); its path is printed.
    """
    import uvicorn

    from ..console.app import create_app
    from ..console.auth import TOKEN_FILE, load_or_create_token
    from ..console.views import Federation

    try:
        if not workspace.is_dir():
            raise ConfigError(f"{workspace} is not a folder",
                              hint="pass a site's kit, a prod folder or a POC workspace")
        federation = Federation.find(workspace)
        own = federation.kits[0] if len(federation.kits) == 1 else None
        token_path = (own.local / "cc" / TOKEN_FILE) if own is not None else \
            workspace / TOKEN_FILE
        token = load_or_create_token(token_path)
    except CCAttestError as error:
        fail(error)
    console = out()
    console.print(f"ccattest console for {', '.join(k.name for k in federation.kits)}",
                  soft_wrap=True)
    console.print(f"  http://{host}:{port}/api/v1/status", soft_wrap=True)
    console.print("  bearer token in:", soft_wrap=True)
    console.print(f"  {token_path}", soft_wrap=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[bold yellow]listening on {host}: reachable from the network[/]")
    uvicorn.run(create_app(federation, token), host=host, port=port, log_level="warning")
