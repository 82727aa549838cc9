"""Collateral: the vendor certificates, CRLs and other endorsements verification needs.

- `cache`: CollateralCache, items keyed by kind and key, served only while valid.
- `bundle`: offline bundles (export at a connected site, import at an air-gapped one) and
  prefilling a cache for a list of reports.
- `http`: ServiceHttp, the retrying, size-bounded HTTP client every fetcher uses.
- Fetchers live with their platform: `ccattest.platforms.snp.kds` (AMD KDS),
  `ccattest.platforms.tdx.pcs` (Intel PCS/PCCS), `ccattest.platforms.nvgpu.rimservice` and
  `.ocsp` (NVIDIA).

Only the cache is imported here; import `ccattest.collateral.bundle` for bundles (it uses the
fetchers, which use the cache).
"""

from .cache import CachedItem, CollateralCache, Window, register_kind

__all__ = ["CachedItem", "CollateralCache", "Window", "register_kind"]
