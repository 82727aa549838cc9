"""Client certificates instead of the token: the console on HTTPS that accepts only
clients whose certificate chains to the federation's root (the provisioning root every
NVFlare startup kit holds as startup/rootCA.pem, so an admin's kit is the credential).

uvicorn checks the chain during the TLS handshake (CERT_REQUIRED), so a connection
without such a certificate never reaches the app, /healthz included.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .views import Federation

ROOT_CA = "rootCA.pem"


@dataclass(frozen=True)
class MutualTls:
    cert: Path
    key: Path
    client_ca: Path

    @classmethod
    def for_federation(cls, federation: Federation, *, cert: Path | None = None,
                       key: Path | None = None, client_ca: Path | None = None) -> MutualTls:
        """The server kit's own TLS pair and root unless told otherwise."""
        server = federation.server
        startup = server.path / "startup" if server is not None else None
        if cert is None and startup is not None:
            cert, key = startup / "server.crt", startup / "server.key"
        if client_ca is None:
            kit = server or federation.kits[0]
            client_ca = kit.path / "startup" / ROOT_CA
        if cert is None or key is None:
            raise ConfigError("client certificates need the console's own certificate",
                              expected="a server kit in the workspace, or --tls-cert and "
                              "--tls-key", hint="a client kit's client.crt names the site, "
                              "not this host: pass a certificate for the console's host")
        for what, path in (("certificate", cert), ("key", key), ("client root", client_ca)):
            if not path.is_file():
                raise ConfigError(f"the console's TLS {what} {path} does not exist",
                                  hint="provisioning writes it into the kit's startup/")
        return cls(cert, key, client_ca)

    def uvicorn_options(self) -> dict[str, Any]:
        return {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key),
                "ssl_ca_certs": str(self.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
