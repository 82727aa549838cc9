"""The CC manager core, free of NVFlare: who must attest, how freshness is proven, what
happens when a site fails. The NVFlare adapter (ccattest.nvflare) only moves its messages
and applies its decisions."""
