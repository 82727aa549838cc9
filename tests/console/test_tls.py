"""Client certificates instead of the token: HTTPS that admits only certificates from the
federation's root, checked in the TLS handshake by a real uvicorn server."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ccattest.console.server import ConsoleServer, free_port
from ccattest.console.tls import MutualTls
from ccattest.console.views import Federation
from ccattest.errors import ConfigError
from tests.console.test_api import _federation

NOW = datetime.now(UTC)


def _issue(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
           *, ca: bool = False, host: bool = False
           ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(hours=1))
               .not_valid_after(NOW + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if host:  # what NVFlare puts in server.crt: the host name as a SAN
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write(folder: Path, name: str, pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
           ) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    cert.write_bytes(pair[0].public_bytes(serialization.Encoding.PEM))
    key.write_bytes(pair[1].private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


def _context(root: Path, client: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(root))
    if client is not None:
        context.load_cert_chain(*client)
    return context


def test_only_certificates_from_the_federation_root_get_in(tmp_path: Path) -> None:
    prod = _federation(tmp_path)
    startup = prod / "server" / "startup"
    root = _issue("example_project", None, ca=True)
    _write(startup, "server", _issue("server", root, host=True))
    (startup / "rootCA.pem").write_bytes(root[0].public_bytes(serialization.Encoding.PEM))
    admin = _write(tmp_path, "admin", _issue("admin@nvidia.com", root))
    stranger = _write(tmp_path, "stranger", _issue("admin@nvidia.com",
                                                   _issue("another root", None, ca=True)))
    tls = MutualTls.for_federation(Federation.find(prod))
    with ConsoleServer(prod, port=free_port(), client_certs=tls) as console:
        url = console.url.replace("127.0.0.1", "localhost")
        assert url.startswith("https://")
        with httpx.Client(base_url=url, verify=_context(startup / "rootCA.pem", admin),
                          timeout=10) as client:
            assert client.get("/api/v1/status").status_code == 200  # no token needed
            assert client.get("/healthz").json() == {"status": "ok"}
            # Acting still wants the header: browsers send certificates cross-site too.
            assert client.post("/api/v1/challenge", json={}).status_code == 401
        for credential in (None, stranger):
            with httpx.Client(base_url=url, timeout=10, verify=_context(
                    startup / "rootCA.pem", credential)) as client, pytest.raises(
                    httpx.TransportError):
                client.get("/api/v1/status")


def test_what_client_certificates_need(tmp_path: Path) -> None:
    prod = _federation(tmp_path)
    with pytest.raises(ConfigError, match=r"TLS certificate .* does not exist"):
        MutualTls.for_federation(Federation.find(prod))
    client_only = Federation.find(prod / "site-1")
    with pytest.raises(ConfigError, match="need the console's own certificate"):
        MutualTls.for_federation(client_only)
    pair = _write(tmp_path, "host", _issue("host", None, ca=True))
    (prod / "site-1" / "startup" / "rootCA.pem").write_bytes(pair[0].read_bytes())
    chosen = MutualTls.for_federation(client_only, cert=pair[0], key=pair[1])
    assert chosen.client_ca == prod / "site-1" / "startup" / "rootCA.pem"
    assert chosen.uvicorn_options()["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_serve_asks_for_tls_files_only_with_client_certificates(tmp_path: Path) -> None:
    from tests.cli_process import ccattest

    prod = _federation(tmp_path)
    result = ccattest("serve", str(prod), "--tls-cert", "x.pem", cwd=tmp_path)
    assert result.returncode == 2 and "go with --client-certs" in result.stderr
    result = ccattest("serve", str(prod), "--client-certs", cwd=tmp_path)
    assert result.returncode == 2 and "server.crt does not exist" in result.stderr
