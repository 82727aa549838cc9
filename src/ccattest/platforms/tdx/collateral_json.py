"""TDX collateral as one JSON document (a collateral folder is read by pcs.collateral_from_path).

The JSON shape is the one Phala's dcap-qvl calls QuoteCollateralV3 (and its sample
`tdx_quote_collateral.json`): PEM issuer chains as text, TCB Info and QE Identity as the exact
inner JSON text Intel signed with the signature beside it in hex, CRLs as hex DER. Intel
signs the inner object's bytes, so the served body is rebuilt around that text unchanged.
A `tcb_info` / `qe_identity` that is already a whole served body (no `*_signature` key) is
taken as it is.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from typing import Any

from ...errors import MalformedEvidence
from .collateral import TdxCollateral
from .tcb import split_signed

MAX_JSON_BYTES = 4 * 1024 * 1024
_SIGNED = {"tcb_info": "tcbInfo", "qe_identity": "enclaveIdentity"}
_CHAINS = ("tcb_info_issuer_chain", "qe_identity_issuer_chain", "pck_crl_issuer_chain")
_CRLS = ("pck_crl", "root_ca_crl")


def collateral_from_json(data: bytes, *, source: str = "json") -> TdxCollateral:
    """TdxCollateral from the dcap-qvl JSON shape; MalformedEvidence when it does not fit."""
    document = _document(data)
    values: dict[str, bytes] = {}
    for name, inner in _SIGNED.items():
        values[name] = _served(document, name, inner)
    for name in _CHAINS:
        values[name] = _text(document, name).encode("utf-8")
    for name in _CRLS:
        values[name] = _crl(_text(document, name), name)
    return TdxCollateral(**values, source=source)


def collateral_to_json(collateral: TdxCollateral) -> bytes:
    """The inverse: what `collateral_from_json` reads (e.g. for an evidence endorsement)."""
    document: dict[str, str] = {}
    for name, inner in _SIGNED.items():
        signed = split_signed(getattr(collateral, name), inner, name)
        document[name] = signed.body.decode("utf-8")
        document[f"{name}_signature"] = signed.signature.hex()
    for name in _CHAINS:
        document[name] = getattr(collateral, name).decode("utf-8", "replace")
    for name in _CRLS:
        document[name] = getattr(collateral, name).hex()
    return json.dumps(document, indent=1).encode()


def _document(data: bytes) -> Mapping[str, Any]:
    if len(data) > MAX_JSON_BYTES:
        raise MalformedEvidence("collateral JSON is too large",
                                expected=f"at most {MAX_JSON_BYTES} bytes", found=len(data))
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedEvidence("collateral is not JSON", found=str(exc)) from None
    if not isinstance(document, dict):
        raise MalformedEvidence("collateral JSON is not an object", found=type(document).__name__)
    return document


def _text(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedEvidence(f"collateral JSON has no {name!r} text",
                                found=type(value).__name__)
    return value


def _served(document: Mapping[str, Any], name: str, inner: str) -> bytes:
    text = _text(document, name)
    signature = document.get(f"{name}_signature")
    if signature is None:
        return text.encode("utf-8")  # already the whole served body
    if not isinstance(signature, str):
        raise MalformedEvidence(f"collateral JSON {name}_signature is not text")
    try:
        raw = bytes.fromhex(signature)
    except ValueError:
        raise MalformedEvidence(f"collateral JSON {name}_signature is not hex") from None
    _check_object(text, name)
    # Only hex goes into the rebuilt envelope: nothing in it can add a key.
    return f'{{"{inner}":{text},"signature":"{raw.hex()}"}}'.encode()


def _check_object(text: str, name: str) -> None:
    try:
        value, end = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
    except (ValueError, RecursionError) as exc:
        raise MalformedEvidence(f"collateral JSON {name} is not JSON", found=str(exc)) from None
    if not isinstance(value, dict) or text[end:].strip():
        raise MalformedEvidence(f"collateral JSON {name} is not one JSON object")


def _crl(text: str, name: str) -> bytes:
    if text.lstrip().startswith("-----BEGIN"):
        return text.encode("ascii", "replace")
    try:
        return binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        raise MalformedEvidence(f"collateral JSON {name} is neither hex DER nor PEM") from None
