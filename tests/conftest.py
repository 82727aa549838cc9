"""Shared fixtures. Real vectors come from CCATTEST_VECTORS (default ../shared/vectors);
under CI a missing vectors folder fails the run instead of skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from ccattest.testing import SoftwareFixture

REPO = Path(__file__).resolve().parents[1]

settings.register_profile("default", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
# CI replays the same examples every run: a red CI then always means a changed behaviour.
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")


def vectors_dir() -> Path:
    return Path(os.environ.get("CCATTEST_VECTORS", REPO.parent / "shared" / "vectors"))


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI") == "true" and not (vectors_dir() / "MANIFEST.md").is_file():
        raise pytest.UsageError(f"CI=true but no vectors at {vectors_dir()} (set CCATTEST_VECTORS)")


@pytest.fixture
def vectors() -> Path:
    path = vectors_dir()
    if not (path / "MANIFEST.md").is_file():
        pytest.skip(f"no vectors at {path} (set CCATTEST_VECTORS)")
    return path


@pytest.fixture(scope="session")
def software() -> SoftwareFixture:
    return SoftwareFixture.create()
