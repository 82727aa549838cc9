"""The GPU verifier's RIM step: find the driver and VBIOS RIMs a report names, verify them,
and compare the report's measurements with them.

RIMs come from files the caller gives (matched to the report by id) or from the NVIDIA RIM
service through the collateral cache (offline when asked). The verifier calls this only for
evidence whose chain, signature and nonce already held.

Each given file is verified once per verification (its XML signature is the costly part),
then the driver and VBIOS RIMs are picked from the verified ones by kind. When the RIM
service cannot be reached, the first failure ends the step with one error naming every RIM
that was still needed: no second try for the second RIM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ...errors import CollateralUnavailable, ConfigError
from .abi import GpuReport
from .rim import Kind, Rim, compare, rim_ids, verify_rim
from .rimservice import RimClient, RimServiceUnreachable
from .verify import RIM_VALIDITY


class RimCheck:
    """The verifier's `rim` hook. Given RIM files are verified (signature and chain) at each
    verification's own time, each file once. Besides compare()'s claims it returns, under
    verify.RIM_VALIDITY, the notAfter of every certificate in the RIM chains it used."""

    def __init__(self, files: Sequence[bytes] = (), *, client: RimClient | None = None) -> None:
        self.client = client
        self.files = tuple(files)

    def _given(self, at: datetime) -> list[Rim]:
        return [verify_rim(xml, at=at) for xml in self.files]

    def _find(self, given: Sequence[Rim], wanted: str, kind: Kind, version: str,
              at: datetime) -> Rim | None:
        """The given RIM of `kind` with the wanted id or version, else the first given one of
        that kind (compare() then reports version_match False), else the service's."""
        candidates = [rim for rim in given if rim.kind == kind]
        for rim in candidates:
            if rim.rim_id == wanted or rim.colloquial_version.lower() == version.lower():
                return rim
        if candidates:
            return candidates[0]
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
                                        expected=", ".join(fields),
                                        found="missing " + ", ".join(missing))
        try:
            ids = rim_ids(**fields, arch=str(claims.get("arch", "hopper")).lower(),
                          chip_info=claims.get("chip_info"))
        except ConfigError as error:
            raise CollateralUnavailable("cannot name this report's RIMs",
                                        found=error.message) from None
        given = self._given(at)
        driver_version, vbios_version = str(fields["driver_version"]), str(fields["vbios_version"])
        try:
            driver = self._find(given, ids.driver, "driver", driver_version, at)
            vbios = self._find(given, ids.vbios, "vbios", vbios_version, at)
        except RimServiceUnreachable as error:
            needed = [rim_id for rim_id, kind in ((ids.driver, "driver"), (ids.vbios, "vbios"))
                      if not any(rim.kind == kind for rim in given)]
            raise CollateralUnavailable(error.message, expected=" and ".join(needed),
                                        found=error.found, hint=error.hint) from None
        if driver is None and vbios is None:
            raise CollateralUnavailable("no RIM for this report", expected=f"{ids.driver}, "
                                        f"{ids.vbios}", hint="pass --rim FILE or --collateral")
        compared = compare(driver, vbios, report.measurements(),
                           nvdec0_enabled=bool(claims.get("nvdec0_enabled")),
                           driver_version=driver_version, vbios_version=vbios_version)
        # the verdict rests on both signing chains: the verifier bounds valid_until by them
        validity = tuple(bound for rim in (driver, vbios) if rim is not None
                         for bound in rim.validity)
        return {**compared, RIM_VALIDITY: validity}
