"""The NVML probe: a diagnosis in a few lines, exit 0, never a hang."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from ccattest.errors import PlatformUnavailable
from ccattest.platforms.nvgpu import probe
from ccattest.testing.nvgpu import FakeGpu, FakeNvml, NvgpuFixture

UNKNOWN = FakeNvml.NVML_ERROR_UNKNOWN
EVIDENCE = ("nvmlDeviceGetConfComputeGpuAttestationReport",
            "nvmlDeviceGetConfComputeGpuCertificate")


def _run(nvml: Any, *argv: str, timeout: float = 5.0) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = probe.main(list(argv), nvml=nvml, out=out, timeout=timeout)
    return code, out.getvalue().splitlines()


def test_cc_off_like_the_h200(hopper: NvgpuFixture) -> None:
    """What a real H200 with CC off answered (vectors/gpu/device-h200-ccoff/probe.txt)."""
    nvml = FakeNvml([FakeGpu.of(hopper)], cc_feature=0, environment=0,
                    errors=dict.fromkeys(EVIDENCE, UNKNOWN))
    code, lines = _run(nvml)
    assert code == 0
    assert lines[0].startswith("bindings: pynvml")
    assert "driver: 580.159.04" in lines
    assert "GPU 0: name NVIDIA H100 80GB HBM3, VBIOS 96.00.9F.00.01, architecture HOPPER (9)" \
        in lines
    assert "CC state: feature off, DevTools off, environment unavailable" in lines
    assert "GPU 0 attestation report: NVML_ERROR_UNKNOWN (999): Unknown Error" in lines
    assert lines[-1].startswith("diagnosis: CC mode is off")
    assert nvml.calls[-1] == "nvmlShutdown"


def test_cc_on(hopper: NvgpuFixture) -> None:
    code, lines = _run(FakeNvml([FakeGpu.of(hopper)]))
    assert code == 0 and lines[-1] == ("diagnosis: CC mode is on and the GPU gives evidence: "
                                       "ready to attest")
    assert any(line.endswith("our nonce echoed: yes") for line in lines)
    assert any("bytes of PEM chain" in line for line in lines)
    _, lines = _run(FakeNvml([FakeGpu.of(hopper)], devtools=1))
    assert "DevTools mode" in lines[-1]


def test_cc_on_but_evidence_fails(hopper: NvgpuFixture) -> None:
    nvml = FakeNvml([FakeGpu.of(hopper)], errors={EVIDENCE[0]: UNKNOWN})
    assert _run(nvml)[1][-1] == ("diagnosis: CC mode is on but an evidence call failed "
                                 "(see above)")
    canned = FakeGpu(hopper.sign(hopper.report(bytes(32))), hopper.chain())
    assert any(line.endswith("echoed: NO") for line in _run(FakeNvml([canned]))[1])


@pytest.mark.parametrize(("errors", "gpus", "diagnosis"), [
    ({"nvmlInit": 12}, 1, "NVML does not start"),
    ({}, 0, "no GPU visible to NVML"),
    ({"nvmlDeviceGetCount": UNKNOWN}, 1, "NVML cannot count the GPUs"),
    ({"nvmlSystemGetConfComputeState": 3}, 1, "the driver reports no CC state"),
    ({"nvmlSystemGetConfComputeState": 3, **dict.fromkeys(EVIDENCE, UNKNOWN)}, 1,
     "the driver reports no CC state: this GPU or driver has no confidential computing"),
    ({"nvmlDeviceGetHandleByIndex": 15}, 1, "CC mode is on but an evidence call failed"),
])
def test_diagnoses(hopper: NvgpuFixture, errors: dict[str, int], gpus: int,
                   diagnosis: str) -> None:
    nvml = FakeNvml([FakeGpu.of(hopper)] * gpus, errors=errors)
    code, lines = _run(nvml)
    assert code == 0 and lines[-1].startswith(f"diagnosis: {diagnosis}")


def test_cc_state_but_evidence_works(hopper: NvgpuFixture) -> None:
    nvml = FakeNvml([FakeGpu.of(hopper)], errors={"nvmlSystemGetConfComputeState": 3})
    assert _run(nvml)[1][-1].endswith("yet evidence calls work")


class _Slow(FakeNvml):
    def nvmlSystemGetDriverVersion(self) -> str:
        time.sleep(2)
        return "never"


class _Odd(FakeNvml):
    nvmlSystemGetConfComputeGpusReadyState = None  # older bindings

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        raise ValueError("no name")

    def nvmlDeviceGetVbiosVersion(self, gpu: FakeGpu) -> bytes:
        return b"96.00.A5.00.1A"


def test_every_call_is_bounded(hopper: NvgpuFixture) -> None:
    started = time.monotonic()
    code, lines = _run(_Slow([FakeGpu.of(hopper)]), timeout=0.05)
    assert code == 0 and time.monotonic() - started < 1.5
    assert "driver: timed out (no answer within 0.05 s)" in lines


def test_odd_bindings(hopper: NvgpuFixture) -> None:
    code, lines = _run(_Odd([FakeGpu.of(hopper)]), "--timeout", "3")
    assert code == 0
    assert "GPU 0 name: ValueError: no name" in lines
    assert "GPUs ready state: not in these bindings (nvmlSystemGetConfComputeGpusReadyState)" \
        in lines
    assert any("VBIOS 96.00.A5.00.1A" in line for line in lines)


def test_bounded_passes_results_and_errors() -> None:
    assert probe.bounded(lambda value: value * 2, 21, timeout=1) == 42
    with pytest.raises(KeyError):
        probe.bounded({}.__getitem__, "x", timeout=1)


def test_without_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise PlatformUnavailable("NVML Python bindings are not installed")

    monkeypatch.setattr(probe, "load_nvml", refuse)
    code, lines = _run(None)
    assert code == 0 and lines == ["diagnosis: NVML Python bindings are not installed"]


def test_bindings_version(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise probe.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(probe.metadata, "version", missing)
    assert probe._bindings_version() == "(version unknown)"


def test_real_bindings_here(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pynvml")
    assert probe.main([]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("diagnosis: ")
