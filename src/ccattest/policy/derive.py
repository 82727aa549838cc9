"""A policy derived from one verified, known-good piece of evidence (`policy init --from`).

The result is the commented starter template of that platform's section with its values set
to what the evidence showed, so that the same evidence appraises as affirming and every
other value is a decision the operator makes on purpose. What the evidence shows but a
policy should not pin by default (chip ids, TDX RTMRs) is written as a comment, and what
weakens a rule (debug, an out-of-date TCB) is set with a WARNING comment beside it.

Evidence that no policy should accept (a TDX TCB Intel does not rate, GPU measurements
that differ from NVIDIA's RIMs, a GPU outside CC mode) is refused with a ConfigError.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from ..errors import ConfigError
from ..platforms.base import VerifiedClaims
from ..text import one_of
from .snp import TCB_COMPONENTS
from .tdx import TcbStatus
from .templates import _HEADER, TEMPLATES

_PRODUCTS = ("Milan", "Genoa", "Turin")
_TCB_STATUSES: tuple[str, ...] = typing.get_args(TcbStatus)
_PLAIN = re.compile(r"\A[A-Za-z][A-Za-z0-9_.-]*\Z")
_HEX = re.compile(r"\A[0-9a-fA-F]{8,}\Z")
# vTPM PCRs pinned for an Azure CVM: firmware, boot loader and secure boot state.
_CVM_PCRS = range(8)

_AZURE_VTPM = """\

# The Azure CVM's vTPM, judged next to its hardware report (the section above).
# allow: false keeps Microsoft Azure Attestation tokens out; these vTPM rules still apply
# to native CVM evidence.
azure:
  allow: false
  # vTPM PCRs (SHA-256 bank) 0-7: firmware, boot loader and secure boot state. Add others
  # (8-15: the operating system) only where every site you accept has the same values.
  pcrs: {}
  require_secure_boot: false
  allow_console: true
"""


def derive_policy(verified: VerifiedClaims, *, policy_id: str | None = None) -> str:
    """A commented YAML policy that accepts exactly what `verified` shows (and requires its
    platform). Raises ConfigError for a platform it cannot derive from, or evidence no
    policy should accept."""
    derive = _DERIVERS.get(verified.platform)
    if derive is None:
        raise ConfigError(f"cannot derive a policy from {verified.platform} evidence",
                          expected=one_of(sorted(_DERIVERS)), found=verified.platform)
    header = _HEADER.format(required=verified.platform)
    if policy_id is not None:
        header = header.replace("version: 1\n", f"version: 1\nid: {_yaml(policy_id)}\n", 1)
    intro = (f"# Derived from verified {verified.platform} evidence: it accepts exactly what "
             "that evidence showed.\n# Review every value before you use it.\n")
    return intro + header + derive(verified.claims)


# --- editing the templates --------------------------------------------------------------------

def _set(text: str, key: str, value: Any, *, note: str | None = None) -> str:
    """The template line `  key: ...` (or its commented-out form) set to `value`, keeping the
    line's trailing comment; `note` becomes a comment line above it."""
    pattern = re.compile(rf"^  (?:# )?{re.escape(key)}: (?:.*?)(?P<comment>[ ]+#.*)?$", re.M)
    match = pattern.search(text)
    if match is None:
        raise AssertionError(f"no {key} in the template")  # a template and this module disagree
    comment = match.group("comment") or ""
    column = match.end() - len(comment.lstrip()) - match.start()  # where the '#' stood
    long = _long_list(value)  # digests: one per line, as people paste them
    line = f"  {key}:" if long else f"  {key}: {_yaml(value)}"
    if comment:
        line += " " * max(column - len(line), 2) + comment.lstrip()
    if long:
        line += "".join(f"\n    - {_yaml(item)}" for item in value)
    if note is not None:
        line = "".join(f"  # {part}\n" for part in note.split("\n")) + line
    return text[:match.start()] + line + text[match.end():]


def _comment(text: str, key: str, note: str) -> str:
    """A comment line above the template line of `key`."""
    return _set(text, key, _Raw(_line_value(text, key)), note=note)


class _Raw(str):
    """A value already written as YAML."""


def _line_value(text: str, key: str) -> str:
    match = re.search(rf"^  {re.escape(key)}: (.*?)(?:[ ]+#.*)?$", text, re.M)
    if match is None:
        raise AssertionError(f"no {key} in the template")
    return match.group(1)


def _yaml(value: Any) -> str:
    """One YAML flow value; strings quoted unless YAML would read them back unchanged."""
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # Digests always quoted: all-decimal hex would read back as a number.
        plain = _PLAIN.match(value) and not _HEX.match(value) and yaml.safe_load(value) == value
        return value if plain else json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_yaml(item)}" for key, item in value.items()) + "}"
    return "[" + ", ".join(_yaml(item) for item in value) + "]"


def _long_list(value: Any) -> bool:
    return isinstance(value, list) and any(len(_yaml(item)) > 24 for item in value)


def _nonzero(digest: Any) -> bool:
    """A hex field that carries something: all zeros means the guest did not set it."""
    return isinstance(digest, str) and digest.strip("0") != ""


