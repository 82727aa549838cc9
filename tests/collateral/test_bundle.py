"""Offline bundles: export at a connected site, import at an air-gapped one, refuse anything
tampered or unparsable (all or nothing); prefill a cache for reports from a local KDS."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccattest.collateral import CollateralCache
from ccattest.collateral import bundle as bundle_module
from ccattest.collateral.bundle import (
    BUNDLE_FORMAT,
    dump_bundle,
    export_bundle,
    fetch_for_reports,
    import_bundle,
    load_bundle,
    read_bundle,
)
from ccattest.errors import CCAttestError, CollateralUnavailable, ConfigError, MalformedEvidence
from ccattest.platforms.snp.abi import parse_report
from ccattest.platforms.snp.kds import KdsClient
from ccattest.testing.kds_server import KdsServer

from . import AT, CHAIN_KEY, CRL_KEY, VCEK_KEY, Material, make_crl, material

pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")

MILAN_SPLS = {"blSPL": 3, "teeSPL": 0, "snpSPL": 8, "ucodeSPL": 115}
VLEK_REPORT = "sev-snp/trustee/deps/verifier/test_data/snp/test-vlek-report.bin"



@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """httpx honours proxy variables; the local KDS must be reached directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)

@pytest.fixture
def milan(vectors) -> Material:
    return material(vectors)


@pytest.fixture
def filled(milan, tmp_path) -> CollateralCache:
    cache = CollateralCache(tmp_path / "connected")
    cache.put("snp.vcek", VCEK_KEY, milan.vcek, source="https://kds/vcek", fetched_at=AT)
    cache.put("snp.cert_chain", CHAIN_KEY, milan.chain, source="https://kds/chain",
              fetched_at=AT)
    cache.put("snp.crl", CRL_KEY, make_crl(), source="https://kds/crl", fetched_at=AT)
    return cache


def document(cache: CollateralCache) -> dict:
    return json.loads(dump_bundle(cache.items(), created_at=AT))


def encoded(value: dict) -> bytes:
    return json.dumps(value).encode()


# --- round trip -----------------------------------------------------------------------------------

def test_export_then_import_serves_the_same_items(filled, tmp_path):
    path = tmp_path / "bundle.json"
    written = export_bundle(filled, path, created_at=AT)
    assert [item.kind for item in written] == ["snp.cert_chain", "snp.crl", "snp.vcek"]
    assert [name.name for name in tmp_path.iterdir() if name.name.startswith(".")] == []
    air_gapped = CollateralCache(tmp_path / "air-gapped")
    imported = import_bundle(air_gapped, path)
    assert imported == written
    fresh = CollateralCache(tmp_path / "air-gapped")  # from disk, as a later process sees it
    for item in written:
        assert fresh.get(item.kind, item.key, AT) == item


def test_the_manifest_names_sources_validity_and_digests(filled):
    body = document(filled)
    assert body["format"] == BUNDLE_FORMAT
    assert body["created_at"] == AT.isoformat()
    vcek = next(entry for entry in body["manifest"] if entry["kind"] == "snp.vcek")
    assert vcek["source"] == "https://kds/vcek"
    assert vcek["not_after"] == "2030-04-03T19:23:43+00:00"
    data = base64.b64decode(body["blobs"][vcek["sha256"]])
    assert hashlib.sha256(data).hexdigest() == vcek["sha256"] and len(data) == vcek["size"]


def test_export_a_subset(filled, tmp_path):
    path = tmp_path / "subset.json"
    assert [item.kind for item in export_bundle(filled, path, kinds=["snp.vcek"])] == ["snp.vcek"]
    assert len(read_bundle(path)) == 1
    after_crl = datetime(2025, 8, 1, tzinfo=UTC)
    kinds = [item.kind for item in export_bundle(filled, path, valid_at=after_crl)]
    assert kinds == ["snp.cert_chain", "snp.vcek"]


def test_an_empty_bundle_round_trips(tmp_path):
    path = tmp_path / "empty.json"
    assert export_bundle(CollateralCache(), path) == []
    assert import_bundle(CollateralCache(), path) == []


