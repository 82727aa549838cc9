"""The GPU attester: an attestation report and certificate chain per GPU, through NVML
(`pynvml`, from the `nvidia-ml-py` package: the `[gpu]` extra).

The CC state is read first: with CC mode off the driver answers both evidence calls with
NVML_ERROR_UNKNOWN (seen on an H200, driver 580.159.04), which says nothing; ccattest says
"CC mode is off" instead, at once. No waiting for the GPUs' ready state: a report can be
taken before the GPUs accept work, and that is when a verifier wants one.

One GPU: `report` is its NVML report and `endorsements["cert_chain"]` its PEM chain. Several
GPUs: `report` is NVIDIA's serialized evidence JSON (abi.dump_evidence_list), every GPU
answering the same nonce; the verifier accepts both. Either way `log` carries the CC state
NVML reported (see the package docstring): unsigned, and said to be so in the claims.

`declared_evidence` builds the same evidence from a report and chain taken elsewhere (NVIDIA's
tools, a saved run) and the CC state the operator read on that machine.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

from ...errors import ConfigError, PlatformUnavailable
from ...evidence import Evidence
from . import CC_STATE_LOG_TYPE, PLATFORM
from .abi import NONCE_SIZE, GpuEvidence, dump_evidence_list, is_evidence_list, parse_report

NVML_ARCH = {9: "HOPPER", 10: "BLACKWELL"}  # nvmlDeviceGetArchitecture
ENVIRONMENTS = {0: "unavailable", 1: "sim", 2: "prod"}
_UNSUPPORTED = ("NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_FUNCTION_NOT_FOUND")
_NO_LIBRARY = ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVML_ERROR_DRIVER_NOT_LOADED")
_ON_OFF = ("on", "off")
_CC_HINT = ("enable CC mode on the GPU (NVIDIA's gpu-admin-tools, --set-cc-mode=on) and run "
            "inside a confidential VM")


def load_nvml() -> Any:
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        raise PlatformUnavailable("NVML Python bindings are not installed",
                                  expected="the pynvml module (package nvidia-ml-py)",
                                  hint="pip install 'ccattest[gpu]'") from None


def error_name(nvml: Any, error: BaseException) -> str:
    """NVML_ERROR_UNKNOWN (999) and the like, from the module's own constants."""
    code = getattr(error, "value", None)
    for name in dir(nvml):
        if name.startswith("NVML_ERROR_") and getattr(nvml, name) == code:
            return f"{name} ({code})"
    return f"NVML error {code}" if code is not None else type(error).__name__


class NvgpuAttester:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, *, nvml: Any = None, gpus: Sequence[int] | None = None) -> None:
        self._nvml = nvml
        self.gpus = None if gpus is None else tuple(gpus)

    def collect(self, report_data: bytes) -> Evidence:
        if len(report_data) != NONCE_SIZE:
            raise ConfigError("the GPU nonce must be 32 bytes", expected=NONCE_SIZE,
                              found=len(report_data), hint="evidence.bind(..., size=32)")
        nvml = self._nvml if self._nvml is not None else load_nvml()
        with _session(nvml):
            state = cc_state(nvml)
            indices = self.gpus if self.gpus is not None else range(_gpu_count(nvml))
            items = [_gpu_evidence(nvml, index, bytes(report_data)) for index in indices]
        if not items:
            raise PlatformUnavailable("no GPU selected", found=f"gpus={self.gpus}")
        log = (cc_state_entry(**state),)
        if len(items) == 1:
            return Evidence(PLATFORM, items[0].evidence, {"cert_chain": items[0].certificate},
                            log=log)
        return Evidence(PLATFORM, dump_evidence_list(items), {}, log=log)


def cc_state_entry(*, cc_mode: str, devtools: str, environment: str = "unknown"
                   ) -> Mapping[str, str]:
    """The evidence log entry that carries the CC state an attester read from NVML."""
    for name, value in (("cc_mode", cc_mode), ("devtools", devtools)):
        if value not in _ON_OFF:
            raise ConfigError(f"GPU {name} must be on or off", expected="on or off",
                              found=value)
    if not isinstance(environment, str) or not environment:
        raise ConfigError("GPU CC environment must be a name",
                          expected="prod, sim, unavailable or unknown", found=environment)
    return {"type": CC_STATE_LOG_TYPE, "cc_mode": cc_mode, "devtools": devtools,
            "environment": environment}


def declared_evidence(report: bytes, cert_chain: bytes | None = None, *,
                      cc_state: Mapping[str, str] | None = None,
                      attester: str | None = None) -> Evidence:
    """nvgpu evidence from a report taken elsewhere: one GPU's NVML report (raw or hex) with
    its PEM chain, or NVIDIA's serialized multi-GPU JSON (no chain: each entry has its own),
    plus the CC state the attester declares ({"cc_mode", "devtools", "environment"}), which
    the verifier passes on as unsigned. Without cc_state the claims say "not reported"."""
    if is_evidence_list(report) != (cert_chain is None):
        raise ConfigError("a single GPU report needs its certificate chain; a multi-GPU "
                          "evidence list carries its own", found="a chain with an evidence list"
                          if cert_chain is not None else "a report without its chain")
    log = () if cc_state is None else (_declared_state(cc_state),)
    endorsements = {} if cert_chain is None else {"cert_chain": bytes(cert_chain)}
    return Evidence(PLATFORM, bytes(report), endorsements, attester=attester, log=log)


