"""Record entries: one canonical byte string per event, and nothing else accepted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import ConfigError, MalformedEvidence
from ccattest.record.entry import KINDS, MAX_ENTRY_BYTES, Entry, canonical, decode

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


def test_encoding_is_compact_sorted_and_utc():
    entry = Entry("verdict", "server", AT.astimezone(timezone(timedelta(hours=2))),
                  {"status": "affirming", "peer": "site-1", "vector": {"hardware": 2}})
    assert entry.encode() == (b'{"at":"2026-12-05T12:00:00Z","data":{"peer":"site-1",'
                              b'"status":"affirming","vector":{"hardware":2}},'
                              b'"kind":"verdict","site":"server","v":1}')
    assert decode(entry.encode()) == Entry("verdict", "server", AT, entry.data)


@given(data=st.dictionaries(st.text(max_size=8), JSON, max_size=5),
       kind=st.sampled_from(sorted(KINDS)), site=st.text(min_size=1, max_size=12))
def test_every_entry_round_trips_to_the_same_bytes(data, kind, site):
    encoded = Entry(kind, site, AT, data).encode()
    assert decode(encoded).encode() == encoded


@pytest.mark.parametrize("value", [1.5, float("nan"), b"bytes", {1: "x"}, {"a": {2.0}}])
def test_values_without_a_canonical_encoding_are_refused(value):
    with pytest.raises(ValueError, match=r"canonical encoding|keys must be strings"):
        canonical({"x": value})


def test_entries_need_a_known_kind_and_an_aware_time():
    with pytest.raises(ValueError, match="unknown record entry kind"):
        Entry("gossip", "server", AT).encode()
    with pytest.raises(ConfigError, match=r"time zone|naive|aware"):
        Entry("verdict", "server", datetime(2026, 1, 1)).encode()


@pytest.mark.parametrize(("data", "message"), [
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "wrong shape"),
    (b'{"v":1,"kind":"verdict","site":"s","at":"2026-12-05T12:00:00Z"}', "wrong shape"),
    (b'{"at":"2026-12-05T12:00:00Z","data":{},"kind":"verdict","site":"s","v":2}',
     "unknown version"),
    (b'{"at":"2026-12-05T12:00:00Z","data":{},"kind":"gossip","site":"s","v":1}',
     "unknown version or kind"),
    (b'{"at":"yesterday","data":{},"kind":"verdict","site":"s","v":1}', "does not parse"),
    (b'{"at":"2026-12-05T12:00:00","data":{},"kind":"verdict","site":"s","v":1}',
     "does not parse"),
    (b'{"at":"2026-12-05T12:00:00Z","data":{"x":1.5},"kind":"verdict","site":"s","v":1}',
     "does not parse"),
    (b'{"v":1,"site":"s","kind":"verdict","data":{},"at":"2026-12-05T12:00:00Z"}',
     "canonical form"),
    (b'{"at":"2026-12-05T12:00:00Z", "data":{},"kind":"verdict","site":"s","v":1}',
     "canonical form"),
])
def test_decode_refuses_what_is_not_one_canonical_entry(data, message):
    with pytest.raises(MalformedEvidence, match=message):
        decode(data)


def test_decode_refuses_oversized_entries():
    big = Entry("verdict", "s", AT, {"pad": "x" * MAX_ENTRY_BYTES}).encode()
    with pytest.raises(MalformedEvidence, match="too large"):
        decode(big)
    assert json.loads(big)["kind"] == "verdict"
