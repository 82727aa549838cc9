"""Intel TCB Info (v3, TDX) and QE Identity (v2, TD_QE): parsing and TCB level matching.

Both are served as `{"<name>": {...}, "signature": "<hex r||s>"}` and signed over the exact
bytes of the inner object as served: `split_signed` finds that object's byte span in the body
(json.JSONDecoder.raw_decode walks the top level) and parses the claims from those same bytes,
so what is checked and what is used can never differ. Signatures are checked in verify.py.

Matching (FORMATS.md): the first TCB level whose SGX components and PCESVN are <= the PCK's
and whose TDX components are <= the quote's TEE_TCB_SVN gives the status. With a TDX module
major version (TEE_TCB_SVN[1]) > 0, bytes 0-1 are left out and the module is matched against
its identity in `tdxModuleIdentities` instead. No level at all is a status of its own,
NoMatchingTcbLevel, which no policy can accept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...errors import ConfigError, MalformedEvidence, VerificationFailed
from ...timeutil import parse_instant
from .abi import EnclaveReport, TdQuoteBody

NO_MATCH = "NoMatchingTcbLevel"
STATUSES = ("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
            "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded",
            "Revoked")
TCB_INFO_ID, TCB_INFO_VERSION = "TDX", 3
QE_IDENTITY_ID, QE_IDENTITY_VERSION = "TD_QE", 2
COMPONENTS = 16
_WHITESPACE = " \t\n\r"


# --- the signed envelope ----------------------------------------------------------------------

@dataclass(frozen=True)
class SignedBody:
    """The inner object's exact bytes, its parsed value and the raw r||s signature."""

    body: bytes
    data: Mapping[str, Any]
    signature: bytes


def split_signed(served: bytes, name: str, what: str) -> SignedBody:
    try:
        text = bytes(served).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEvidence(f"{what} is not UTF-8 text") from None
    spans = _member_spans(text, what)
    for key in (name, "signature"):
        if key not in spans:
            raise MalformedEvidence(f"{what} has no {key!r}",
                                    expected=f'{{"{name}": {{...}}, "signature": "..."}}',
                                    found=sorted(spans))
    start, end = spans[name]
    body = text[start:end].encode("utf-8")  # the served bytes: UTF-8 decoding is one-to-one
    data = _strict_json(body, what)
    if not isinstance(data, dict):
        raise MalformedEvidence(f"{what}: {name!r} is not an object", found=type(data).__name__)
    signature = _hex_value(_strict_json(text[slice(*spans["signature"])].encode(), what),
                           f"{what} signature", 64)
    return SignedBody(body, data, signature)


