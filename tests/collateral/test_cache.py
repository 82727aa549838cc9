"""CollateralCache: items served only inside their validity window, in memory and on disk
(one atomically written file per item, named by a hash), checked on every write and read."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccattest.collateral import CollateralCache, Window, register_kind
from ccattest.collateral import cache as cache_module
from ccattest.collateral.cache import file_name, make_item
from ccattest.errors import CollateralUnavailable, ConfigError, MalformedEvidence

from . import AT, CHAIN_KEY, CRL_KEY, SOURCE, VCEK_KEY, VLEK_CHAIN_KEY, make_crl, material

pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")

VCEK_NOT_BEFORE = datetime(2023, 4, 3, 19, 23, 43, tzinfo=UTC)
VCEK_NOT_AFTER = datetime(2030, 4, 3, 19, 23, 43, tzinfo=UTC)


@pytest.fixture
def milan(vectors):
    return material(vectors)


def put_vcek(cache: CollateralCache, vcek: bytes, fetched_at: datetime = AT):
    return cache.put("snp.vcek", VCEK_KEY, vcek, source=SOURCE + "vcek", fetched_at=fetched_at)


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- validity -----------------------------------------------------------------------------------

def test_vcek_is_served_inside_its_certificate_window(milan):
    cache = CollateralCache()
    item = put_vcek(cache, milan.vcek)
    assert (item.not_before, item.not_after) == (VCEK_NOT_BEFORE, VCEK_NOT_AFTER)
    assert cache.get("snp.vcek", VCEK_KEY, AT) == item
    assert cache.get("snp.vcek", list(VCEK_KEY), VCEK_NOT_AFTER) == item
    assert cache.get("snp.vcek", VCEK_KEY, VCEK_NOT_AFTER + timedelta(seconds=1)) is None
    assert cache.get("snp.vcek", VCEK_KEY, VCEK_NOT_BEFORE - timedelta(seconds=1)) is None
    assert cache.get("snp.vcek", (*VCEK_KEY[:2], "blSPL=4,teeSPL=0,snpSPL=8,ucodeSPL=115"),
                     AT) is None
    assert item.metadata() == {
        "kind": "snp.vcek", "key": list(VCEK_KEY), "source": SOURCE + "vcek",
        "fetched_at": AT.isoformat(), "not_before": VCEK_NOT_BEFORE.isoformat(),
        "not_after": VCEK_NOT_AFTER.isoformat(), "sha256": item.sha256,
        "size": len(milan.vcek)}


def test_chain_window_is_the_intersection_of_its_certificates(milan):
    cache = CollateralCache()
    vlek = cache.put("snp.cert_chain", VLEK_CHAIN_KEY, milan.vlek_chain, source="s",
                     fetched_at=AT)
    # ASVK 2022-11-16..2047-11-16, ARK 2020-10-22..2045-10-22: the earliest notAfter wins.
    assert vlek.not_before.date().isoformat() == "2022-11-16"
    assert vlek.not_after.date().isoformat() == "2045-10-22"
    vcek_chain = cache.put("snp.cert_chain", CHAIN_KEY, milan.chain, source="s", fetched_at=AT)
    assert cache.get("snp.cert_chain", CHAIN_KEY, AT) == vcek_chain
    assert cache.get("snp.cert_chain", VLEK_CHAIN_KEY, AT) == vlek


def test_crl_is_served_until_its_next_update():
    cache = CollateralCache()
    cache.put("snp.crl", CRL_KEY, make_crl(), source="s", fetched_at=AT)
    assert cache.get("snp.crl", CRL_KEY, AT) is not None
    assert cache.get("snp.crl", CRL_KEY, datetime(2025, 7, 1, 0, 0, 1, tzinfo=UTC)) is None


# --- refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "key", "data"), [
    ("snp.vcek", VCEK_KEY, b"garbage"),
    ("snp.cert_chain", CHAIN_KEY, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
    ("snp.crl", CRL_KEY, b"\x30\x03\x02\x01\x00"),
    ("snp.crl", ("Milan",), b"x"),
    ("snp.cert_chain", ("Rome", "vcek"), b"x"),
])
def test_garbage_is_refused_and_not_stored(tmp_path, kind, key, data):
    cache = CollateralCache(tmp_path / "cache")
    with pytest.raises(CollateralUnavailable) as caught:
        cache.put(kind, key, data, source="s", fetched_at=AT)
    assert caught.value.expected and caught.value.found
    assert cache.items() == []
    assert not (tmp_path / "cache").exists()


def test_an_item_under_the_wrong_key_is_refused(milan):
    other = ("Milan", MILAN_OTHER := "00" * 63 + "01", VCEK_KEY[2])
    with pytest.raises(CollateralUnavailable, match="another product, chip or TCB") as caught:
        CollateralCache().put("snp.vcek", other, milan.vcek, source="s", fetched_at=AT)
    assert caught.value.expected == "/".join(other)
    assert MILAN_OTHER not in str(caught.value.found)


def test_unknown_kinds_and_bad_keys_are_config_errors(milan):
    cache = CollateralCache()
    with pytest.raises(ConfigError, match="unknown kind"):
        cache.put("nope.kind", ("x",), b"{}", source="s", fetched_at=AT)
    with pytest.raises(ConfigError, match="unknown kind"):
        cache.put("snp.nothing", ("x",), b"{}", source="s", fetched_at=AT)
    with pytest.raises(ConfigError, match="sequence of strings"):
        cache.get("snp.vcek", "Milan", AT)
    with pytest.raises(ConfigError, match="must be strings"):
        cache.get("snp.vcek", ("Milan", 3), AT)
    with pytest.raises(ConfigError, match="naive"):
        cache.get("snp.vcek", VCEK_KEY, datetime(2025, 1, 1))
    with pytest.raises(ConfigError, match="must be bytes"):
        cache.put("snp.vcek", VCEK_KEY, "text", source="s", fetched_at=AT)
    with pytest.raises(ConfigError, match="source"):
        cache.put("snp.vcek", VCEK_KEY, milan.vcek, source=None, fetched_at=AT)


def test_oversized_items_are_refused(monkeypatch):
    monkeypatch.setattr(cache_module, "MAX_ITEM_BYTES", 10)
    with pytest.raises(CollateralUnavailable, match="too large"):
        make_item("snp.crl", CRL_KEY, bytes(11), source="s", fetched_at=AT)


def test_registered_kinds_extend_the_cache():
    def check(key, data):
        if data != b"ok":
            raise MalformedEvidence("not ok")
        return Window(AT, AT + timedelta(days=1))

    register_kind("test.blob", check)
    cache = CollateralCache()
    assert cache.put("test.blob", ("a",), b"ok", source="s", fetched_at=AT).not_after > AT
    with pytest.raises(CollateralUnavailable, match="not ok") as caught:
        cache.put("test.blob", ("a",), b"no", source="s", fetched_at=AT)
    assert caught.value.found == "2 bytes starting 6e6f"


# --- disk ----------------------------------------------------------------------------------

def test_items_persist_in_one_hashed_file_each(tmp_path, milan):
    first = CollateralCache(tmp_path)
    item = put_vcek(first, milan.vcek)
    assert files_in(tmp_path) == [file_name("snp.vcek", VCEK_KEY)]
    stored = json.loads((tmp_path / file_name("snp.vcek", VCEK_KEY)).read_text())
    assert stored["sha256"] == item.sha256 and stored["key"] == list(VCEK_KEY)
    second = CollateralCache(tmp_path)
    assert second.get("snp.vcek", VCEK_KEY, AT) == item
    assert second.items() == [item]


def test_keys_never_become_paths(tmp_path):
    cache = CollateralCache(tmp_path / "cache")
    key = ("../../etc", "passwd")
    register_kind("test.any", lambda key, data: Window(AT, AT))
    cache.put("test.any", key, b"x", source="s", fetched_at=AT)
    assert files_in(tmp_path) == ["cache"]
    (name,) = files_in(tmp_path / "cache")
    assert len(name) == 64 + len(".json") and ".." not in name


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, milan, monkeypatch):
    cache = CollateralCache(tmp_path)
    put_vcek(cache, milan.vcek)
    assert all(not name.startswith(".") for name in files_in(tmp_path))

    def broken_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ConfigError, match="cannot write") as caught:
        cache.put("snp.cert_chain", CHAIN_KEY, milan.chain, source="s", fetched_at=AT)
    assert "No space left" in caught.value.found
    assert files_in(tmp_path) == [file_name("snp.vcek", VCEK_KEY)]
    assert cache.get("snp.cert_chain", CHAIN_KEY, AT) is None


def test_a_directory_that_cannot_be_created(tmp_path, milan):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot create") as caught:
        put_vcek(CollateralCache(blocker / "cache"), milan.vcek)
    assert caught.value.expected == "a writable directory"


def test_damaged_files_are_misses(tmp_path, milan, caplog):
    cache = CollateralCache(tmp_path)
    put_vcek(cache, milan.vcek)
    path = tmp_path / file_name("snp.vcek", VCEK_KEY)
    good = json.loads(path.read_text())
    damaged = [
        b"{not json",
        json.dumps({"format": "other"}).encode(),
        json.dumps({**good, "data": "!!!"}).encode(),
        json.dumps({**good, "data": 5}).encode(),
        json.dumps({**good, "sha256": "0" * 64}).encode(),
        json.dumps({**good, "not_after": "2099-01-01T00:00:00+00:00"}).encode(),
        json.dumps({**good, "fetched_at": "yesterday"}).encode(),
        json.dumps({**good, "fetched_at": "2025-01-01T00:00:00"}).encode(),
        json.dumps({**good, "fetched_at": 5}).encode(),
        json.dumps({**good, "kind": None}).encode(),
    ]
    for body in damaged:
        path.write_bytes(body)
        assert CollateralCache(tmp_path).get("snp.vcek", VCEK_KEY, AT) is None, body
    assert "ignoring collateral cache file" in caplog.text


def test_a_file_holding_another_item_is_a_miss(tmp_path, milan):
    cache = CollateralCache(tmp_path)
    put_vcek(cache, milan.vcek)
    cache.put("snp.cert_chain", CHAIN_KEY, milan.chain, source="s", fetched_at=AT)
    chain_file = tmp_path / file_name("snp.cert_chain", CHAIN_KEY)
    os.replace(tmp_path / file_name("snp.vcek", VCEK_KEY), chain_file)
    assert CollateralCache(tmp_path).get("snp.cert_chain", CHAIN_KEY, AT) is None


def test_unreadable_entries_are_skipped(tmp_path, milan):
    (tmp_path / "odd.json").mkdir()
    (tmp_path / ".partial.tmp").write_text("x")
    cache = CollateralCache(tmp_path)
    item = put_vcek(cache, milan.vcek)
    assert CollateralCache(tmp_path).items() == [item]
    assert CollateralCache(tmp_path / "missing").items() == []


def test_a_newer_item_on_disk_replaces_an_expired_one_in_memory(tmp_path):
    old = CollateralCache(tmp_path)
    old.put("snp.crl", CRL_KEY, make_crl(), source="s", fetched_at=AT)
    later = datetime(2025, 8, 1, tzinfo=UTC)
    assert old.get("snp.crl", CRL_KEY, later) is None
    other_process = CollateralCache(tmp_path)
    fresh = make_crl(datetime(2025, 7, 15, tzinfo=UTC), datetime(2025, 9, 1, tzinfo=UTC))
    other_process.put("snp.crl", CRL_KEY, fresh, source="s", fetched_at=later)
    served = old.get("snp.crl", CRL_KEY, later)
    assert served is not None and served.data == fresh


# --- threads --------------------------------------------------------------------------------------

def test_concurrent_puts_and_gets(tmp_path, milan):
    cache = CollateralCache(tmp_path)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(5):
                if index % 2:
                    put_vcek(cache, milan.vcek)
                else:
                    cache.put("snp.cert_chain", CHAIN_KEY, milan.chain, source="s",
                              fetched_at=AT)
                cache.get("snp.vcek", VCEK_KEY, AT)
                cache.items()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(files_in(tmp_path)) == 2
    assert len(CollateralCache(tmp_path).items()) == 2
