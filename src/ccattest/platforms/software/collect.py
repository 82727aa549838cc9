"""The software attester: measures declared items and signs reports with the site key."""

from __future__ import annotations

import hashlib
import platform as host_platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from cryptography.hazmat.primitives import serialization

from ...errors import ConfigError
from ...evidence import Evidence
from . import PLATFORM
from .abi import SoftwareReport
from .measure import MeasuredItem, measure_file, measure_setting, replay
from .pki import SiteCredentials


def key_id(public_raw: bytes) -> bytes:
    return hashlib.sha256(public_raw).digest()


class SoftwareAttester:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, site: SiteCredentials, items: Sequence[MeasuredItem], *,
                 svn: int = 0, debug: bool = False) -> None:
        if not 0 <= svn < 2**32:
            raise ConfigError("svn out of range", expected="0 to 2**32-1", found=svn)
        self.site = site
        self.items = tuple(items)
        self.measurement = replay(self.items)
        self.svn = svn
        self.debug = debug
        public_raw = site.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._key_id = key_id(public_raw)
        self._cert_der = site.certificate.public_bytes(serialization.Encoding.DER)

    def collect(self, report_data: bytes) -> Evidence:
        if len(report_data) != 64:
            raise ConfigError("report_data must be 64 bytes", expected=64, found=len(report_data))
        report = SoftwareReport(
            version=1, debug=self.debug, svn=self.svn, measurement=self.measurement,
            report_data=report_data, identity=self.site.identity, key_id=self._key_id,
        )
        signed = report.with_signature(self.site.key.sign(report.signed_bytes()))
        return Evidence(
            platform=PLATFORM,
            report=signed.to_bytes(),
            endorsements={"site_cert": self._cert_der},
            attester=self.site.identity,
            log=tuple(item.to_log() for item in self.items),
        )


class LiveSoftwareAttester(SoftwareAttester):
    """Re-measures its declared items at every collection, so a file changed after start
    shows up in the next evidence (as a runtime measurement register would)."""

    def __init__(self, site: SiteCredentials, measure: Callable[[], Sequence[MeasuredItem]],
                 *, svn: int = 0, debug: bool = False) -> None:
        super().__init__(site, measure(), svn=svn, debug=debug)
        self._measure = measure

    def collect(self, report_data: bytes) -> Evidence:
        self.items = tuple(self._measure())
        self.measurement = replay(self.items)
        return super().collect(report_data)


def default_items(extra_files: Sequence[Path] = (),
                  settings: Sequence[tuple[str, str]] = ()) -> list[MeasuredItem]:
    """What `ccattest collect` measures unless told otherwise: ccattest itself, the Python
    runtime, then whatever files and settings the user declares, in that order."""
    package_root = Path(__file__).resolve().parents[2]
    items = [measure_file(path, f"ccattest/{path.relative_to(package_root).as_posix()}")
             for path in sorted(package_root.rglob("*.py"))]
    items.append(measure_setting("python", host_platform.python_version()))
    items.extend(measure_file(path) for path in extra_files)
    items.extend(measure_setting(name, value) for name, value in settings)
    return items
