"""The TDX attester: a quote from inside the TD, through Linux configfs-tsm.

configfs-tsm (Documentation/ABI/testing/configfs-tsm): mkdir an entry, write 64 bytes to
`inblob`, read `outblob` (the quote, produced by the host's quoting enclave), then rmdir.
`provider` names the TEE (`tdx_guest`); `generation` counts writes to the entry: if it moved
by more than our one write, another process wrote in between and the quote may answer
someone else's report_data. The legacy /dev/tdx_guest quote ioctl is not supported.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import ClassVar

from ...errors import ConfigError, PlatformUnavailable
from ...evidence import Evidence
from . import PLATFORM

_log = logging.getLogger(__name__)
TSM_ROOT = Path("/sys/kernel/config/tsm/report")
PROVIDER = "tdx_guest"


class TdxAttester:
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
        entry = self.tsm_root / f"ccattest-{os.getpid()}-{secrets.token_hex(8)}"
        try:
            self._make_entry(entry)
        except OSError as exc:
            raise PlatformUnavailable(f"cannot create a configfs-tsm report entry in "
                                      f"{self.tsm_root}", found=exc.strerror,
                                      hint="collecting needs root") from None
        try:
            quote = self._read_entry(entry, bytes(report_data))
        finally:
            self._remove_entry(entry)
        return Evidence(PLATFORM, quote)

    def _make_entry(self, entry: Path) -> None:
        """mkdir; the kernel populates the entry's attribute files (tests fake that here)."""
        entry.mkdir(mode=0o700)

    def _write(self, entry: Path, name: str, data: bytes) -> None:
        """Write one attribute; each write bumps the entry's generation by one."""
        try:
            (entry / name).write_bytes(data)
        except OSError as exc:
            raise PlatformUnavailable(f"writing {name} failed", found=exc.strerror) from None

    def _remove_entry(self, entry: Path) -> None:
        """Best effort: a leftover entry costs a little kernel memory, not correctness."""
        try:
            entry.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            _log.warning("cannot remove configfs-tsm entry %s: %s", entry, exc.strerror)

    def _read_entry(self, entry: Path, report_data: bytes) -> bytes:
        provider = _read(entry / "provider").decode("ascii", "replace").strip()
        if provider != PROVIDER:
            raise PlatformUnavailable("configfs-tsm is served by another TEE", expected=PROVIDER,
                                      found=provider or "(empty)")
        before = _generation(entry)
        self._write(entry, "inblob", report_data)
        quote = _read(entry / "outblob")
        after = _generation(entry)
        if after != before + 1:
            raise PlatformUnavailable("another writer changed the configfs-tsm entry while we "
                                      "read it", expected=f"generation {before + 1}",
                                      found=f"generation {after}", hint="collect again")
        if not quote:
            raise PlatformUnavailable("configfs-tsm returned an empty quote", found=str(entry),
                                      hint="is the host's quoting service (QGS) running?")
        return quote


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PlatformUnavailable(f"configfs-tsm attribute {path.name} is missing",
                                  found=str(path)) from None
    except OSError as exc:
        raise PlatformUnavailable(f"reading {path} failed", found=exc.strerror,
                                  hint="the host's quoting service may be unreachable; "
                                       "retry") from None


def _generation(entry: Path) -> int:
    text = _read(entry / "generation").decode("ascii", "replace").strip()
    try:
        return int(text)
    except ValueError:
        raise PlatformUnavailable("configfs-tsm generation is not a number",
                                  found=repr(text)) from None
