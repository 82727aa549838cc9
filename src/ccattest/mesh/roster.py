"""Which sites take part, which are CC-enabled, and what each must present."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class SiteSpec:
    name: str
    cc_enabled: bool = True
    platforms: tuple[str, ...] = ("software",)


class Roster:
    """Immutable; a site not listed is treated per `unknown_sites_cc` (default: CC-enabled,
    so an unlisted site must attest rather than slip through)."""

    def __init__(self, sites: Iterable[SiteSpec] = (), *, require_all_cc: bool = False,
                 default_platforms: tuple[str, ...] = ("software",)) -> None:
        self._sites: dict[str, SiteSpec] = {}
        for site in sites:
            if site.name in self._sites:
                raise ConfigError(f"site {site.name!r} is listed twice in the roster")
            if site.cc_enabled and not site.platforms:
                raise ConfigError(f"CC-enabled site {site.name!r} names no platform")
            self._sites[site.name] = site
        self.require_all_cc = require_all_cc
        self.default_platforms = default_platforms
        if require_all_cc:
            lax = [s.name for s in self._sites.values() if not s.cc_enabled]
            if lax:
                raise ConfigError("the roster requires every site to be CC-enabled",
                                  found=f"not CC-enabled: {', '.join(lax)}")

    def spec(self, name: str) -> SiteSpec:
        return self._sites.get(name) or SiteSpec(name, True, self.default_platforms)

    def is_cc(self, name: str) -> bool:
        return self.spec(name).cc_enabled

    def names(self) -> list[str]:
        return sorted(self._sites)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping[str, object]], *,
                     require_all_cc: bool = False) -> Roster:
        sites = []
        for name, entry in data.items():
            platforms = entry.get("platforms", ("software",))
            if not isinstance(platforms, list | tuple):
                raise ConfigError(f"roster entry {name!r}: platforms must be a list")
            sites.append(SiteSpec(name, bool(entry.get("cc_enabled", True)),
                                  tuple(str(p) for p in platforms)))
        return cls(sites, require_all_cc=require_all_cc)
