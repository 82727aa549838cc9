"""What every command shares: consoles, exit codes, error output and option parsers.

Kept cheap to import: `ccattest --help` must not pay for the verifiers, pydantic policy
models or HTTP clients; each command imports what it needs when it runs.
"""

from __future__ import annotations

import difflib
import sys
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ..errors import CCAttestError, ConfigError, VerificationFailed

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_WARNING = 0, 1, 2, 3

# Every evidence platform the registry knows, in the order `ccattest platforms` lists them.
PLATFORMS = ("software", "snp", "tdx", "nvgpu", "nvgpu-nras", "azure-snp", "azure-tdx",
             "maa", "ita")
COLLECT_PLATFORMS = ("software", "snp", "tdx", "nvgpu")

DEFAULT_CACHE = Path("~/.cache/ccattest/collateral")
# platforms.software.pki.DEFAULT_KEY_DIR, repeated so that --help need not import the PKI.
DEFAULT_KEY_DIR = Path("~/.ccattest/dev")
CacheOption = Annotated[Path, typer.Option(
    "--cache", envvar="CCATTEST_COLLATERAL", metavar="DIR", help="Collateral cache folder.")]
KeyDirOption = Annotated[Path, typer.Option(
    "--key-dir", envvar="CCATTEST_KEY_DIR", metavar="DIR",
    help="Development keys (software root, site keys, result-signing key).")]
AtOption = Annotated[str | None, typer.Option(
    "--at", metavar="TIME", help="Verify as of this ISO 8601 time (default: now).")]





@cache
def out() -> Console:
    from rich.console import Console

    return Console(highlight=False)


@cache
def err() -> Console:
    from rich.console import Console

    # Not a terminal (a log, a pipe): never hard-wrap, so a URL or a path stays on one line.
    return Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())


def fail(error: CCAttestError) -> NoReturn:
    from ..render import print_error

    print_error(sys.stderr, error)
    raise typer.Exit(EXIT_REJECTED if isinstance(error, VerificationFailed) else EXIT_USAGE)


def parse_hex(value: str, what: str, *, size: int | None = None) -> bytes:
    digits = value.strip().removeprefix("0x")
    try:
        data = bytes.fromhex(digits)
    except ValueError:
        raise ConfigError(f"{what} is not hex", expected="hexadecimal digits",
                          found=value or "(empty)") from None
    if size is not None and len(data) != size:
        raise ConfigError(f"{what} has the wrong length",
                          expected=f"{size} bytes ({2 * size} hex digits)",
                          found=f"{len(data)} bytes ({len(digits)} hex digits)")
    return data


def parse_at(value: str | None) -> datetime:
    from ..timeutil import parse_instant, utcnow

    return parse_instant(value) if value else utcnow()


def read_file(path: Path, what: str = "file") -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}",
                          hint="check the path (relative paths start in the current folder)"
                          ) from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a folder, not a file: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}", found=exc.strerror) from None


def platform_name(value: str | None, choices: tuple[str, ...] = PLATFORMS) -> str | None:
    """A platform as the user typed it: any case; a typo gets a suggestion."""
    if value is None:
        return None
    name = value.strip().lower().replace("_", "-")
    if name in choices:
        return name
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    raise ConfigError(f"unknown platform {value!r}"
                      + (f": did you mean {close[0]!r}?" if close else ""),
                      expected="one of " + ", ".join(choices),
                      hint="`ccattest platforms` lists them with what each verifies")


def choice_list(values: tuple[str, ...]) -> str:
    return "|".join(values)
