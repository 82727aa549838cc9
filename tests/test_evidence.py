import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import CCAttestError, ConfigError, MalformedEvidence
from ccattest.evidence import Challenge, Evidence, bind

NONCE = bytes(range(32))


def test_bind_sizes_and_determinism():
    assert len(bind(NONCE, "site-1")) == 64
    assert len(bind(NONCE, "site-1", size=32)) == 32
    assert bind(NONCE, "site-1", "ctx") == bind(NONCE, "site-1", b"ctx")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((NONCE, "site-1", ""), (NONCE, "site-2", "")),
        ((NONCE, "site-1", ""), (NONCE, "site-1", "x")),
        ((NONCE, "site-1", "2"), (NONCE, "site-12", "")),  # framing: no concatenation clash
        ((NONCE, "site-1", ""), (bytes(32), "site-1", "")),
    ],
)
def test_bind_separates_every_input(a, b):
    assert bind(*a) != bind(*b)


def test_bind_rejects_bad_inputs():
    with pytest.raises(ConfigError, match="nonce has the wrong length"):
        bind(b"short", "site-1")
    with pytest.raises(ConfigError, match="attester identity is empty"):
        bind(NONCE, "")
    with pytest.raises(ConfigError, match="report_data size"):
        bind(NONCE, "site-1", size=48)


@given(st.binary(min_size=16, max_size=64), st.text(min_size=1, max_size=20),
       st.binary(min_size=16, max_size=64), st.text(min_size=1, max_size=20))
def test_bind_is_injective_on_samples(n1, id1, n2, id2):
    if (n1, id1) != (n2, id2):
        assert bind(n1, id1) != bind(n2, id2)


def test_challenge_round_trip_and_report_data():
    now = datetime(2026, 11, 26, tzinfo=UTC)
    challenge = Challenge(NONCE, now, now + timedelta(minutes=2), "server", "register")
    assert Challenge.from_dict(challenge.to_dict()) == challenge
    assert challenge.report_data("site-1") == bind(NONCE, "site-1", "server|register")
    with pytest.raises(MalformedEvidence):
        Challenge.from_dict({"nonce": "zz"})


evidence_strategy = st.builds(
    Evidence,
    platform=st.sampled_from(["software", "snp"]),
    report=st.binary(max_size=300),
    endorsements=st.dictionaries(st.text(min_size=1, max_size=8), st.binary(max_size=50),
                                 max_size=3),
    attester=st.none() | st.text(max_size=10),
    log=st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
                 max_size=3).map(tuple),
)


@given(evidence_strategy)
def test_envelope_round_trip(evidence):
    assert Evidence.from_json(evidence.to_json()) == evidence


@given(st.binary(max_size=400))
def test_envelope_parser_only_raises_malformed(data):
    with contextlib.suppress(MalformedEvidence):
        Evidence.from_json(data)


@given(evidence_strategy, st.sampled_from(["format", "platform", "report", "endorsements",
                                           "attester", "log"]),
       st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers())))
def test_envelope_mutated_fields_are_rejected_or_parsed(evidence, key, value):
    body = json.loads(evidence.to_json())
    body[key] = value
    try:
        parsed = Evidence.from_json(json.dumps(body))
    except CCAttestError as error:
        assert isinstance(error, MalformedEvidence)
    else:
        assert parsed.platform == body["platform"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a ccattest evidence envelope"),
        ({"format": "other"}, "not a ccattest evidence envelope"),
        ({"format": "ccattest-evidence/1", "platform": 3}, "'platform' has the wrong type"),
        ({"format": "ccattest-evidence/1", "platform": "x", "report": "!!"}, "not valid base64"),
        ({"format": "ccattest-evidence/1", "platform": "x", "report": "", "attester": 1},
         "'attester' must be a string"),
        ({"format": "ccattest-evidence/1", "platform": "x", "report": "", "log": [1]},
         "'log' must be a list of string maps"),
        ({"format": "ccattest-evidence/1", "platform": "x", "report": "",
          "endorsements": {"a": 1}}, "must be base64 text"),
    ],
)
def test_envelope_errors_say_what_is_wrong(body, message):
    with pytest.raises(MalformedEvidence, match=message):
        Evidence.from_json(json.dumps(body))


def test_envelope_size_limit_and_deep_nesting():
    with pytest.raises(MalformedEvidence, match="too large"):
        Evidence.from_json(b" " * (4 * 1024 * 1024 + 1))
    with pytest.raises(MalformedEvidence):
        Evidence.from_json("[" * 100_000 + "]" * 100_000)
