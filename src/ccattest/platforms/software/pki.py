"""The development PKI: a local "software root" CA that certifies Ed25519 site keys.

Key directory layout (default ~/.ccattest/dev):
    root.pem, root.key.pem             the software root CA
    sites/<identity>/site.pem          the site certificate (CN = identity)
    sites/<identity>/site.key.pem      the site's Ed25519 key
Private keys are written owner-only. Nothing here runs during verification.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from ...errors import ConfigError

ROOT_NAME = "ccattest software root (development only, no hardware guarantee)"
IDENTITY_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
DEFAULT_KEY_DIR = Path("~/.ccattest/dev")


@dataclass(frozen=True)
class Root:
    certificate: x509.Certificate
    key: ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class SiteCredentials:
    identity: str
    certificate: x509.Certificate
    key: ed25519.Ed25519PrivateKey


def check_identity(identity: str) -> str:
    if not IDENTITY_PATTERN.match(identity):
        raise ConfigError("invalid site identity", expected="1-64 characters of "
                          "letters, digits and . _ @ -, starting with a letter or digit",
                          found=repr(identity))
    return identity


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ccattest development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_root(now: dt.datetime, *, days: int = 3650, name: str = ROOT_NAME) -> Root:
    key = ed25519.Ed25519PrivateKey.generate()
    subject = _name(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, None)
    )
    return Root(cert, key)


def issue_site(root: Root, identity: str, now: dt.datetime, *, days: int = 365,
               key: ed25519.Ed25519PrivateKey | None = None) -> SiteCredentials:
    check_identity(identity)
    key = key or ed25519.Ed25519PrivateKey.generate()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(identity))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .sign(root.key, None)
    )
    return SiteCredentials(identity, cert, key)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


# --- key directory ------------------------------------------------------------------------

def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)


def _key_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(path: Path) -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot load private key {path}", found=str(exc)) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key", found=type(key).__name__)
    return key


def load_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read certificate {path}", found=exc.strerror,
                          hint="create a development root with `ccattest collect`") from None
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ConfigError(f"{path} is not an X.509 certificate", found=str(exc)) from None


class KeyDir:
    """A development key directory; creates the root and site keys on first use."""

    def __init__(self, path: Path | str = DEFAULT_KEY_DIR) -> None:
        self.path = Path(path).expanduser()

    @property
    def root_cert_path(self) -> Path:
        return self.path / "root.pem"

    def _site_dir(self, identity: str) -> Path:
        return self.path / "sites" / check_identity(identity)

    def root_certificate(self) -> x509.Certificate:
        return load_certificate(self.root_cert_path)

    def ensure_root(self, now: dt.datetime) -> Root:
        key_path = self.path / "root.key.pem"
        if self.root_cert_path.exists():
            return Root(self.root_certificate(), load_private_key(key_path))
        root = create_root(now)
        _write_private(key_path, _key_pem(root.key))
        pem = root.certificate.public_bytes(serialization.Encoding.PEM)
        _write_public(self.root_cert_path, pem)
        return root

    def ensure_site(self, identity: str, now: dt.datetime) -> SiteCredentials:
        site_dir = self._site_dir(identity)
        cert_path, key_path = site_dir / "site.pem", site_dir / "site.key.pem"
        if cert_path.exists():
            return SiteCredentials(identity, load_certificate(cert_path),
                                   load_private_key(key_path))
        site = issue_site(self.ensure_root(now), identity, now)
        _write_private(key_path, _key_pem(site.key))
        _write_public(cert_path, site.certificate.public_bytes(serialization.Encoding.PEM))
        return site
