"""Reference values: typed hex digests, inline or read from files a policy names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from ..errors import ConfigError


def hex_digest(size: int):
    def check(value: str) -> str:
        text = value.strip().lower()
        text = text[2:] if text.startswith("0x") else text
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"expected hex digits, found '{value}'") from None
        if len(raw) != size:
            raise ValueError(f"expected {size} bytes ({2 * size} hex digits), found {len(raw)}")
        return text

    return AfterValidator(check)


Sha384Hex = Annotated[str, hex_digest(48)]


def read_digest_file(path: Path, size: int) -> list[str]:
    """One hex digest per line; blank lines and '#' comments ignored; errors name the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read reference values from {path}", found=str(exc)) from None
    check = hex_digest(size).func
    digests = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            digests.append(check(text))
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: invalid reference value", found=str(exc)) from None
    return digests
