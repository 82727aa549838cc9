from datetime import UTC, datetime, timedelta, timezone

import pytest

from ccattest.errors import ConfigError
from ccattest.timeutil import parse_instant, require_aware, utcnow


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-11-26T12:00:00Z", datetime(2026, 11, 26, 12, tzinfo=UTC)),
     ("2026-11-26T12:00:00z", datetime(2026, 11, 26, 12, tzinfo=UTC)),
     ("2026-11-26", datetime(2026, 11, 26, tzinfo=UTC)),
     ("2026-11-26T14:00:00+02:00", datetime(2026, 11, 26, 12, tzinfo=UTC))],
)
def test_parse_instant(text, expected):
    assert parse_instant(text) == expected


def test_parse_instant_rejects_junk():
    with pytest.raises(ConfigError, match="not an ISO 8601 time") as info:
        parse_instant("tomorrow")
    assert "2026-11-26T12:00:00Z" in str(info.value.expected)


def test_require_aware_converts_and_refuses_naive():
    plus_two = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert require_aware(plus_two) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="verification time is a naive datetime"):
        require_aware(datetime(2026, 1, 1), "verification time")


def test_utcnow_is_aware():
    assert utcnow().tzinfo is not None
