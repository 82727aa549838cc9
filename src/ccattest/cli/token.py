"""`ccattest token`: signed attestation results (EAR JWTs) and their keys."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import CCAttestError, ConfigError
from .app import token_app
from .common import DEFAULT_KEY_DIR, AtOption, KeyDirOption, fail, parse_at, parse_hex, read_file


@token_app.command("verify")
def token_verify(
    token: Annotated[str, typer.Argument(metavar="TOKEN", help="The JWT, or a file holding it.")],
    jwks_file: Annotated[Path, typer.Option(
        "--jwks", metavar="FILE", help="JWKS file of trusted keys.")],
    audience: Annotated[str | None, typer.Option(
        metavar="TEXT", help="Required audience.")] = None,
    nonce: Annotated[str | None, typer.Option(metavar="HEX", help="Required eat_nonce.")] = None,
    subject: Annotated[str | None, typer.Option(
        metavar="NAME", help="The attester it must be about (its sub): without it, another "
        "site's token relayed with your nonce would pass.")] = None,
    at: AtOption = None,
) -> None:
    """Verify a signed attestation result (EAR JWT) and print its claims."""
    from ..tokens import load_jwks, verify_token

    try:
        text = _token_text(token)
        read_file(jwks_file, "JWKS file")  # "not found" in words before the JSON checks
        keys = load_jwks(jwks_file)
        claims = verify_token(text, keys, at=parse_at(at), audience=audience,
                              nonce=parse_hex(nonce, "--nonce") if nonce else None,
                              subject=subject)
    except CCAttestError as error:
        fail(error)
    sys.stdout.write(json.dumps(claims, indent=2) + "\n")


def _token_text(value: str) -> str:
    """The JWT itself, or the text of the file that holds it."""
    if value.count(".") == 2 and "/" not in value and len(value) > 40:
        return value.strip()
    data = read_file(Path(value), "token file")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{value} is not a token: it holds binary data",
                          expected="a JWT in compact form (three base64url parts joined by "
                          "dots)", found=f"{len(data)} bytes starting {data[:8].hex()}") from None


@token_app.command("jwks")
def token_jwks(key_dir: KeyDirOption = DEFAULT_KEY_DIR) -> None:
    """Print the JWKS of this verifier's result-signing key (created on first use)."""
    from ..tokens import jwks, load_or_create_signing_key

    try:
        key = load_or_create_signing_key(Path(key_dir).expanduser() / "verifier.key.pem")
    except CCAttestError as error:
        fail(error)
    sys.stdout.write(json.dumps(jwks([key]), indent=2) + "\n")