def _declared_state(state: Mapping[str, str]) -> Mapping[str, str]:
    unknown = sorted(set(state) - {"cc_mode", "devtools", "environment"})
    if unknown:
        raise ConfigError("unknown keys in the declared GPU CC state",
                          expected="cc_mode, devtools, environment", found=", ".join(unknown))
    return cc_state_entry(cc_mode=state.get("cc_mode", ""), devtools=state.get("devtools", ""),
                          environment=state.get("environment", "unknown"))


@contextmanager
def _session(nvml: Any) -> Iterator[None]:
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        name = error_name(nvml, error)
        raise PlatformUnavailable(
            "NVML cannot start: no NVIDIA driver" if name.split()[0] in _NO_LIBRARY
            else "NVML cannot start", found=name,
            hint="install the NVIDIA driver and run where a GPU is visible") from None
    try:
        yield
    finally:  # a failed shutdown undoes nothing: the evidence (or the error) is what matters
        with suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def cc_state(nvml: Any) -> dict[str, str]:
    """{"cc_mode", "devtools", "environment"}; PlatformUnavailable when CC mode is off."""
    try:
        state = nvml.nvmlSystemGetConfComputeState()
    except nvml.NVMLError as error:
        name = error_name(nvml, error)
        raise PlatformUnavailable("this driver or GPU does not report a confidential-computing "
                                  "state" if name.split()[0] in _UNSUPPORTED
                                  else "NVML cannot read the CC state", found=name,
                                  hint="GPU CC needs a Hopper or Blackwell GPU and driver "
                                       "535 or later") from None
    devtools = "on" if state.devToolsMode else "off"
    if not state.ccFeature:
        raise PlatformUnavailable("CC mode is off on this machine's GPUs: NVML produces no "
                                  "attestation evidence", expected="CC feature enabled",
                                  found=f"ccFeature 0, devToolsMode {state.devToolsMode}",
                                  hint=_CC_HINT)
    environment = ENVIRONMENTS.get(state.environment, f"unknown({state.environment})")
    return {"cc_mode": "on", "devtools": devtools, "environment": environment}


def _gpu_count(nvml: Any) -> int:
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError as error:
        raise PlatformUnavailable("NVML cannot count the GPUs",
                                  found=error_name(nvml, error)) from None
    if count == 0:
        raise PlatformUnavailable("no NVIDIA GPU on this machine", found="0 devices")
    return count


def _call(nvml: Any, what: str, index: int, function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except nvml.NVMLError as error:
        name = error_name(nvml, error)
        hint = ("the driver answers this when CC mode is off or the GPU is not in CC mode"
                if name.startswith("NVML_ERROR_UNKNOWN") else None)
        raise PlatformUnavailable(f"NVML could not {what} of GPU {index}", found=name,
                                  hint=hint) from None


def _gpu_evidence(nvml: Any, index: int, nonce: bytes) -> GpuEvidence:
    handle = _call(nvml, "open the device", index, nvml.nvmlDeviceGetHandleByIndex, index)
    result = _call(nvml, "get the attestation report", index,
                   nvml.nvmlDeviceGetConfComputeGpuAttestationReport, handle, nonce)
    report = _sized(result.attestationReport, result.attestationReportSize, "report", index)
    certificate = _call(nvml, "get the certificate chain", index,
                        nvml.nvmlDeviceGetConfComputeGpuCertificate, handle)
    chain = _sized(certificate.attestationCertChain, certificate.attestationCertChainSize,
                   "certificate chain", index)
    if parse_report(report).nonce != nonce:
        raise PlatformUnavailable(f"GPU {index} answered another nonce than ours",
                                  expected=nonce.hex(), hint="another process may share the "
                                  "GPU's attestation interface; collect again")
    code = _call(nvml, "read the architecture", index, nvml.nvmlDeviceGetArchitecture, handle)
    arch = NVML_ARCH.get(code)
    if arch is None:
        raise PlatformUnavailable(f"GPU {index} is not a Hopper or Blackwell GPU",
                                  expected="NVML architecture 9 or 10", found=code)
    return GpuEvidence(arch=arch, certificate=chain, evidence=report, nonce=nonce)


def _sized(buffer: Any, size: int, what: str, index: int) -> bytes:
    if not 0 < size <= len(buffer):
        raise PlatformUnavailable(f"NVML returned an empty or oversized {what} for GPU {index}",
                                  expected=f"1 to {len(buffer)} bytes", found=size)
    return bytes(buffer[:size])
