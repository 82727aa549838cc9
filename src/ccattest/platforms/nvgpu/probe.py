"""What NVML says on this machine, in a few lines: `python -m ccattest.platforms.nvgpu.probe`.

Driver, GPUs, CC state, DevTools, and whether the attestation report and certificate calls
work or the exact NVML error. Every NVML call runs in a daemon thread with a deadline, so a
wedged driver costs at most the timeout per call, never a hang. Exits 0 whenever it printed
a diagnosis (a machine without NVML or without CC is a diagnosis, not a failure).
Needs only the standard library and pynvml (nvidia-ml-py).
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, TextIO

from ...errors import PlatformUnavailable
from .collect import ENVIRONMENTS, NVML_ARCH, error_name, load_nvml

DEFAULT_TIMEOUT = 10.0


class _Timeout(Exception):
    pass


def bounded(function: Callable[..., Any], *args: Any, timeout: float) -> Any:
    """function(*args) in a daemon thread; its exception re-raised, _Timeout past `timeout`."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # handed to the caller as is
            outcome["error"] = error

    worker = threading.Thread(target=run, name="nvml-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Timeout(f"no answer within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class _Probe:
    def __init__(self, nvml: Any, out: TextIO, timeout: float) -> None:
        self.nvml, self.out, self.timeout = nvml, out, timeout
        self.evidence_ok: bool | None = None  # None: no evidence call was made

    def say(self, text: str) -> None:
        self.out.write(text + "\n")

    def call(self, label: str, name: str, *args: Any) -> tuple[bool, Any]:
        """(True, value) or (False, what went wrong), the failure printed under `label`."""
        function = getattr(self.nvml, name, None)
        if function is None:
            self.say(f"{label}: not in these bindings ({name})")
            return False, "missing"
        try:
            return True, bounded(function, *args, timeout=self.timeout)
        except _Timeout as error:
            problem = f"timed out ({error})"
        except self.nvml.NVMLError as error:
            problem = f"{error_name(self.nvml, error)}: {error}"
        except Exception as error:  # a probe reports, it does not crash
            problem = f"{type(error).__name__}: {error}"
        self.say(f"{label}: {problem}")
        return False, problem

    def run(self) -> str:
        ok, _ = self.call("nvmlInit", "nvmlInit")
        if not ok:
            return "NVML does not start: no usable NVIDIA driver here"
        try:
            return self._inspect()
        finally:
            self.call("nvmlShutdown", "nvmlShutdown")

    def _inspect(self) -> str:
        ok, driver = self.call("driver", "nvmlSystemGetDriverVersion")
        if ok:
            self.say(f"driver: {_text(driver)}")
        ok, count = self.call("GPUs", "nvmlDeviceGetCount")
        if not ok or not count:
            return "no GPU visible to NVML" if ok else "NVML cannot count the GPUs"
        self.say(f"GPUs: {count}")
        handles = [self._gpu(index) for index in range(int(count))]
        cc = self._cc_state()
        for index, handle in enumerate(handles):
            if handle is not None:
                self._evidence(index, handle)
        return self._diagnosis(cc)

    def _gpu(self, index: int) -> Any:
        ok, handle = self.call(f"GPU {index}", "nvmlDeviceGetHandleByIndex", index)
        if not ok:
            return None
        details = []
        for label, name in (("name", "nvmlDeviceGetName"), ("VBIOS", "nvmlDeviceGetVbiosVersion"),
                            ("architecture", "nvmlDeviceGetArchitecture")):
            got, value = self.call(f"GPU {index} {label}", name, handle)
            if got:
                shown = (f"{NVML_ARCH.get(value, 'other')} ({value})" if label == "architecture"
                         else _text(value))
                details.append(f"{label} {shown}")
        self.say(f"GPU {index}: " + ", ".join(details))
        return handle

    def _cc_state(self) -> dict[str, Any] | None:
        ok, state = self.call("CC state", "nvmlSystemGetConfComputeState")
        if not ok:
            return None
        cc = {"feature": "on" if state.ccFeature else "off",
              "devtools": "on" if state.devToolsMode else "off",
              "environment": ENVIRONMENTS.get(state.environment, str(state.environment))}
        self.say(f"CC state: feature {cc['feature']}, DevTools {cc['devtools']}, "
                 f"environment {cc['environment']}")
        ok, ready = self.call("GPUs ready state", "nvmlSystemGetConfComputeGpusReadyState")
        if ok:
            self.say(f"GPUs ready state: {ready}")
        return cc

    def _evidence(self, index: int, handle: Any) -> None:
        ok, certificate = self.call(f"GPU {index} certificate",
                                    "nvmlDeviceGetConfComputeGpuCertificate", handle)
        if ok:
            self.say(f"GPU {index} certificate: {certificate.attestationCertChainSize} bytes of "
                     "PEM chain")
        nonce = secrets.token_bytes(32)
        ok, report = self.call(f"GPU {index} attestation report",
                               "nvmlDeviceGetConfComputeGpuAttestationReport", handle, nonce)
        if ok:
            size = report.attestationReportSize
            echoed = bytes(report.attestationReport[4:36]) == nonce
            self.say(f"GPU {index} attestation report: {size} bytes, our nonce echoed: "
                     f"{'yes' if echoed else 'NO'}")
        self.evidence_ok = self.evidence_ok is not False and ok

    def _diagnosis(self, cc: dict[str, Any] | None) -> str:
        works = bool(self.evidence_ok)
        if cc is None:
            return ("the driver reports no CC state: this GPU or driver has no confidential "
                    "computing" + ("" if not works else ", yet evidence calls work"))
        if cc["feature"] == "off":
            return ("CC mode is off: NVML gives no attestation evidence here (it answers "
                    "NVML_ERROR_UNKNOWN); enable CC mode to attest this GPU")
        if not works:
            return "CC mode is on but an evidence call failed (see above)"
        devtools = " (DevTools mode: debugging enabled, not for production)" \
            if cc["devtools"] == "on" else ""
        return "CC mode is on and the GPU gives evidence: ready to attest" + devtools


def _bindings_version() -> str:
    try:
        return metadata.version("nvidia-ml-py")
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def main(argv: Sequence[str] | None = None, *, nvml: Any = None, out: TextIO | None = None,
         timeout: float = DEFAULT_TIMEOUT) -> int:
    out = out or sys.stdout
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--timeout"] and len(args) == 2:
        timeout = float(args[1])
    try:
        module = nvml if nvml is not None else load_nvml()
    except PlatformUnavailable as error:
        out.write(f"diagnosis: {error}\n")
        return 0
    out.write(f"bindings: pynvml from nvidia-ml-py {_bindings_version()}\n")
    diagnosis = _Probe(module, out, timeout).run()
    out.write(f"diagnosis: {diagnosis}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m ...probe`
    sys.exit(main())
