"""Where verification gets the collateral the evidence does not carry: one place for the CLI
(`ccattest verify --collateral PATH [--offline]`) and the CC manager (`verify.snp` /
`verify.tdx` in cc_config), so that both look things up the same way.

A source is a cache folder (written by `ccattest collateral fetch`), a bundle file (from
`ccattest collateral export`, checked whole and held in memory), or nothing (memory only);
then, unless offline, the vendor's service (AMD KDS, Intel PCS) or the one configured
(a PCCS). Every item is checked before it is cached (the cache's checkers), and the
verifiers check it again against their pinned roots: a source is never trusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CCAttestError, CollateralUnavailable, ConfigError
from .cache import CollateralCache

if TYPE_CHECKING:
    from ..evidence import Evidence
    from ..mesh.telemetry import Telemetry
    from ..platforms.base import VerifiedClaims
    from ..platforms.snp.verify import SnpVerifier
    from ..platforms.tdx.collateral import TdxCollateral

# Endorsements that give SNP evidence its certificates: with any of them, nothing is looked up.
SNP_CERTIFICATES = frozenset({"vcek", "vlek", "auxblob", "cert_chain"})
SNP_PRODUCTS = ("Milan", "Genoa", "Turin")  # version 2 reports do not say which they are
TDX_FOLDER_MARK = "tcb_info.json"  # a folder of PCS answers (collateral_from_path)


def open_cache(source: Path | None, *, default: Path | None = None,
               telemetry: Telemetry | None = None) -> CollateralCache:
    """A collateral cache: the folder given, a bundle file loaded (checked whole) into
    memory, or `default` (None: memory only)."""
    from .bundle import import_bundle

    if source is not None and source.is_file():
        cache = CollateralCache(None, telemetry=telemetry)
        import_bundle(cache, source)
        return cache
    folder = source or default
    return CollateralCache(None if folder is None else folder.expanduser(), telemetry=telemetry)


# --- SEV-SNP -------------------------------------------------------------------------------------

def snp_lacks_certificates(evidence: Evidence) -> bool:
    """SNP evidence with neither a VCEK/VLEK nor a certificate table or chain."""
    return evidence.platform == "snp" and not SNP_CERTIFICATES & set(evidence.endorsements)


def snp_with_collateral(evidence: Evidence, cache: CollateralCache, *, offline: bool,
                        at: datetime, kds_url: str | None = None) -> Evidence:
    """The evidence with its VCEK and chain (and, where one can be had, the ARK's CRL) from
    `cache`, else from AMD KDS (or `kds_url`) unless offline. Each possible product is tried
    for reports that do not name theirs; CollateralUnavailable when none has collateral."""
    from ..platforms.snp.abi import parse_report
    from ..platforms.snp.kds import KDS_URL, KdsClient

    report = parse_report(evidence.report)
    products = [report.product] if report.product else list(SNP_PRODUCTS)
    misses: list[CCAttestError] = []
    with KdsClient(kds_url or KDS_URL, cache=cache, offline=offline) as client:
        for product in products:
            try:
                found = client.collateral_for(report, product=product, at=at)
            except (CollateralUnavailable, ConfigError) as error:
                misses.append(error)
                continue
            with contextlib.suppress(CollateralUnavailable, ConfigError):  # a claim, not a must
                found["crl"] = client.crl(product, report.signing_key, at=at)
            return dataclasses.replace(evidence,
                                       endorsements={**evidence.endorsements, **found})
    raise next((e for e in misses if isinstance(e, CollateralUnavailable)), misses[0])


# --- TDX -----------------------------------------------------------------------------------------

def is_dcap_collateral(data: bytes) -> bool:
    """The JSON shape of dcap-qvl's samples (a flat object with tcb_info), not a bundle."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and "tcb_info" in document


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read TDX collateral {path}", found=exc.strerror) from None


def tdx_fixed_collateral(source: Path, *, read: Callable[[Path], bytes] = _read
                         ) -> TdxCollateral | None:
    """Collateral for one FMSPC used as it is: a folder of PCS answers (tcb_info.json ...)
    or a dcap-qvl JSON file. None for a cache folder or a bundle (looked up per quote)."""
    from ..platforms.tdx.collateral_json import collateral_from_json
    from ..platforms.tdx.pcs import collateral_from_path

    if (source / TDX_FOLDER_MARK).is_file():
        return collateral_from_path(source)
    if source.is_file():
        data = read(source)
        if is_dcap_collateral(data):
            return collateral_from_json(data, source=str(source))
    return None


def tdx_collateral_for(quote: bytes, cache: CollateralCache, *, offline: bool, at: datetime,
                       pcs_url: str | None = None) -> TdxCollateral:
    """TCB Info, QE Identity and CRLs for the quote's FMSPC and PCK CA: from `cache`, else
    from Intel PCS (or `pcs_url`, a PCCS) unless offline."""
    from ..platforms.tdx.pcs import PCS_URL, PcsClient
    from ..platforms.tdx.verify import collateral_request

    fmspc, ca = collateral_request(quote)
    with PcsClient(pcs_url or PCS_URL, cache=cache, offline=offline) as client:
        return client.collateral(bytes.fromhex(fmspc), ca, at=at)


# --- verifiers that look collateral up (the CC manager's) ----------------------------------------

@dataclasses.dataclass(frozen=True)
class CollateralSource:
    """Where a verifier looks collateral up: `cache` first, then the service at `url` (None:
    the vendor's own) unless `offline`."""

    cache: CollateralCache
    offline: bool = True
    url: str | None = None


def _unavailable(error: ConfigError) -> CollateralUnavailable:
    # Raised while judging a peer (e.g. the cache folder cannot be written): that peer's
    # collateral is missing, which its verdict says; it is no reason to abort a round.
    return CollateralUnavailable(error.message, expected=error.expected, found=error.found,
                                 hint=error.hint)


class SnpLookupVerifier:
    """An SnpVerifier that, for evidence without certificates, first looks the VCEK, chain
    and CRL up in its source, exactly as `ccattest verify --collateral` does. Evidence that
    carries its certificates goes to the verifier untouched."""

    platform: ClassVar[str] = "snp"

    def __init__(self, verifier: SnpVerifier, source: CollateralSource) -> None:
        self.verifier, self.source = verifier, source

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime
               ) -> VerifiedClaims:
        if snp_lacks_certificates(evidence) and self._signed_by_a_chip_key(evidence):
            try:
                evidence = snp_with_collateral(evidence, self.source.cache,
                                               offline=self.source.offline, at=at,
                                               kds_url=self.source.url)
            except ConfigError as error:
                raise _unavailable(error) from None
        return self.verifier.verify(evidence, report_data=report_data, at=at)

    @staticmethod
    def _signed_by_a_chip_key(evidence: Evidence) -> bool:
        """Only a VCEK or VLEK signer has anything to look up; for any other report the
        verifier says what is wrong with it (MalformedEvidence or VerificationFailed)."""
        from ..platforms.snp.abi import parse_report
        from ..platforms.snp.kds import KEY_TYPES

        return parse_report(evidence.report).signing_key in KEY_TYPES


