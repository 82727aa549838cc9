"""Shared material for the attack catalog: an in-process federation whose honest sites are
registered and attested, one set of test keys per platform, and the check that an attack
did no harm to the honest sites. Factories come from ccattest.testing, never copied."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from ccattest.testing.federation import SERVER, SimulatedFederation
from ccattest.testing.nvgpu import NvgpuFixture
from ccattest.testing.snp import SnpFixture, SnpKeys
from ccattest.testing.tdx import TdxFixture, TdxKeys
from ccattest.timeutil import utcnow

CLIENTS = ("site-1", "site-2", "site-3")


@pytest.fixture
def fed() -> Iterator[SimulatedFederation]:
    """Server and three clients, all registered and judged definitively in one round."""
    federation = SimulatedFederation.create(len(CLIENTS))
    try:
        for name in CLIENTS:
            accepted, why = federation.register(name)
            assert accepted, why
        report = federation.round()
        assert not report.unreachable
        yield federation
    finally:
        federation.close()


def assert_honest_unharmed(fed: SimulatedFederation, honest: Sequence[str]) -> None:
    """Every honest site is still trusted by the server and by each other honest site, none
    of them is excluded anywhere, and a job among them is still admitted."""
    at = utcnow()
    everyone = [SERVER, *honest]
    for viewer in everyone:
        trust = fed.sites[viewer].trust
        excluded = trust.excluded()
        for site in everyone:
            assert site not in excluded, f"{viewer} excluded honest {site}: {excluded[site]}"
            if site != viewer:
                assert trust.is_trusted(site, at), f"{viewer} no longer trusts honest {site}"
    decision = fed.gate.check(everyone, at=at)
    assert decision.allowed, decision.explain()


@pytest.fixture(scope="session")
def snp_keys() -> SnpKeys:
    return SnpKeys.generate()


@pytest.fixture(scope="session")
def milan(snp_keys: SnpKeys) -> SnpFixture:
    return SnpFixture.create("Milan", keys=snp_keys)


@pytest.fixture(scope="session")
def genoa() -> SnpFixture:
    """Its own keys: AMD's ARKs differ per product (the shared test keys would not)."""
    return SnpFixture.create("Genoa")


@pytest.fixture(scope="session")
def genoa_vlek(snp_keys: SnpKeys) -> SnpFixture:
    return SnpFixture.create("Genoa", signing_key="vlek", keys=snp_keys)


@pytest.fixture(scope="session")
def tdx() -> TdxFixture:
    return TdxFixture.create(keys=TdxKeys.generate())


@pytest.fixture(scope="session")
def hopper() -> NvgpuFixture:
    return NvgpuFixture.create("HOPPER")
