"""Shared by the SNP and TDX verification-cache tests: flip a byte, empty every lru cache
of some modules, and name a verification's outcome so warm and cold runs can be compared."""

from __future__ import annotations

from types import ModuleType

from ccattest.errors import CCAttestError


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


def clear_caches(*modules: ModuleType) -> None:
    for module in modules:
        for value in vars(module).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()


def outcome(verifier, evidence, report_data, at) -> str:
    try:
        verifier.verify(evidence, report_data=report_data, at=at)
    except CCAttestError as error:
        return f"{type(error).__name__}: {error.message}"
    return "verified"
