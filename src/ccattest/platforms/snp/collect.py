"""The SNP attester: a report from inside the guest, through Linux configfs-tsm or, on older
kernels, the /dev/sev-guest SNP_GET_EXT_REPORT ioctl.

configfs-tsm (Documentation/ABI/testing/configfs-tsm): mkdir an entry, write 64 bytes to
`inblob`, read `outblob` (the report) and `auxblob` (the certificate table), then rmdir.
`generation` counts writes to the entry: if it moved by more than our one write, another
process wrote in between and the report may answer someone else's report_data.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
from pathlib import Path
from typing import ClassVar

from ...errors import ConfigError, PlatformUnavailable
from ...evidence import Evidence
from ..tsm import TSM_ROOT, ConfigfsTsm
from . import PLATFORM
from .abi import REPORT_SIZE

SEV_GUEST = Path("/dev/sev-guest")
PROVIDERS = ("sev_guest", "sev-guest")

# <linux/sev-guest.h>: struct snp_guest_request_ioctl is u8 msg_version (padded to 8),
# u64 req_data, u64 resp_data, u64 exitinfo2 (fw_error u32 | vmm_error u32): 32 bytes.
_GUEST_REQUEST = struct.Struct("<B7xQQII")
# struct snp_ext_report_req: snp_report_req (user_data 64, vmpl u32, 28 reserved), then
# u64 certs_address, u32 certs_len, padded to 8: 112 bytes.
_EXT_REPORT_REQ = struct.Struct("<64sI28xQI4x")
_IOC_TYPE = ord("S")
SNP_GET_EXT_REPORT = (3 << 30) | (_GUEST_REQUEST.size << 16) | (_IOC_TYPE << 8) | 0x2
RESPONSE_SIZE = 4000  # struct snp_report_resp
_RESPONSE_HEADER = struct.Struct("<II24x")  # MSG_REPORT_RSP: status, report_size, reserved
PAGE = 4096
CERTS_SIZE = 4 * PAGE  # the kernel wants whole pages; it says how many if more are needed
VMM_ERR_INVALID_LEN = 1


class SnpAttester(ConfigfsTsm):
    platform: ClassVar[str] = PLATFORM

    def __init__(self, tsm_root: Path = TSM_ROOT, sev_guest: Path = SEV_GUEST, *,
                 vmpl: int = 0) -> None:
        if not 0 <= vmpl <= 3:
            raise ConfigError("VMPL out of range", expected="0 to 3", found=vmpl)
        self.tsm_root = Path(tsm_root)
        self.sev_guest = Path(sev_guest)
        self.vmpl = vmpl

    def collect(self, report_data: bytes) -> Evidence:
        if len(report_data) != 64:
            raise ConfigError("report_data must be 64 bytes", expected=64, found=len(report_data))
        if self.tsm_root.is_dir():
            report, auxblob = self._via_tsm(bytes(report_data))
        elif self.sev_guest.exists():
            report, auxblob = self._via_ioctl(bytes(report_data))
        else:
            raise PlatformUnavailable(
                "no SEV-SNP guest interface on this machine",
                expected=f"{self.tsm_root} (configfs-tsm) or {self.sev_guest}",
                found="neither exists",
                hint="run inside an SEV-SNP guest; load the sev-guest module and mount configfs")
        endorsements = {"auxblob": auxblob} if auxblob.strip(b"\0") else {}
        return Evidence(PLATFORM, report, endorsements)

    # --- configfs-tsm ---------------------------------------------------------------------

    def _via_tsm(self, report_data: bytes) -> tuple[bytes, bytes]:
        writes = [("inblob", report_data)]
        if self.vmpl:  # privlevel is the VMPL for SNP; 0 is the kernel's default
            writes.insert(0, ("privlevel", f"{self.vmpl}\n".encode()))
        report, auxblob = self._tsm_request(PROVIDERS, writes, auxblob=True)
        if not report:
            raise PlatformUnavailable("configfs-tsm returned an empty report",
                                      found=str(self.tsm_root))
        return report, auxblob

    # --- /dev/sev-guest ---------------------------------------------------------------------

    def _via_ioctl(self, report_data: bytes) -> tuple[bytes, bytes]:
        try:
            fd = os.open(self.sev_guest, os.O_RDWR)
        except OSError as exc:
            raise PlatformUnavailable(f"cannot open {self.sev_guest}", found=exc.strerror,
                                      hint="collecting needs root") from None
        try:
            certs_size = CERTS_SIZE
            for _ in range(2):  # a second try when the certificates need more pages
                result = _ext_report(fd, report_data, self.vmpl, certs_size)
                if isinstance(result, tuple):
                    return result
                certs_size = -(-result // PAGE) * PAGE
            raise PlatformUnavailable("SNP_GET_EXT_REPORT kept asking for a larger buffer",
                                      found=f"{certs_size} bytes")
        finally:
            os.close(fd)


# --- ioctl structures (kept apart so that they are tested without a device) ------------------

def pack_ext_report_req(report_data: bytes, vmpl: int, certs_address: int,
                        certs_len: int) -> bytes:
    return _EXT_REPORT_REQ.pack(report_data, vmpl, certs_address, certs_len)


def pack_guest_request(request_address: int, response_address: int) -> bytes:
    return _GUEST_REQUEST.pack(1, request_address, response_address, 0, 0)


def unpack_guest_request(data: bytes) -> tuple[int, int]:
    """(fw_error, vmm_error) after the ioctl."""
    _, _, _, fw_error, vmm_error = _GUEST_REQUEST.unpack(data)
    return fw_error, vmm_error


def certs_len_of(request: bytes) -> int:
    return _EXT_REPORT_REQ.unpack(request)[3]


def report_from_response(response: bytes) -> bytes:
    status, size = _RESPONSE_HEADER.unpack_from(response, 0)
    if status != 0 or size != REPORT_SIZE:
        raise PlatformUnavailable("the firmware refused the report request",
                                  expected=f"status 0, {REPORT_SIZE}-byte report",
                                  found=f"status {status:#x}, size {size}")
    start = _RESPONSE_HEADER.size
    return response[start:start + size]


def _ext_report(fd: int, report_data: bytes, vmpl: int,
                certs_size: int) -> tuple[bytes, bytes] | int:
    """(report, certificate table), or the certificate buffer size the kernel asks for."""
    certs = ctypes.create_string_buffer(certs_size)
    response = ctypes.create_string_buffer(RESPONSE_SIZE)
    request = ctypes.create_string_buffer(
        pack_ext_report_req(report_data, vmpl, ctypes.addressof(certs), certs_size),
        _EXT_REPORT_REQ.size)
    control = bytearray(pack_guest_request(ctypes.addressof(request),
                                           ctypes.addressof(response)))
    try:
        fcntl.ioctl(fd, SNP_GET_EXT_REPORT, control)
    except OSError as exc:
        fw_error, vmm_error = unpack_guest_request(bytes(control))
        if vmm_error == VMM_ERR_INVALID_LEN:
            return certs_len_of(request.raw)
        raise PlatformUnavailable("SNP_GET_EXT_REPORT failed", found=f"{exc.strerror}; "
                                  f"fw_error {fw_error:#x}, vmm_error {vmm_error:#x}") from None
    return report_from_response(response.raw), certs.raw