def test_air_gapped_client_serves_collateral_from_an_imported_bundle(filled, milan, tmp_path):
    path = tmp_path / "bundle.json"
    export_bundle(filled, path)
    cache = CollateralCache()
    import_bundle(cache, path)
    report = parse_report(bytes.fromhex(milan.report_hex))
    with KdsClient("https://kdsintf.amd.com", cache=cache, offline=True) as client:
        endorsements = client.collateral_for(report, product="Milan", crl=True, at=AT)
    assert endorsements["vcek"] == milan.vcek
    assert set(endorsements) == {"vcek", "cert_chain", "crl"}


# --- refusals -------------------------------------------------------------------------------------

def test_a_tampered_blob_is_refused_and_nothing_is_imported(filled, tmp_path):
    body = document(filled)
    digest = next(iter(body["blobs"]))
    data = bytearray(base64.b64decode(body["blobs"][digest]))
    data[-1] ^= 1
    body["blobs"][digest] = base64.b64encode(bytes(data)).decode()
    path = tmp_path / "tampered.json"
    path.write_bytes(encoded(body))
    cache = CollateralCache(tmp_path / "target")
    with pytest.raises(ConfigError, match="tampered") as caught:
        import_bundle(cache, path)
    assert caught.value.expected == digest
    assert caught.value.found == hashlib.sha256(bytes(data)).hexdigest()
    assert cache.items() == []


def test_a_rehashed_forgery_still_has_to_parse(filled):
    body = document(filled)
    entry = next(entry for entry in body["manifest"] if entry["kind"] == "snp.vcek")
    forged = b"\x30\x03\x02\x01\x00"
    digest = hashlib.sha256(forged).hexdigest()
    del body["blobs"][entry["sha256"]]
    body["blobs"][digest] = base64.b64encode(forged).decode()
    entry.update(sha256=digest, size=len(forged))
    with pytest.raises(ConfigError, match=r"item \d+ \('snp.vcek'\) is refused"):
        load_bundle(encoded(body))


def edit_entry(field: str, value: object):
    def edit(body: dict) -> None:
        body["manifest"][0][field] = value
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (edit_entry("not_after", "2099-01-01T00:00:00+00:00"), "not_after does not match"),
    (edit_entry("not_before", "2000-01-01T00:00:00+00:00"), "not_before does not match"),
    (edit_entry("size", 1), "wrong size"),
    (edit_entry("sha256", "0" * 64), "has no blob"),
    (edit_entry("sha256", 7), "has no blob"),
    (edit_entry("kind", "snp.vcek"), "is refused"),
    (edit_entry("kind", "tdx.nothing"), "is refused"),
    (edit_entry("key", "Milan"), "is refused"),
    (edit_entry("fetched_at", "2025-06-01T00:00:00"), "is refused"),
    (lambda body: body["manifest"].append(body["manifest"][0]), "twice"),
    (lambda body: body["manifest"].pop(), "does not name"),
    (lambda body: body["manifest"].append("vcek"), "not an object"),
    (lambda body: body["blobs"].update({"ab": "!!"}), "not base64"),
    (lambda body: body.update(manifest={}), "lacks its manifest"),
    (lambda body: body.pop("blobs"), "lacks its manifest"),
    (lambda body: body.update(format="ccattest-collateral-bundle/2"), "not a collateral bundle"),
])
def test_inconsistent_bundles_are_refused(filled, edit, message):
    body = document(filled)
    edit(body)
    with pytest.raises(ConfigError, match=message):
        load_bundle(encoded(body))


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not JSON"), (b"\xff\xfe", "not JSON"), (b"[1, 2]", "not a collateral bundle"),
    (b"[" * 100_000, "not JSON"), ("text", "must be bytes"),
])
def test_what_is_not_a_bundle(data, message):
    with pytest.raises(ConfigError, match=message):
        load_bundle(data)


