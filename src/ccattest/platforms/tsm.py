"""Linux configfs-tsm (Documentation/ABI/testing/configfs-tsm), shared by the TEE attesters:
mkdir an entry, write its attributes (`inblob` with the 64-byte report_data, optionally
`privlevel`), read `outblob` (and `auxblob`), then rmdir.

`provider` names the TEE behind the interface; `generation` counts writes to the entry: if
it moved by more than our own writes, another process wrote in between and the outblob may
answer someone else's report_data. The `_make_entry`, `_write` and `_remove_entry` steps
are methods so that tests can play the kernel in a temporary folder.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from ..errors import PlatformUnavailable

_log = logging.getLogger(__name__)
TSM_ROOT = Path("/sys/kernel/config/tsm/report")


class ConfigfsTsm:
    """Mixed into an attester that has `tsm_root`."""

    tsm_root: Path

    def _tsm_request(self, providers: Sequence[str], writes: Sequence[tuple[str, bytes]], *,
                     auxblob: bool = False) -> tuple[bytes, bytes]:
        """(outblob, auxblob or b"") for one request, in an entry of our own."""
        entry = self.tsm_root / f"ccattest-{os.getpid()}-{secrets.token_hex(8)}"
        try:
            self._make_entry(entry)
        except OSError as exc:
            raise PlatformUnavailable(f"cannot create a configfs-tsm report entry in "
                                      f"{self.tsm_root}", found=exc.strerror,
                                      hint="collecting needs root") from None
        try:
            return self._exchange(entry, providers, writes, auxblob)
        finally:
            self._remove_entry(entry)

    def _exchange(self, entry: Path, providers: Sequence[str],
                  writes: Sequence[tuple[str, bytes]], auxblob: bool) -> tuple[bytes, bytes]:
        provider = read_attribute(entry / "provider").decode("ascii", "replace").strip()
        if provider not in providers:
            raise PlatformUnavailable("configfs-tsm is served by another TEE",
                                      expected=providers[0], found=provider or "(empty)")
        before = generation(entry)
        for name, data in writes:
            self._write(entry, name, data)
        out = read_attribute(entry / "outblob")
        aux = read_attribute(entry / "auxblob", missing_ok=True) if auxblob else b""
        after = generation(entry)
        if after != before + len(writes):
            raise PlatformUnavailable("another writer changed the configfs-tsm entry while we "
                                      "read it", expected=f"generation {before + len(writes)}",
                                      found=f"generation {after}", hint="collect again")
        return out, aux

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


def read_attribute(path: Path, *, missing_ok: bool = False) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return b""
        raise PlatformUnavailable(f"configfs-tsm attribute {path.name} is missing",
                                  found=str(path)) from None
    except OSError as exc:
        raise PlatformUnavailable(f"reading {path} failed", found=exc.strerror,
                                  hint="the firmware or the host's quoting service may be "
                                       "busy; retry") from None


def generation(entry: Path) -> int:
    text = read_attribute(entry / "generation").decode("ascii", "replace").strip()
    try:
        return int(text)
    except ValueError:
        raise PlatformUnavailable("configfs-tsm generation is not a number",
                                  found=repr(text)) from None
