"""The NVIDIA RIM service client against a real HTTP server on 127.0.0.1
(ccattest.testing.nvidia_server) serving NVIDIA's real RIMs from the vectors (NVIDIA/nvtrust,
BSD-3-Clause) and RIMs signed by a test PKI: the request, answers checked before caching,
retries, 404, caching until the signer expires, offline mode."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ccattest.collateral import CollateralCache
from ccattest.collateral.http import ServiceHttp, ServiceUnreachable
from ccattest.errors import (
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    VerificationFailed,
)
from ccattest.platforms.nvgpu import rimservice
from ccattest.platforms.nvgpu.rim import RimIds, verify_rim
from ccattest.platforms.nvgpu.rimservice import (
    KIND,
    RimClient,
    RimServiceUnreachable,
    check_rim_item,
    rim_from_response,
)
from ccattest.testing.nvidia_server import NvidiaServer, RimAuthority, RimRecord, swid_xml

LGV = "gpu/nvtrust-lgv/samples/"
DRIVER_ID = "NV_GPU_DRIVER_GH100_545.00"
VBIOS_ID = "NV_GPU_VBIOS_1010_0200_882_96005E0001"
REAL_AT = datetime(2023, 7, 12, 6, 10, 12, tzinfo=UTC)  # inside both signers' windows
T0 = datetime(2025, 1, 1, tzinfo=UTC)
AT = T0 + timedelta(days=30)
SYNTH_ID = "NV_GPU_DRIVER_GH100_550.90.07"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def server():
    with NvidiaServer() as running:
        yield running


@pytest.fixture(scope="module")
def authority() -> RimAuthority:
    return RimAuthority(not_before=T0, not_after=T0 + timedelta(days=365))


@pytest.fixture(scope="module")
def synthetic(authority: RimAuthority) -> bytes:
    xml = swid_xml(colloquial_version="550.90.07",
                   records=[RimRecord(7, True, (b"\x07" * 48,))])
    return authority.sign(xml)


def client(server: NvidiaServer, **options: object) -> RimClient:
    options.setdefault("sleep", Sleeps())
    return RimClient(server.url, **options)  # type: ignore[arg-type]


def gets(server: NvidiaServer) -> int:
    return len(server.requests)


# --- real RIMs ----------------------------------------------------------------------------------

@pytest.mark.vectors
def test_real_rims_come_back_verified_and_cached(server: NvidiaServer, vectors: Path,
                                                 tmp_path: Path) -> None:
    driver = (vectors / LGV / "Driver_RIM_test_no_gpu.swidtag").read_bytes()
    vbios = (vectors / LGV / "1010_0200_882_96005E0001_test_no_gpu.swidtag").read_bytes()
    server.serve_rim(DRIVER_ID, driver)
    server.serve_rim(VBIOS_ID, vbios)
    cache = CollateralCache(tmp_path)
    with client(server, cache=cache) as rims:
        got = rims.rims_for(RimIds(DRIVER_ID, VBIOS_ID), at=REAL_AT)
        assert got == {"driver": driver, "vbios": vbios}
        assert rims.rim(DRIVER_ID, at=REAL_AT + timedelta(days=300)) == driver
    assert server.paths == ["/v1/rim/" + DRIVER_ID, "/v1/rim/" + VBIOS_ID]
    assert server.requests[0].header("Accept") == "application/json"
    items = {item.key[0]: item for item in CollateralCache(tmp_path).items()}
    assert items[DRIVER_ID].kind == KIND
    assert items[DRIVER_ID].not_after == datetime(2025, 6, 26, 6, 10, 12, tzinfo=UTC)
    assert items[DRIVER_ID].source == server.url + "/v1/rim/" + DRIVER_ID
    assert verify_rim(got["driver"], at=REAL_AT, expected_id=DRIVER_ID).verified
    with client(server, cache=CollateralCache(tmp_path), offline=True) as offline:
        assert offline.rim(VBIOS_ID, at=REAL_AT) == vbios
        with pytest.raises(CollateralUnavailable, match="offline"):
            offline.rim(VBIOS_ID, at=datetime(2025, 7, 1, tzinfo=UTC))  # signer expired by then
    assert gets(server) == 2


@pytest.mark.vectors
def test_real_rim_under_the_wrong_id_is_unusable(server: NvidiaServer, vectors: Path) -> None:
    driver = (vectors / LGV / "Driver_RIM_test_no_gpu.swidtag").read_bytes()
    server.serve_rim("NV_GPU_DRIVER_GH100_550.00", driver)
    server.serve_rim("NV_GPU_VBIOS_1010_0200_882_96005E0001", driver)
    with client(server) as rims:
        for rim_id in ("NV_GPU_DRIVER_GH100_550.00", "NV_GPU_VBIOS_1010_0200_882_96005E0001"):
            with pytest.raises(CollateralUnavailable, match="unusable RIM") as caught:
                rims.rim(rim_id, at=REAL_AT)
            assert "not the one asked for" in caught.value.message


@pytest.mark.vectors
def test_expired_real_rim_is_refused_and_not_cached(server: NvidiaServer, vectors: Path,
                                                    tmp_path: Path) -> None:
    server.serve_rim(DRIVER_ID, (vectors / LGV / "Driver_RIM_test_no_gpu.swidtag").read_bytes())
    cache = CollateralCache(tmp_path)
    later = datetime(2026, 1, 1, tzinfo=UTC)
    with client(server, cache=cache) as rims, pytest.raises(VerificationFailed, match="not valid"):
        rims.rim(DRIVER_ID, at=later)
    assert cache.items() == []
    with client(server, cache=cache, verify=False) as rims:
        assert rims.rim(DRIVER_ID, at=later).startswith(b"<SoftwareIdentity")
    assert [item.key for item in cache.items()] == [(DRIVER_ID,)]


# --- synthetic RIMs -------------------------------------------------------------------------------

def test_synthetic_rim_with_test_root_and_api_key(server: NvidiaServer, synthetic: bytes,
                                                  authority: RimAuthority) -> None:
    server.serve_rim(SYNTH_ID, synthetic)
    with client(server, root=authority.root.cert, api_key="secret") as rims:
        assert rims.rim(SYNTH_ID, at=AT) == synthetic
        assert rims.url(SYNTH_ID) == server.url + "/v1/rim/" + SYNTH_ID
    assert server.requests[0].header("Authorization") == "Bearer secret"
    with client(server) as rims, pytest.raises(VerificationFailed, match="trusted root"):
        rims.rim(SYNTH_ID, at=AT)  # the pinned NVIDIA root does not know the test PKI


def test_404_is_not_retried(server: NvidiaServer) -> None:
    with client(server) as rims, pytest.raises(CollateralUnavailable, match="has no RIM") as caught:
        rims.rim(SYNTH_ID, at=AT)
    assert caught.value.found == "HTTP 404" and "released drivers" in (caught.value.hint or "")
    assert gets(server) == 1


def test_retries_on_429_500_and_dropped_connections(server: NvidiaServer, synthetic: bytes,
                                                    authority: RimAuthority) -> None:
    server.serve_rim(SYNTH_ID, synthetic)
    server.fail(429, retry_after="2")
    server.fail(500)
    server.drop()
    sleeps = Sleeps()
    with client(server, root=authority.root.cert, sleep=sleeps, backoff=0.1) as rims:
        assert rims.rim(SYNTH_ID, at=AT) == synthetic
    assert sleeps == [2.0, 0.2, 0.4] and gets(server) == 4


def test_giving_up_after_retries(server: NvidiaServer) -> None:
    server.fail(502, times=3)
    sleeps = Sleeps()
    with client(server, retries=2, sleep=sleeps) as rims, pytest.raises(
            CollateralUnavailable, match="did not answer") as caught:
        rims.rim(SYNTH_ID, at=AT)
    assert caught.value.found == "HTTP 502; HTTP 502; HTTP 502" and sleeps == [0.5, 1.0]
    server.fail(401)
    with client(server) as rims, pytest.raises(CollateralUnavailable, match="refused"):
        rims.rim(SYNTH_ID, at=AT)


def test_huge_answers_are_refused(server: NvidiaServer, synthetic: bytes,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server.serve_rim(SYNTH_ID, synthetic)
    monkeypatch.setattr(rimservice, "MAX_RESPONSE_BYTES", 1000)
    with client(server) as rims, pytest.raises(CollateralUnavailable, match="larger than"):
        rims.rim(SYNTH_ID, at=AT)
    assert gets(server) == 1


@pytest.mark.parametrize(("record", "message"), [
    ({"rim": None}, "has no RIM"),
    ({"rim": "!!!"}, "not base64"),
    ({"id": "NV_GPU_DRIVER_GH100_1.0"}, "another RIM"),
    ({"rim": base64.b64encode(b"<notarim/>").decode()}, "not a SWID tag"),
    ({"rim": base64.b64encode(swid_xml(colloquial_version="550.90.07", records=[])).decode()},
     "not signed"),
])
def test_unusable_answers_are_not_cached(server: NvidiaServer, synthetic: bytes, tmp_path: Path,
                                         record: dict[str, object], message: str) -> None:
    server.serve_rim(SYNTH_ID, synthetic, record=record)
    cache = CollateralCache(tmp_path)
    with client(server, cache=cache) as rims, pytest.raises(CollateralUnavailable,
                                                            match="unusable RIM") as caught:
        rims.rim(SYNTH_ID, at=AT)
    assert message in caught.value.message
    assert cache.items() == []


def test_non_json_answers(server: NvidiaServer) -> None:
    server.serve("/v1/rim/" + SYNTH_ID, b"<html>", "text/html")
    with client(server) as rims, pytest.raises(CollateralUnavailable, match="not JSON"):
        rims.rim(SYNTH_ID, at=AT)
    server.serve("/v1/rim/" + SYNTH_ID, b"[1, 2]", "application/json")
    with client(server) as rims, pytest.raises(CollateralUnavailable, match="has no RIM"):
        rims.rim(SYNTH_ID, at=AT)


def test_offline_miss_names_the_url_and_the_fix(tmp_path: Path) -> None:
    with RimClient(cache=CollateralCache(tmp_path), offline=True) as rims, pytest.raises(
            CollateralUnavailable, match="offline and no cached RIM") as caught:
        rims.rim(SYNTH_ID, at=AT)
    assert caught.value.expected == (
        "a cached copy of https://rim.attestation.nvidia.com/v1/rim/" + SYNTH_ID)
    assert "ccattest collateral import BUNDLE" in (caught.value.hint or "")
    with RimClient(offline=True) as rims, pytest.raises(CollateralUnavailable):
        rims.rim(SYNTH_ID, at=AT)


def test_timeouts_and_connection_errors_are_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectTimeout("slow", request=request)

    sleeps = Sleeps()
    with RimClient("https://rim.test", transport=httpx.MockTransport(handler), retries=2,
                   sleep=sleeps) as rims, pytest.raises(CollateralUnavailable,
                                                        match="timeout"):
        rims.rim(SYNTH_ID, at=AT)
    assert len(calls) == 3 and sleeps == [0.5, 1.0]
    assert str(calls[0].url) == "https://rim.test/v1/rim/" + SYNTH_ID


def test_ids_settings_and_times_are_checked() -> None:
    with RimClient() as rims:
        for bad in ("../../etc/passwd", "NV_SWITCH_BIOS_5612_0002_890_9610550001", "", 5,
                    "NV_GPU_DRIVER_GH100_" + "1" * 200):
            with pytest.raises(ConfigError, match="RIM id"):
                rims.rim(bad, at=AT)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="naive"):
            rims.rim(SYNTH_ID, at=datetime(2025, 1, 1))
    for url in ("file:///tmp", "https://"):
        with pytest.raises(ConfigError, match="URL"):
            RimClient(url)
    with pytest.raises(ConfigError, match="does not parse"):
        RimClient("http://\x00")
    with pytest.raises(ConfigError, match="settings"):
        RimClient(timeout=0)
    with pytest.raises(ConfigError, match="settings"):
        ServiceHttp("x", retries=1.5)  # type: ignore[arg-type]


# --- the cache checker --------------------------------------------------------------------------

def test_cache_checker(synthetic: bytes, authority: RimAuthority) -> None:
    window = check_rim_item((SYNTH_ID,), synthetic)
    assert window.not_before == T0 and window.not_after == T0 + timedelta(days=365)
    for key in ((), ("NV_SWITCH_1",), (SYNTH_ID, "extra")):
        with pytest.raises(MalformedEvidence, match="bad key"):
            check_rim_item(key, synthetic)
    with pytest.raises(VerificationFailed, match="not the one asked for"):
        check_rim_item(("NV_GPU_DRIVER_GH100_1.0",), synthetic)


def test_rim_from_response() -> None:
    xml = b"<SoftwareIdentity/>"
    wrapped = json.dumps({"rim": base64.encodebytes(xml).decode()}).encode()  # with newlines
    assert rim_from_response(wrapped, SYNTH_ID) == xml
    with pytest.raises(MalformedEvidence, match="not JSON"):
        rim_from_response(b"[" * 100000, SYNTH_ID)


# --- no network: one error, at once -------------------------------------------------------------

class Counting(httpx.BaseTransport):
    """A real HTTP transport that counts the requests it is asked to send."""

    def __init__(self) -> None:
        self.inner, self.calls = httpx.HTTPTransport(), 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local TCP port bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("where", ["unresolvable", "refused"])
def test_unreachable_service_fails_once_with_the_fixes(where: str, closed_port: int) -> None:
    # RFC 2606: .invalid never resolves, so no traffic leaves the machine.
    base = "http://rim.invalid" if where == "unresolvable" else f"http://127.0.0.1:{closed_port}"
    transport, sleeps = Counting(), Sleeps()
    started = time.monotonic()
    with RimClient(base, transport=transport, sleep=sleeps) as rims, pytest.raises(
            RimServiceUnreachable) as caught:
        rims.rim(SYNTH_ID, at=AT)
    assert time.monotonic() - started < 8
    assert transport.calls == 1 and sleeps == []
    error = caught.value
    assert isinstance(error, CollateralUnavailable)
    assert error.message == ("the GPU's RIMs could not be fetched from NVIDIA's RIM service: "
                             "it cannot be reached")
    assert error.expected == f"{base}/v1/rim/{SYNTH_ID}"
    assert str(error.found).startswith("connection error (ConnectError") and ";" not in \
        str(error.found)
    for fix in ("--rim FILE", "--offline --collateral DIR", "ccattest collateral export BUNDLE",
                "--collateral BUNDLE"):
        assert fix in (error.hint or "")


def test_other_clients_still_retry_refused_connections() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    http = ServiceHttp("some service", retries=2, sleep=Sleeps(),
                       transport=httpx.MockTransport(handler))
    with pytest.raises(CollateralUnavailable, match="did not answer") as caught:
        http.get("https://service.test/x")
    http.close()
    assert len(calls) == 3 and not isinstance(caught.value, ServiceUnreachable)
