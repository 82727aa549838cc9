import pytest

from ccattest.errors import ConfigError
from ccattest.platforms.base import (
    Attester,
    PlatformEntry,
    Verifier,
    attester_class,
    detect_platform,
    platforms,
    register_platform,
    verifier_class,
)


def test_software_is_registered_and_loads_lazily(software):
    assert "software" in platforms()
    assert isinstance(software.attester, attester_class("software"))
    assert isinstance(software.verifier(), verifier_class("software"))
    assert isinstance(software.attester, Attester)
    assert isinstance(software.verifier(), Verifier)


def test_unknown_platform_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown platform 'tpm'") as info:
        verifier_class("tpm")
    assert "software" in str(info.value.expected)


def test_registration_conflicts():
    entry = platforms()["software"]
    register_platform(entry)  # same entry again is fine
    with pytest.raises(ConfigError, match="already registered"):
        register_platform(PlatformEntry("software", "a:B", "c:D"))


def test_detect(software):
    evidence, _, _ = software.evidence()
    assert detect_platform(evidence.report) == "software"


def test_service_platforms_have_no_attester():
    from ccattest.errors import PlatformUnavailable

    with pytest.raises(PlatformUnavailable, match="issued by a service"):
        attester_class("ita")
