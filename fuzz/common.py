"""What every harness shares: seeds, the typed-error rule, libFuzzer's limits.

A harness is `fuzz/fuzz_<target>.py`: it imports the code under test inside `instrumented()`
(so atheris records coverage of ccattest's own bytecode), then calls `main(name, entry,
seeds)`. `entry(data)` feeds one input to a parser; a CCAttestError is the expected answer
to bad input, anything else escapes and libFuzzer records it as a crash.

    python fuzz/fuzz_snp_report.py -runs=100000            # corpus in .fuzz/corpus/<name>
    python fuzz/fuzz_snp_report.py .fuzz/crashes/snp_report/crash-...   # replay one input

Limits on every input (unless given on the command line): `-timeout=1` (no input may take
over a second), `-rss_limit_mb=2048` (memory bounded), `-max_len` large enough for the
largest seed plus room to grow. Crashes land in .fuzz/crashes/<name>/.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[1]
FUZZ_DIR = REPO / ".fuzz"
TIMEOUT_S = 1
RSS_LIMIT_MB = 2048
MIN_MAX_LEN = 4096
# A fixed verification time inside the validity windows of the vectors (see MANIFEST.md)
# and of the synthetic fixtures, so verification paths run past the validity checks.
AT_ISO = "2026-11-26T00:00:00+00:00"


def vectors_dir() -> Path:
    return Path(os.environ.get("CCATTEST_VECTORS", REPO.parent / "shared" / "vectors"))


def vectors(*patterns: str) -> list[bytes]:
    """The bytes of every vector file matching the glob patterns (relative to the vectors
    folder); none when the folder is absent (synthetic seeds still apply)."""
    root = vectors_dir()
    found: list[bytes] = []
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                found.append(path.read_bytes())
    return found


def instrumented() -> contextlib.AbstractContextManager[None]:
    """Import ccattest modules inside this to give libFuzzer coverage of them."""
    return atheris.instrument_imports(include=["ccattest"])


def synthetic(make: Callable[[], Iterable[bytes]]) -> list[bytes]:
    """Seeds built from ccattest.testing fixtures; a fixture that fails to build is a
    harness bug, so it propagates."""
    return [bytes(item) for item in make()]


def _has_flag(argv: list[str], flag: str) -> bool:
    return any(arg.startswith(f"-{flag}=") for arg in argv)


def _corpus_dirs(argv: list[str]) -> list[str]:
    return [arg for arg in argv[1:] if not arg.startswith("-")]


def _write_seeds(corpus: Path, seeds: Iterable[bytes]) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        name = "seed-" + hashlib.sha1(seed).hexdigest()  # noqa: S324 - a file name, not a MAC
        path = corpus / name
        if not path.exists():
            path.write_bytes(seed)


def libfuzzer_args(name: str, argv: list[str], seeds: list[bytes]) -> list[str]:
    """argv with the defaults every run needs; seeds written into the first corpus folder
    (.fuzz/corpus/<name> when none is named). A single file argument is a replay."""
    argv = list(argv)
    corpora = _corpus_dirs(argv)
    replay = bool(corpora) and all(Path(c).is_file() for c in corpora)
    if not replay:
        if not corpora:
            corpus = FUZZ_DIR / "corpus" / name
            argv.append(str(corpus))
            corpora = [str(corpus)]
        _write_seeds(Path(corpora[0]), seeds)
    if not _has_flag(argv, "artifact_prefix"):
        crashes = FUZZ_DIR / "crashes" / name
        crashes.mkdir(parents=True, exist_ok=True)
        argv.append(f"-artifact_prefix={crashes}/")
    defaults = {
        "timeout": TIMEOUT_S,
        "rss_limit_mb": RSS_LIMIT_MB,
        "malloc_limit_mb": RSS_LIMIT_MB,
        "max_len": max([MIN_MAX_LEN, *(2 * len(s) for s in seeds)]),
    }
    for flag, value in defaults.items():
        if not _has_flag(argv, flag):
            argv.append(f"-{flag}={value}")
    return argv


def expect_typed(entry: Callable[[bytes], object]) -> Callable[[bytes], None]:
    """The property under test: bad input raises a CCAttestError or nothing at all."""
    from ccattest.errors import CCAttestError

    def one_input(data: bytes) -> None:
        with contextlib.suppress(CCAttestError):
            entry(data)

    return one_input


def main(name: str, entry: Callable[[bytes], object], seeds: list[bytes]) -> None:
    if not seeds:
        raise SystemExit(f"fuzz {name}: no seeds (vectors at {vectors_dir()}?)")
    import logging

    logging.disable(logging.CRITICAL)  # verifiers log each refusal; a run would drown in them
    one_input = expect_typed(entry)
    argv = libfuzzer_args(name, sys.argv, seeds)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def split_mode(data: bytes, modes: int) -> tuple[int, bytes]:
    """(mode, rest): the first byte picks one of `modes` ways to use the rest."""
    if not data:
        return 0, b""
    return data[0] % modes, data[1:]


def with_mode(mode: int, seeds: Iterable[bytes]) -> list[bytes]:
    return [bytes([mode]) + seed for seed in seeds]


def json_object(data: bytes) -> dict | None:
    """`data` as a JSON object, or None: the signed-claims modes only sign what parses."""
    import json

    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