def _member_spans(text: str, what: str) -> dict[str, tuple[int, int]]:
    """{key: (start, end)} of each value in the top-level object, as character offsets."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    position = _skip(text, _expect(text, _skip(text, 0), "{", what))
    if text.startswith("}", position):
        return _end(text, position + 1, spans, what)
    while True:
        key, position = _decode(decoder, text, _skip(text, position), what)
        if not isinstance(key, str) or key in spans:
            raise MalformedEvidence(f"{what} has a bad or repeated key", found=repr(key))
        start = _skip(text, _expect(text, _skip(text, position), ":", what))
        _, end = _decode(decoder, text, start, what)
        spans[key] = (start, end)
        position = _skip(text, end)
        if text[position:position + 1] != ",":
            return _end(text, _expect(text, position, "}", what), spans, what)
        position += 1


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position


def _expect(text: str, position: int, char: str, what: str) -> int:
    if text[position:position + 1] != char:
        raise MalformedEvidence(f"{what} is not a JSON object as served",
                                expected=repr(char), found=repr(text[position:position + 16]))
    return position + 1


def _end(text: str, position: int, spans: dict[str, tuple[int, int]],
         what: str) -> dict[str, tuple[int, int]]:
    if _skip(text, position) != len(text):
        raise MalformedEvidence(f"{what} has data after its JSON object")
    return spans


def _decode(decoder: json.JSONDecoder, text: str, position: int, what: str) -> tuple[Any, int]:
    try:
        return decoder.raw_decode(text, position)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvidence(f"{what} is not valid JSON", found=str(exc)) from None


def _strict_json(data: bytes, what: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            raise ValueError("repeated key in an object")
        return result

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(data, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvidence(f"{what} is not valid JSON", found=str(exc)) from None


# --- typed access to JSON values ------------------------------------------------------------------

def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise MalformedEvidence(f"{what}: {key!r} is missing or not {names}",
                                found=type(value).__name__)
    return value


def _int(data: Mapping[str, Any], key: str, what: str, *, bits: int) -> int:
    value = _get(data, key, int, what)
    if not 0 <= value < 1 << bits:
        raise MalformedEvidence(f"{what}: {key!r} out of range", expected=f"0..{(1 << bits) - 1}",
                                found=value)
    return value


def _hex_value(value: Any, what: str, size: int) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or len(raw) != size:
        raise MalformedEvidence(f"{what} is not {size} bytes of hex", found=repr(value)[:80])
    return raw


def _hex(data: Mapping[str, Any], key: str, what: str, size: int) -> bytes:
    return _hex_value(_get(data, key, str, what), f"{what}: {key!r}", size)


def _date(data: Mapping[str, Any], key: str, what: str) -> datetime:
    text = _get(data, key, str, what)
    try:
        return parse_instant(text)
    except ConfigError:
        raise MalformedEvidence(f"{what}: {key!r} is not an ISO 8601 time",
                                found=text[:40]) from None


def _list(data: Mapping[str, Any], key: str, what: str, *,
          optional: bool = False) -> Sequence[Any]:
    if optional and key not in data:
        return ()
    return _get(data, key, list, what)


def _each(items: Sequence[Any], parse: Callable[[Mapping[str, Any], str], Any],
          what: str) -> tuple[Any, ...]:
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedEvidence(f"{what}[{index}] is not an object")
        result.append(parse(item, f"{what}[{index}]"))
    return tuple(result)


# --- levels -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """What one level says: its status, its date and the advisories behind it."""

    status: str
    tcb_date: datetime
    advisory_ids: tuple[str, ...]


def _verdict(level: Mapping[str, Any], what: str) -> Verdict:
    advisories = _list(level, "advisoryIDs", what, optional=True)
    if not all(isinstance(item, str) for item in advisories):
        raise MalformedEvidence(f"{what}: advisoryIDs must be strings")
    return Verdict(_get(level, "tcbStatus", str, what), _date(level, "tcbDate", what),
                   tuple(advisories))


@dataclass(frozen=True)
class TcbLevel:
    sgx_svns: tuple[int, ...]
    pce_svn: int
    tdx_svns: tuple[int, ...]
    verdict: Verdict


def _svns(tcb: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    items = _list(tcb, key, what)
    if len(items) != COMPONENTS:
        raise MalformedEvidence(f"{what}: {key!r} must list {COMPONENTS} components",
                                found=len(items))
    # Real SVNs are bytes; Intel's QVL test data uses larger values, which then never match.
    return _each(items, lambda item, where: _int(item, "svn", where, bits=16), f"{what}.{key}")


def _tcb_level(level: Mapping[str, Any], what: str) -> TcbLevel:
    tcb = _get(level, "tcb", dict, what)
    return TcbLevel(_svns(tcb, "sgxtcbcomponents", what), _int(tcb, "pcesvn", what, bits=16),
                    _svns(tcb, "tdxtcbcomponents", what), _verdict(level, what))


@dataclass(frozen=True)
class IsvLevel:
    isv_svn: int
    verdict: Verdict


def _isv_level(level: Mapping[str, Any], what: str) -> IsvLevel:
    tcb = _get(level, "tcb", dict, what)
    return IsvLevel(_int(tcb, "isvsvn", what, bits=16), _verdict(level, what))


def _first_isv(levels: Sequence[IsvLevel], svn: int) -> Verdict | None:
    return next((level.verdict for level in levels if level.isv_svn <= svn), None)


# --- TCB Info -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModuleIdentity:
    id: str
    mrsigner: bytes
    attributes: bytes
    attributes_mask: bytes
    levels: tuple[IsvLevel, ...]


def _module(data: Mapping[str, Any], what: str) -> ModuleIdentity:
    levels = _each(_list(data, "tcbLevels", what, optional=True), _isv_level, f"{what}.tcbLevels")
    identity = data.get("id", "")
    if not isinstance(identity, str):
        raise MalformedEvidence(f"{what}: 'id' is not a string")
    return ModuleIdentity(identity, _hex(data, "mrsigner", what, 48),
                          _hex(data, "attributes", what, 8),
                          _hex(data, "attributesMask", what, 8), levels)


@dataclass(frozen=True)
class TcbInfo:
    signed: SignedBody
    issue_date: datetime
    next_update: datetime
    fmspc: bytes
    pce_id: bytes
    evaluation_number: int
    tdx_module: ModuleIdentity | None
    module_identities: tuple[ModuleIdentity, ...]
    levels: tuple[TcbLevel, ...]


def parse_tcb_info(served: bytes) -> TcbInfo:
    signed = split_signed(served, "tcbInfo", "TCB Info")
    data, what = signed.data, "TCB Info"
    _identify(data, what, TCB_INFO_ID, TCB_INFO_VERSION)
    if _int(data, "tcbType", what, bits=8) != 0:
        raise MalformedEvidence("unsupported TCB Info tcbType", expected=0,
                                found=data["tcbType"])
    module = data.get("tdxModule")
    return TcbInfo(
        signed=signed,
        issue_date=_date(data, "issueDate", what),
        next_update=_date(data, "nextUpdate", what),
        fmspc=_hex(data, "fmspc", what, 6),
        pce_id=_hex(data, "pceId", what, 2),
        evaluation_number=_int(data, "tcbEvaluationDataNumber", what, bits=32),
        tdx_module=None if module is None else _module(_get(data, "tdxModule", dict, what),
                                                       f"{what}.tdxModule"),
        module_identities=_each(_list(data, "tdxModuleIdentities", what, optional=True),
                                _module, f"{what}.tdxModuleIdentities"),
        levels=_each(_list(data, "tcbLevels", what), _tcb_level, f"{what}.tcbLevels"),
    )


def _identify(data: Mapping[str, Any], what: str, wanted_id: str, version: int) -> None:
    found = (data.get("id"), data.get("version"))
    if found != (wanted_id, version):
        raise MalformedEvidence(f"{what} is not the TDX kind ccattest reads",
                                expected=f"id {wanted_id!r}, version {version}",
                                found=f"id {found[0]!r}, version {found[1]!r}",
                                hint="fetch it from PCS v4 /tdx/certification/v4/...")


# --- QE Identity --------------------------------------------------------------------------------

@dataclass(frozen=True)
class QeIdentity:
    signed: SignedBody
    issue_date: datetime
    next_update: datetime
    evaluation_number: int
    miscselect: int
    miscselect_mask: int
    attributes: bytes
    attributes_mask: bytes
    mrsigner: bytes
    isv_prod_id: int
    levels: tuple[IsvLevel, ...]


def parse_qe_identity(served: bytes) -> QeIdentity:
    signed = split_signed(served, "enclaveIdentity", "QE Identity")
    data, what = signed.data, "QE Identity"
    _identify(data, what, QE_IDENTITY_ID, QE_IDENTITY_VERSION)
    return QeIdentity(
        signed=signed,
        issue_date=_date(data, "issueDate", what),
        next_update=_date(data, "nextUpdate", what),
        evaluation_number=_int(data, "tcbEvaluationDataNumber", what, bits=32),
        # MISCSELECT is printed as a big-endian number; the report holds it as a u32.
        miscselect=int.from_bytes(_hex(data, "miscselect", what, 4), "big"),
        miscselect_mask=int.from_bytes(_hex(data, "miscselectMask", what, 4), "big"),
        attributes=_hex(data, "attributes", what, 16),
        attributes_mask=_hex(data, "attributesMask", what, 16),
        mrsigner=_hex(data, "mrsigner", what, 32),
        isv_prod_id=_int(data, "isvprodid", what, bits=16),
        levels=_each(_list(data, "tcbLevels", what), _isv_level, f"{what}.tcbLevels"),
    )


# --- matching -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModuleMatch:
    id: str
    verdict: Verdict | None  # None: no level of the module identity matched


@dataclass(frozen=True)
class TcbResult:
    status: str
    tcb_date: datetime | None
    advisory_ids: tuple[str, ...]
    module: ModuleMatch | None  # set when the module was matched by its identity


def _masked(value: bytes, mask: bytes) -> bytes:
    return bytes(a & b for a, b in zip(value, mask, strict=True))


def _check_module(identity: ModuleIdentity, body: TdQuoteBody, name: str) -> None:
    if identity.mrsigner != body.mr_signer_seam:
        raise VerificationFailed(f"TDX module is not signed by the signer {name} names",
                                 expected=identity.mrsigner.hex(),
                                 found=body.mr_signer_seam.hex())
    if _masked(body.seam_attributes, identity.attributes_mask) != _masked(
            identity.attributes, identity.attributes_mask):
        raise VerificationFailed(f"TDX module attributes differ from {name}",
                                 expected=identity.attributes.hex(),
                                 found=body.seam_attributes.hex())


def module_identity_name(tee_tcb_svn: bytes) -> str:
    return f"TDX_{tee_tcb_svn[1]:02X}"


def _match_module(info: TcbInfo, body: TdQuoteBody) -> ModuleMatch | None:
    if body.tee_tcb_svn[1] == 0:
        if info.tdx_module is not None:
            _check_module(info.tdx_module, body, "TCB Info tdxModule")
        return None
    name = module_identity_name(body.tee_tcb_svn)
    identity = next((item for item in info.module_identities
                     if item.id.upper() == name), None)
    if identity is None:
        raise VerificationFailed(f"TCB Info has no identity for TDX module {name}",
                                 expected=name,
                                 found=[item.id for item in info.module_identities] or "none",
                                 hint="fetch current TCB Info for this FMSPC")
    _check_module(identity, body, f"TCB Info {name}")
    return ModuleMatch(name, _first_isv(identity.levels, body.tee_tcb_svn[0]))


def _level_matches(level: TcbLevel, sgx_svns: Sequence[int], pce_svn: int,
                   tee_tcb_svn: bytes, skip: int) -> bool:
    return (all(want <= have for want, have in zip(level.sgx_svns, sgx_svns, strict=True))
            and level.pce_svn <= pce_svn
            and all(level.tdx_svns[i] <= tee_tcb_svn[i] for i in range(skip, COMPONENTS)))


def converge(platform: str, module: str) -> str:
    """The platform's status, made worse by an outdated or revoked TDX module."""
    if NO_MATCH in (platform, module):
        return NO_MATCH
    if "Revoked" in (platform, module):
        return "Revoked"
    if module == "OutOfDate" and platform in ("UpToDate", "SWHardeningNeeded"):
        return "OutOfDate"
    if module == "OutOfDate" and platform in ("ConfigurationNeeded",
                                               "ConfigurationAndSWHardeningNeeded"):
        return "OutOfDateConfigurationNeeded"
    return platform


