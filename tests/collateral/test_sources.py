"""The shared collateral-source helpers (collateral/sources.py) that the CLI and the CC
manager both use; the real-evidence paths are in tests/mesh/test_collateral_config.py."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from ccattest.collateral import CollateralCache
from ccattest.collateral.sources import (
    CollateralSource,
    SnpLookupVerifier,
    is_dcap_collateral,
    open_cache,
    snp_lacks_certificates,
    snp_with_collateral,
    tdx_fixed_collateral,
)
from ccattest.errors import CollateralUnavailable, ConfigError
from ccattest.evidence import Evidence
from ccattest.platforms.snp.verify import SnpVerifier
from ccattest.testing.snp import KEY_INFO, SnpFixture


@pytest.fixture(scope="module")
def fixture() -> SnpFixture:
    return SnpFixture.create(version=2)  # a v2 report names no product


def bare(fixture: SnpFixture, **changes: object) -> Evidence:
    return Evidence("snp", fixture.sign(fixture.report(bytes(64), **changes)))


def test_open_cache_memory_folder_default_and_bundle(tmp_path, monkeypatch):
    assert open_cache(None).directory is None
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_cache(None, default=Path("~/cache")).directory == tmp_path / "cache"
    assert open_cache(tmp_path / "c", default=Path("~/cache")).directory == tmp_path / "c"
    (tmp_path / "bundle.json").write_text("{}")
    with pytest.raises(ConfigError, match="bundle"):
        open_cache(tmp_path / "bundle.json")


def test_which_snp_evidence_lacks_certificates(fixture):
    evidence = bare(fixture)
    assert snp_lacks_certificates(evidence)
    for key in ("vcek", "vlek", "auxblob", "cert_chain"):
        assert not snp_lacks_certificates(Evidence("snp", evidence.report, {key: b"x"}))
    assert not snp_lacks_certificates(Evidence("tdx", b"quote"))


def test_snp_lookup_tries_every_product_and_reports_the_miss(fixture, tmp_path):
    with pytest.raises(CollateralUnavailable, match="offline and no cached") as info:
        snp_with_collateral(bare(fixture), CollateralCache(None), offline=True, at=fixture.now)
    assert "Milan" in str(info.value)  # the first product tried
    with pytest.raises(ConfigError, match="not signed by a VCEK or VLEK"):
        snp_with_collateral(bare(fixture, key_info=KEY_INFO["none"]), CollateralCache(None),
                            offline=True, at=fixture.now)


class BrokenCache(CollateralCache):
    """A cache whose folder cannot be read: every lookup is a ConfigError."""

    def get(self, kind: str, key: object, at: datetime) -> None:  # type: ignore[override]
        raise ConfigError("cannot read the collateral cache", found="permission denied")


def test_snp_lookup_verifier_turns_a_site_problem_into_missing_collateral(fixture):
    verifier = SnpLookupVerifier(SnpVerifier(), CollateralSource(BrokenCache(None)))
    with pytest.raises(CollateralUnavailable, match="cannot read the collateral cache"):
        verifier.verify(bare(fixture), report_data=bytes(64), at=fixture.now)


def test_dcap_collateral_shape():
    assert is_dcap_collateral(b'{"tcb_info": "{}"}')
    assert not is_dcap_collateral(b"[1]")
    assert not is_dcap_collateral(b"\xff not json")
    assert not is_dcap_collateral(b'{"format": "ccattest-collateral-bundle/1"}')


def test_fixed_tdx_collateral_only_for_a_pcs_folder_or_a_dcap_file(tmp_path):
    (tmp_path / "cache").mkdir()
    assert tdx_fixed_collateral(tmp_path / "cache") is None
    (tmp_path / "bundle.json").write_text('{"format": "x"}')
    assert tdx_fixed_collateral(tmp_path / "bundle.json") is None
    with pytest.raises(ConfigError, match="cannot read TDX collateral"):
        tdx_fixed_collateral(tmp_path / "bundle.json", read=_unreadable)
    from ccattest.collateral.sources import _read

    with pytest.raises(ConfigError, match="cannot read TDX collateral"):
        _read(tmp_path / "missing.json")


def _unreadable(path: Path) -> bytes:
    from ccattest.collateral.sources import _read

    return _read(path.parent / "nowhere" / path.name)
