"""The GPU verifier's RIM step: find the driver and VBIOS RIMs a report names, verify them,
and compare the report's measurements with them.

RIMs come from files the caller gives (matched to the report by id) or from the NVIDIA RIM
service through the collateral cache (offline when asked). The verifier calls this only for
evidence whose chain, signature and nonce already held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ...errors import CollateralUnavailable, ConfigError
from .abi import GpuReport
from .rim import Rim, compare, rim_ids, verify_rim
from .rimservice import RimClient


class RimCheck:
    """The verifier's `rim` hook. Given RIM files are parsed once and verified (signature and
    chain) at each verification's own time."""

    def __init__(self, files: Sequence[bytes] = (), *, client: RimClient | None = None) -> None:
        self.client = client
        self.files = tuple(files)

    def _find(self, wanted: str, kind: str, version: str, at: datetime) -> Rim | None:
        candidates = [rim for rim in (verify_rim(xml, at=at) for xml in self.files)
                      if rim.kind == kind]
        for rim in candidates:
            if rim.rim_id == wanted or rim.colloquial_version.lower() == version.lower():
                return rim
        if candidates:
            return candidates[0]  # compare() then reports version_match False
        if self.client is None:
            return None
        return verify_rim(self.client.rim(wanted, at=at), at=at, expected_id=wanted)

    def __call__(self, report: GpuReport, claims: Mapping[str, Any], at: datetime
                 ) -> Mapping[str, Any]:
        fields = {name: claims.get(name) for name in
                  ("driver_version", "vbios_version", "project", "project_sku", "chip_sku")}
        missing = [name for name, value in fields.items() if value is None]
        if missing:
            raise CollateralUnavailable("the report lacks what names its RIMs",
                                        expected=", ".join(fields), found=f"missing {missing}")
        try:
            ids = rim_ids(**fields, arch=str(claims.get("arch", "hopper")).lower(),
                          chip_info=claims.get("chip_info"))
        except ConfigError as error:
            raise CollateralUnavailable("cannot name this report's RIMs",
                                        found=error.message) from None
        driver = self._find(ids.driver, "driver", str(fields["driver_version"]), at)
        vbios = self._find(ids.vbios, "vbios", str(fields["vbios_version"]), at)
        if driver is None and vbios is None:
            raise CollateralUnavailable("no RIM for this report", expected=f"{ids.driver}, "
                                        f"{ids.vbios}", hint="pass --rim FILE or --collateral")
        return compare(driver, vbios, report.measurements(),
                       nvdec0_enabled=bool(claims.get("nvdec0_enabled")),
                       driver_version=str(fields["driver_version"]),
                       vbios_version=str(fields["vbios_version"]))
