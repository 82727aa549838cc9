"""`ccattest serve`: the federation console (dashboard, HTTP API, metrics) over a site's kit
or a folder of kits."""

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
    client_certs: Annotated[bool, typer.Option(
        "--client-certs", help="HTTPS that admits only client certificates from the "
        "federation's root (an admin's startup kit) instead of the token.")] = False,
    tls_cert: Annotated[Path | None, typer.Option(
        metavar="PEM", help="With --client-certs: the console's certificate (default: the "
        "server kit's startup/server.crt).")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        metavar="PEM", help="Its private key (default: startup/server.key).")] = None,
    client_ca: Annotated[Path | None, typer.Option(
        metavar="PEM", help="The root client certificates must chain to (default: the "
        "kit's startup/rootCA.pem).")] = None,
) -> None:
    """Serve the federation console: the dashboard (/), the JSON API (/api/v1) and
    Prometheus metrics (/metrics), until Ctrl-C.

    Every route but /healthz needs the token from the console.token file, made on first
    start (mode 0600; its path is printed): as `Authorization: Bearer`, or once in the
    browser's login form. POST /api/v1/challenge and /api/v1/attest verify evidence from
    attesters outside NVFlare as the server's kit (else the only kit) would.
    """
    from ..console.server import LOCAL_HOSTS, ConsoleServer
    from ..console.tls import MutualTls
    from ..console.views import Federation

    try:
        if not workspace.is_dir():
            raise ConfigError(f"{workspace} is not a folder",
                              hint="pass a site's kit, a prod folder or a POC workspace")
        if not client_certs and (tls_cert or tls_key or client_ca):
            raise ConfigError("--tls-cert, --tls-key and --client-ca go with --client-certs")
        tls = MutualTls.for_federation(Federation.find(workspace), cert=tls_cert, key=tls_key,
                                       client_ca=client_ca) if client_certs else None
        console = ConsoleServer(workspace, host=host, port=port, client_certs=tls).start()
    except CCAttestError as error:
        fail(error)
    show = out()
    show.print(f"ccattest console for {', '.join(k.name for k in console.federation.kits)}",
               soft_wrap=True)
    show.print(f"  {console.url}", soft_wrap=True)
    if tls is not None:
        show.print("  client certificates from:", soft_wrap=True)
        show.print(f"  {tls.client_ca}", soft_wrap=True)
    show.print("  token (bearer header, or the browser's login form) in:", soft_wrap=True)
    show.print(f"  {console.token_file}", soft_wrap=True)
    if console.attest_site is not None:
        show.print(f"  attestation API: verifying as {console.attest_site}", soft_wrap=True)
    else:
        show.print(f"  attestation API unavailable (503): {console.app_options['attest']}",
                   soft_wrap=True)
    if host not in LOCAL_HOSTS:
        show.print(f"[bold yellow]listening on {host}: reachable from the network[/]")
    show.print("Ctrl-C stops it.")
    console.serve_until_interrupted()