def match_tcb(info: TcbInfo, sgx_svns: Sequence[int], pce_svn: int,
              body: TdQuoteBody) -> TcbResult:
    """The platform's TCB status from TCB Info, the PCK's SVNs and the quote's TEE_TCB_SVN."""
    module = _match_module(info, body)
    skip = 0 if module is None else 2
    level = next((item for item in info.levels
                  if _level_matches(item, sgx_svns, pce_svn, body.tee_tcb_svn, skip)), None)
    if level is None:
        return TcbResult(NO_MATCH, None, (), module)
    verdict = level.verdict
    if module is None:
        return TcbResult(verdict.status, verdict.tcb_date, verdict.advisory_ids, None)
    if module.verdict is None:
        return TcbResult(NO_MATCH, verdict.tcb_date, verdict.advisory_ids, module)
    advisories = tuple(dict.fromkeys((*verdict.advisory_ids, *module.verdict.advisory_ids)))
    return TcbResult(converge(verdict.status, module.verdict.status),
                     min(verdict.tcb_date, module.verdict.tcb_date), advisories, module)


def match_qe(identity: QeIdentity, report: EnclaveReport) -> Verdict | None:
    """The QE's status; VerificationFailed when the QE report is not Intel's TD QE."""
    checks = (
        ("MRSIGNER", identity.mrsigner == report.mr_signer, identity.mrsigner.hex(),
         report.mr_signer.hex()),
        ("ISVPRODID", identity.isv_prod_id == report.isv_prod_id, identity.isv_prod_id,
         report.isv_prod_id),
        ("MISCSELECT", report.misc_select & identity.miscselect_mask
         == identity.miscselect & identity.miscselect_mask, f"{identity.miscselect:#010x}",
         f"{report.misc_select:#010x}"),
        ("ATTRIBUTES", _masked(report.attributes, identity.attributes_mask)
         == _masked(identity.attributes, identity.attributes_mask), identity.attributes.hex(),
         report.attributes.hex()),
    )
    for name, passed, expected, found in checks:
        if not passed:
            raise VerificationFailed(f"QE report {name} does not match the QE Identity",
                                     expected=expected, found=found)
    return _first_isv(identity.levels, report.isv_svn)