def _unique(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(value for value in values if value is not None))


_WARN_DEBUG = "WARNING: the evidence is from a debuggable guest, so this policy allows it"


# --- software ---------------------------------------------------------------------------------

def _software(claims: Mapping[str, Any]) -> str:
    text = TEMPLATES["software"].format(measurements="")
    text = _set(text, "measurements", [claims["measurement"]])
    text = _set(text, "min_svn", int(claims["svn"]))
    if claims["debug"]:
        text = _set(text, "allow_debug", True, note=_WARN_DEBUG)
    return _set(text, "identities", [claims["identity"]],
                note="The site this evidence came from: add the other sites you accept.")


# --- SEV-SNP ----------------------------------------------------------------------------------

def _snp(claims: Mapping[str, Any]) -> str:
    text = TEMPLATES["snp"].format(measurements="")
    text = _set(text, "measurements", [claims["measurement"]])
    reported = claims["reported_tcb"]
    text = _set(text, "min_tcb", {name: reported[name] for name in TCB_COMPONENTS
                                  if name in reported},
                note="The evidence's reported TCB: older firmware is refused.")
    policy = claims["policy"]
    if policy["debug"]:
        text = _set(text, "allow_debug", True, note=_WARN_DEBUG)
    if policy["migrate_ma"]:
        text = _set(text, "allow_migrate_ma", True,
                    note="WARNING: the evidence's guest policy allows a migration agent")
    if not policy["smt"]:
        text = _set(text, "require_smt_disabled", True)
    text = _set(text, "vmpl", [claims["vmpl"]])
    text = _set(text, "min_guest_svn", int(claims["guest_svn"]))
    for key, claim in (("host_data", "host_data"), ("id_key_digests", "id_key_digest"),
                       ("author_key_digests", "author_key_digest")):
        if _nonzero(claims[claim]):
            text = _set(text, key, [claims[claim]])
    if _nonzero(claims["chip_id"]):  # zero when the chip id is masked (MASK_CHIP_ID)
        text = _comment(text, "chip_ids", f"This evidence's chip, to accept it alone: "
                                          f"{claims['chip_id']}")
    if claims["product"] in _PRODUCTS:
        text = _set(text, "products", [claims["product"]])
    text = _set(text, "signing_keys", [claims["signing_key"]])
    major, minor = str(claims["firmware"]["current"]).split(".")[:2]
    text = _set(text, "min_firmware", f"{major}.{minor}")
    if claims["revocation"] == "checked":
        text = _set(text, "require_revocation_check", True)
    return text


# --- TDX (and ITA tokens) ---------------------------------------------------------------------

def _status(status: Any, what: str) -> tuple[str, str | None]:
    """An evaluated TCB status a policy may accept, and the warning it needs if any."""
    if status not in _TCB_STATUSES:
        raise ConfigError(f"cannot derive a policy from evidence whose {what} status is "
                          f"{'not evaluated' if status is None else status}",
                          expected=one_of(_TCB_STATUSES), found=status,
                          hint="verify evidence from an up-to-date platform, with Intel's "
                               "collateral")
    if status == "UpToDate":
        return status, None
    return status, (f"WARNING: the evidence's {what} is {status}, not UpToDate; update the "
                    "platform and drop it from this list")


def _tdx(claims: Mapping[str, Any]) -> str:
    status, warning = _status(claims.get("tcb_status"), "platform TCB")
    qe_status, qe_warning = _status(claims.get("qe_tcb_status"), "QE TCB")
    text = TEMPLATES["tdx"].format(measurements="")
    text = _set(text, "accepted_tcb_statuses", [status], note=warning)
    text = _set(text, "accepted_qe_tcb_statuses", [qe_status], note=qe_warning)
    text = _set(text, "mrtd", [claims["mr_td"]])
    rtmrs = {index: [claims[f"rtmr{index}"]] for index in range(4)
             if claims.get(f"rtmr{index}") is not None}
    text = _comment(text, "rtmrs", "\n".join((
        "Not pinned: RTMR0 and RTMR3 vary with the VM's configuration and at run time; pin",
        "1 and 2 (boot loader, kernel, command line) once your image fixes them. This TD's:",
        *(f"  {index}: {_yaml(values)}" for index, values in rtmrs.items()))))
    for key in ("mr_config_id", "mr_owner", "mr_owner_config"):
        if _nonzero(claims.get(key)):
            text = _set(text, key, [claims[key]])
    text = _set(text, "mr_seam", [claims["mr_seam"]])
    if (claims.get("td_attributes") or {}).get("debug"):
        text = _set(text, "allow_debug", True, note=_WARN_DEBUG)
    text = _set(text, "xfam", [claims["xfam"]])
    text = _set(text, "min_tee_tcb_svn", claims["tee_tcb_svn"])
    if claims.get("collateral_expired"):
        text = _set(text, "expired_collateral", "warn",
                    note="WARNING: Intel's collateral had expired when the evidence was "
                         "verified; results stay 'warning' until it is current")
    return text


