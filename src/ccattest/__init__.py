"""ccattest: confidential-computing attestation for federated systems."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Read from the installed metadata only when asked: importlib.metadata costs ~30 ms,
    # which every `ccattest` command would otherwise pay at start-up.
    if name != "__version__":
        raise AttributeError(f"module 'ccattest' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ccattest")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+source"


__all__ = ["__version__"]