def test_size_limits(filled, tmp_path, monkeypatch):
    path = tmp_path / "bundle.json"
    export_bundle(filled, path)
    monkeypatch.setattr(bundle_module, "MAX_ITEMS", 2)
    with pytest.raises(ConfigError, match="too many items"):
        read_bundle(path)
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_BYTES", 100)
    with pytest.raises(ConfigError, match="too large"):
        read_bundle(path)
    with pytest.raises(ConfigError, match="too large"):
        load_bundle(path.read_bytes())


def test_files_that_cannot_be_read_or_written(filled, tmp_path):
    with pytest.raises(ConfigError, match="cannot read") as caught:
        read_bundle(tmp_path / "missing.json")
    assert caught.value.expected == "a readable file"
    with pytest.raises(ConfigError, match="cannot write"):
        export_bundle(filled, tmp_path / "no" / "such" / "dir" / "bundle.json")


# --- properties -----------------------------------------------------------------------------------

@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_typed_errors(data):
    with contextlib.suppress(CCAttestError):
        load_bundle(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(manifest=st.lists(st.dictionaries(
    st.sampled_from(["kind", "key", "source", "fetched_at", "not_before", "not_after",
                     "sha256", "size"]), JSON), max_size=3),
    blobs=st.dictionaries(st.text(max_size=70), JSON, max_size=3))
def test_arbitrary_bundle_structures_raise_only_typed_errors(manifest, blobs):
    body = {"format": BUNDLE_FORMAT, "manifest": manifest, "blobs": blobs}
    with contextlib.suppress(CCAttestError):
        load_bundle(encoded(body))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_real_bundles_raise_only_typed_errors(vectors, data):
    raw = bytearray(_real_bundle(vectors))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(CCAttestError):
        load_bundle(bytes(raw))


_BUNDLES: dict[Path, bytes] = {}


def _real_bundle(vectors: Path) -> bytes:
    if vectors not in _BUNDLES:
        milan = material(vectors)
        cache = CollateralCache()
        cache.put("snp.vcek", VCEK_KEY, milan.vcek, source="s", fetched_at=AT)
        cache.put("snp.cert_chain", CHAIN_KEY, milan.chain, source="s", fetched_at=AT)
        _BUNDLES[vectors] = dump_bundle(cache.items(), created_at=AT)
    return _BUNDLES[vectors]


# --- prefilling for reports --------------------------------------------------------------------

def test_fetch_for_reports_prefills_the_cache_once(milan, vectors, tmp_path):
    milan_raw = bytes.fromhex(milan.report_hex)
    vlek_raw = (vectors / VLEK_REPORT).read_bytes()
    sleeps: list[float] = []
    with KdsServer() as kds:
        kds.serve_vcek("Milan", bytes.fromhex(VCEK_KEY[1]), MILAN_SPLS, milan.vcek)
        kds.serve_chain("Milan", milan.chain)
        kds.serve_chain("Milan", milan.vlek_chain, key="vlek")
        cache = CollateralCache(tmp_path)
        with KdsClient(kds.url, cache=cache, sleep=sleeps.append) as client:
            reports = [milan_raw, parse_report(milan_raw), vlek_raw]
            assert fetch_for_reports(client, reports, product="Milan", at=AT) == 3
            assert len(kds.requests) == 3
            assert fetch_for_reports(client, reports, product="Milan", at=AT) == 3
            assert len(kds.requests) == 3
    assert sorted(item.kind for item in CollateralCache(tmp_path).items()) == [
        "snp.cert_chain", "snp.cert_chain", "snp.vcek"]
    assert sleeps == []


def test_fetch_for_reports_stops_at_the_first_failure(milan):
    with KdsServer() as kds, KdsClient(kds.url, cache=CollateralCache(), retries=0) as client:
        with pytest.raises(CollateralUnavailable, match="404"):
            fetch_for_reports(client, [bytes.fromhex(milan.report_hex)], product="Milan", at=AT)
        with pytest.raises(MalformedEvidence):
            fetch_for_reports(client, [b"not a report"])


def test_fetch_for_reports_needs_a_cache():
    with KdsClient(cache=None) as client, pytest.raises(ConfigError, match="needs a cache"):
        fetch_for_reports(client, [])