def _ita(claims: Mapping[str, Any]) -> str:
    # ITA reports one status, which covers the QE as well (as policy/ita.py reads it).
    return _tdx({**claims, "qe_tcb_status": claims.get("tcb_status")})


# --- Azure ------------------------------------------------------------------------------------

def _vtpm(claims: Mapping[str, Any]) -> str:
    pcrs = claims.get("pcrs") or {}
    pinned = {index: [pcrs[str(index)]] for index in _CVM_PCRS if str(index) in pcrs}
    config = claims.get("vm_configuration") or {}
    text = _set(_AZURE_VTPM, "pcrs", pinned)
    if config.get("secure-boot") is True:
        text = _set(text, "require_secure_boot", True)
    if config.get("console-enabled") is False:
        text = _set(text, "allow_console", False)
    return text


def _azure_snp(claims: Mapping[str, Any]) -> str:
    return _snp(claims["snp"]) + _vtpm(claims)


def _azure_tdx(claims: Mapping[str, Any]) -> str:
    return _tdx(claims["tdx"]) + _vtpm(claims)


def _maa(claims: Mapping[str, Any]) -> str:
    text = TEMPLATES["azure"].format(measurements="")
    text = _set(text, "attestation_types", _unique([claims.get("attestation_type")]))
    text = _set(text, "isolation_tees", _unique([claims.get("isolation_tee")]))
    text = _set(text, "compliance_statuses", _unique([claims.get("compliance_status")]))
    snp = claims.get("isolation_tee") == "sevsnpvm"
    policy = claims.get("policy") or {}
    if claims.get("debuggable") is not False:
        text = _set(text, "allow_debug", True, note="WARNING: the token does not say the "
                                                    "guest is not debuggable")
    if snp and policy.get("migrate_ma") is not False:
        text = _set(text, "allow_migration", True, note="WARNING: the token does not say "
                                                        "migration is off")
    if snp and policy.get("smt") is False:
        text = _set(text, "require_smt_disabled", True)
    if claims.get("secure_boot") is True:
        text = _set(text, "require_secure_boot", True)
    text = _set(text, "measurements", _unique([claims.get("launch_measurement")]))
    for key, claim in (("host_data", "host_data"), ("id_key_digests", "id_key_digest")):
        if _nonzero(claims.get(claim)):
            text = _set(text, key, [claims[claim]])
    if claims.get("guest_svn") is not None:
        text = _set(text, "min_guest_svn", int(claims["guest_svn"]))
    reported = claims.get("reported_tcb") or {}
    text = _set(text, "min_tcb", {name: reported.get(name, 0) for name in
                                  ("bootloader", "tee", "snp", "microcode")})
    if claims.get("vmpl") is not None:
        text = _set(text, "vmpl", [claims["vmpl"]])
    return text


# --- NVIDIA GPUs ------------------------------------------------------------------------------

def _nvgpu(claims: Mapping[str, Any]) -> str:
    gpus: list[Mapping[str, Any]] = list(claims.get("gpus") or [claims])
    text = TEMPLATES["nvgpu"]
    text = _set(text, "architectures", _unique([gpu.get("arch") for gpu in gpus]))
    text = _set(text, "driver_versions", _unique([gpu.get("driver_version") for gpu in gpus]))
    text = _set(text, "vbios_versions", _unique([gpu.get("vbios_version") for gpu in gpus]))
    matched = [(gpu.get("measurements") or {}).get("matched") for gpu in gpus]
    if False in matched:
        raise ConfigError("cannot derive a policy from a GPU whose measurements differ from "
                          "NVIDIA's RIMs", expected="measurements matching the RIMs",
                          found="a mismatch", hint="verify a GPU with a released driver and "
                                                   "VBIOS")
    if None in matched:
        text = _set(text, "require_rim_match", False,
                    note="WARNING: the evidence was verified without NVIDIA's RIMs; set true "
                         "once the verifier compares them")
    _cc_state(claims)
    if all(gpu.get("ppcie") is True for gpu in gpus):
        text = _set(text, "require_ppcie", True)
    revocations = {gpu.get("revocation") for gpu in gpus}
    if revocations == {"good"}:
        text = _set(text, "require_revocation_check", True)
    if "on_hold" in revocations:
        text = _set(text, "allow_cert_hold", True,
                    note="WARNING: a device certificate of the evidence is on hold")
    return text


def _cc_state(claims: Mapping[str, Any]) -> None:
    mode, devtools = claims.get("cc_mode"), claims.get("devtools")
    if mode is not None and (mode != "on" or devtools is not False):
        raise ConfigError("cannot derive a policy from a GPU that is not in CC mode",
                          expected="CC mode on, DevTools off",
                          found=f"CC mode {mode}, DevTools {'on' if devtools else 'off'}")


_DERIVERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "software": _software, "snp": _snp, "tdx": _tdx, "ita": _ita, "azure-snp": _azure_snp,
    "azure-tdx": _azure_tdx, "maa": _maa, "nvgpu": _nvgpu, "nvgpu-nras": _nvgpu,
}

__all__ = ["derive_policy"]
