"""The TDX attester: a quote from inside the TD, through Linux configfs-tsm (see
platforms/tsm.py); `outblob` is the quote, produced by the host's quoting enclave. The
legacy /dev/tdx_guest quote ioctl is not supported.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ...errors import ConfigError, PlatformUnavailable
from ...evidence import Evidence
from ..tsm import TSM_ROOT, ConfigfsTsm
from . import PLATFORM

PROVIDER = "tdx_guest"


class TdxAttester(ConfigfsTsm):
    platform: ClassVar[str] = PLATFORM

    def __init__(self, tsm_root: Path = TSM_ROOT) -> None:
        self.tsm_root = Path(tsm_root)

    def collect(self, report_data: bytes) -> Evidence:
        if len(report_data) != 64:
            raise ConfigError("report_data must be 64 bytes", expected=64, found=len(report_data))
        if not self.tsm_root.is_dir():
            raise PlatformUnavailable(
                "no TDX guest interface on this machine", expected=f"{self.tsm_root} "
                "(configfs-tsm)", found="it does not exist",
                hint="run inside a TDX guest (Linux 6.7+, tdx_guest module, configfs mounted)")
        quote, _ = self._tsm_request((PROVIDER,), [("inblob", bytes(report_data))])
        if not quote:
            raise PlatformUnavailable("configfs-tsm returned an empty quote",
                                      found=str(self.tsm_root),
                                      hint="is the host's quoting service (QGS) running?")
        return Evidence(PLATFORM, quote)