class TdxLookupVerifier:
    """A TdxVerifier whose collateral is looked up per quote (its FMSPC and PCK CA) in its
    source, exactly as `ccattest verify --collateral CACHE|BUNDLE` does. Collateral the
    evidence carries is not used: the site's own, from Intel, is the one it trusts to be
    the latest."""

    platform: ClassVar[str] = "tdx"

    def __init__(self, source: CollateralSource, *, allow_expired_collateral: bool = False
                 ) -> None:
        self.source, self.allow_expired_collateral = source, allow_expired_collateral

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime
               ) -> VerifiedClaims:
        from ..errors import MalformedEvidence
        from ..platforms.tdx.verify import TdxVerifier

        if evidence.platform != self.platform:
            raise MalformedEvidence("evidence is for another platform", expected=self.platform,
                                    found=evidence.platform)
        try:
            collateral = tdx_collateral_for(evidence.report, self.source.cache,
                                            offline=self.source.offline, at=at,
                                            pcs_url=self.source.url)
            verifier = TdxVerifier(collateral,
                                   allow_expired_collateral=self.allow_expired_collateral)
        except ConfigError as error:
            raise _unavailable(error) from None
        return verifier.verify(evidence, report_data=report_data, at=at)


__all__ = [
    "CollateralSource",
    "SnpLookupVerifier",
    "TdxLookupVerifier",
    "is_dcap_collateral",
    "open_cache",
    "snp_lacks_certificates",
    "snp_with_collateral",
    "tdx_collateral_for",
    "tdx_fixed_collateral",
]
