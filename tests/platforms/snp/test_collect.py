"""The attester against a fake configfs-tsm tree: a subclass plays the kernel's part (files
appear on mkdir, writing inblob bumps generation and produces a signed report)."""

import ctypes
import errno
import os
import struct
from pathlib import Path

import pytest

from ccattest.errors import ConfigError, PlatformUnavailable
from ccattest.platforms.base import Attester
from ccattest.platforms.snp import collect
from ccattest.platforms.snp.collect import (
    RESPONSE_SIZE,
    SNP_GET_EXT_REPORT,
    SnpAttester,
    certs_len_of,
    pack_ext_report_req,
    pack_guest_request,
    report_from_response,
    unpack_guest_request,
)

REPORT_DATA = bytes(range(64))


class FakeKernel(SnpAttester):
    """configfs-tsm as the kernel serves it, in plain files."""

    def __init__(self, root: Path, fixture, *, provider: str = "sev_guest\n",
                 bump: int = 1, auxblob: bytes | None = None, **kwargs):
        super().__init__(root, root / "absent-sev-guest", **kwargs)
        self.fixture, self.provider, self.bump = fixture, provider, bump
        self.auxblob = fixture.auxblob() if auxblob is None else auxblob
        self.entries: list[Path] = []

    def _make_entry(self, entry: Path) -> None:
        super()._make_entry(entry)
        self.entries.append(entry)
        (entry / "provider").write_text(self.provider)
        (entry / "generation").write_text("0\n")

    def _write(self, entry: Path, name: str, data: bytes) -> None:
        super()._write(entry, name, data)
        generation = int((entry / "generation").read_text()) + self.bump
        (entry / "generation").write_text(f"{generation}\n")
        if name != "inblob":
            return
        vmpl = int((entry / "privlevel").read_text()) if (entry / "privlevel").exists() else 0
        report = self.fixture.sign(self.fixture.report(data, vmpl=vmpl))
        (entry / "outblob").write_bytes(report)
        if self.auxblob:
            (entry / "auxblob").write_bytes(self.auxblob)

    def _remove_entry(self, entry: Path) -> None:
        for child in entry.iterdir():
            child.unlink()
        super()._remove_entry(entry)


@pytest.fixture
def tsm_root(tmp_path):
    root = tmp_path / "tsm" / "report"
    root.mkdir(parents=True)
    return root


def test_collect_then_verify(tsm_root, milan):
    attester = FakeKernel(tsm_root, milan)
    assert isinstance(attester, Attester) and attester.platform == "snp"
    evidence = attester.collect(REPORT_DATA)
    assert evidence.platform == "snp" and set(evidence.endorsements) == {"auxblob"}
    verified = milan.verifier().verify(evidence, report_data=REPORT_DATA, at=milan.now)
    assert verified.claims["report_data"] == REPORT_DATA.hex()
    assert verified.collateral["vcek"]["source"] == "evidence:auxblob/vcek"
    assert list(tsm_root.iterdir()) == []  # the entry was removed
    assert attester.entries[0].name.startswith(f"ccattest-{os.getpid()}-")


def test_each_collection_uses_a_fresh_entry(tsm_root, milan):
    attester = FakeKernel(tsm_root, milan)
    attester.collect(REPORT_DATA)
    attester.collect(REPORT_DATA)
    assert len(set(attester.entries)) == 2


@pytest.mark.parametrize("auxblob", [b"", bytes(4096)])
def test_empty_auxblob_gives_no_endorsement(tsm_root, milan, auxblob):
    evidence = FakeKernel(tsm_root, milan, auxblob=auxblob).collect(REPORT_DATA)
    assert evidence.endorsements == {}


def test_dash_provider_is_accepted(tsm_root, milan):
    FakeKernel(tsm_root, milan, provider="sev-guest").collect(REPORT_DATA)


def test_another_provider_is_refused(tsm_root, milan):
    with pytest.raises(PlatformUnavailable, match="another TEE") as info:
        FakeKernel(tsm_root, milan, provider="tdx_guest\n").collect(REPORT_DATA)
    assert info.value.found == "tdx_guest"
    assert list(tsm_root.iterdir()) == []


@pytest.mark.parametrize("bump", [0, 2])
def test_a_racing_writer_is_detected(tsm_root, milan, bump):
    with pytest.raises(PlatformUnavailable, match="another writer"):
        FakeKernel(tsm_root, milan, bump=bump).collect(REPORT_DATA)


class BrokenKernel(FakeKernel):
    def __init__(self, *args, damage, **kwargs):
        super().__init__(*args, **kwargs)
        self.damage = damage

    def _write(self, entry: Path, name: str, data: bytes) -> None:
        super()._write(entry, name, data)
        self.damage(entry)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda entry: (entry / "outblob").unlink(), "outblob is missing"),
    (lambda entry: (entry / "outblob").write_bytes(b""), "empty report"),
    (lambda entry: (entry / "generation").write_text("many\n"), "not a number"),
])
def test_damaged_entries(tsm_root, milan, damage, message):
    with pytest.raises(PlatformUnavailable, match=message):
        BrokenKernel(tsm_root, milan, damage=damage).collect(REPORT_DATA)


def test_unreadable_attribute(tsm_root, milan):
    def damage(entry: Path) -> None:
        (entry / "outblob").unlink()
        (entry / "outblob").mkdir()

    class Kernel(BrokenKernel):
        def _remove_entry(self, entry: Path) -> None:
            (entry / "outblob").rmdir()
            super()._remove_entry(entry)

    with pytest.raises(PlatformUnavailable, match=r"reading .*outblob failed"):
        Kernel(tsm_root, milan, damage=damage).collect(REPORT_DATA)


def test_entry_that_cannot_be_made(tsm_root, milan):
    class Kernel(FakeKernel):
        def _make_entry(self, entry: Path) -> None:
            raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(PlatformUnavailable, match="cannot create") as info:
        Kernel(tsm_root, milan).collect(REPORT_DATA)
    assert "root" in info.value.hint


def test_inblob_write_failure(tsm_root, milan):
    class Kernel(FakeKernel):
        def _make_entry(self, entry: Path) -> None:
            super()._make_entry(entry)
            (entry / "inblob").mkdir()

        def _remove_entry(self, entry: Path) -> None:
            (entry / "inblob").rmdir()
            super()._remove_entry(entry)

    with pytest.raises(PlatformUnavailable, match="writing inblob failed"):
        Kernel(tsm_root, milan).collect(REPORT_DATA)


def test_entry_left_behind_is_logged_not_fatal(tsm_root, milan, caplog):
    class Kernel(FakeKernel):
        def _remove_entry(self, entry: Path) -> None:
            SnpAttester._remove_entry(self, entry)  # files still inside: ENOTEMPTY

    Kernel(tsm_root, milan).collect(REPORT_DATA)
    assert "cannot remove configfs-tsm entry" in caplog.text


def test_vanished_entry_is_fine(tsm_root, milan):
    class Kernel(FakeKernel):
        def _remove_entry(self, entry: Path) -> None:
            super()._remove_entry(entry)
            SnpAttester._remove_entry(self, entry)

    Kernel(tsm_root, milan).collect(REPORT_DATA)


def test_no_interface_names_what_was_looked_at(tmp_path):
    attester = SnpAttester(tmp_path / "no-tsm", tmp_path / "no-sev-guest")
    with pytest.raises(PlatformUnavailable, match="no SEV-SNP guest interface") as info:
        attester.collect(REPORT_DATA)
    assert str(tmp_path / "no-tsm") in str(info.value.expected)
    assert str(tmp_path / "no-sev-guest") in str(info.value.expected)


def test_report_data_must_be_64_bytes(tmp_path):
    with pytest.raises(ConfigError, match="64 bytes"):
        SnpAttester(tmp_path, tmp_path).collect(b"short")


def test_vmpl_goes_to_privlevel(tsm_root, milan):
    evidence = FakeKernel(tsm_root, milan, vmpl=2).collect(REPORT_DATA)
    verified = milan.verifier().verify(evidence, report_data=REPORT_DATA, at=milan.now)
    assert verified.claims["vmpl"] == 2
    with pytest.raises(ConfigError, match="VMPL"):
        SnpAttester(vmpl=4)


def test_defaults_are_the_kernel_paths():
    attester = SnpAttester()
    assert attester.tsm_root == Path("/sys/kernel/config/tsm/report")
    assert attester.sev_guest == Path("/dev/sev-guest")


# --- /dev/sev-guest ----------------------------------------------------------------------------

def test_ioctl_on_something_that_is_not_the_device(tmp_path):
    device = tmp_path / "sev-guest"
    device.write_bytes(b"")
    with pytest.raises(PlatformUnavailable, match="SNP_GET_EXT_REPORT failed"):
        SnpAttester(tmp_path / "no-tsm", device).collect(REPORT_DATA)


def test_device_that_cannot_be_opened(tmp_path):
    with pytest.raises(PlatformUnavailable, match="cannot open"):
        SnpAttester(tmp_path / "no-tsm", tmp_path).collect(REPORT_DATA)  # a directory


def test_ioctl_retries_with_the_size_the_kernel_asks_for(tmp_path, monkeypatch, milan):
    device = tmp_path / "sev-guest"
    device.write_bytes(b"")
    sizes = []

    def fake(fd, report_data, vmpl, certs_size):
        sizes.append(certs_size)
        return 5000 if len(sizes) == 1 else (b"report", milan.auxblob())

    monkeypatch.setattr(collect, "_ext_report", fake)
    evidence = SnpAttester(tmp_path / "no-tsm", device).collect(REPORT_DATA)
    assert sizes == [16384, 8192]
    assert evidence.report == b"report" and "auxblob" in evidence.endorsements


def test_ioctl_gives_up_after_two_size_requests(tmp_path, monkeypatch):
    device = tmp_path / "sev-guest"
    device.write_bytes(b"")
    monkeypatch.setattr(collect, "_ext_report", lambda *args: 1 << 20)
    with pytest.raises(PlatformUnavailable, match="larger buffer"):
        SnpAttester(tmp_path / "no-tsm", device).collect(REPORT_DATA)


def test_ioctl_structures():
    assert SNP_GET_EXT_REPORT == 0xC0205302
    request = pack_ext_report_req(REPORT_DATA, 2, 0x1000, 0x4000)
    assert len(request) == 112
    assert request[:64] == REPORT_DATA and request[64:68] == struct.pack("<I", 2)
    assert request[68:96] == bytes(28)
    assert request[96:104] == struct.pack("<Q", 0x1000) and certs_len_of(request) == 0x4000
    control = pack_guest_request(0x2000, 0x3000)
    assert len(control) == 32 and control[0] == 1 and control[1:8] == bytes(7)
    assert control[8:24] == struct.pack("<QQ", 0x2000, 0x3000)
    assert unpack_guest_request(control[:24] + struct.pack("<II", 5, 1)) == (5, 1)


def test_report_response_parsing():
    report = bytes(range(256)) * 4 + bytes(160)
    response = struct.pack("<II", 0, 0x4A0) + bytes(24) + report
    assert report_from_response(response.ljust(RESPONSE_SIZE, b"\0")) == report
    with pytest.raises(PlatformUnavailable, match="refused"):
        report_from_response(struct.pack("<II", 0x16, 0) + bytes(RESPONSE_SIZE - 8))


class FakeDriver:
    """The sev-guest driver's side of SNP_GET_EXT_REPORT, through the caller's buffers."""

    def __init__(self, report: bytes, table: bytes, *, needs: int = 0):
        self.report, self.table, self.needs = report, table, needs
        self.calls = 0

    def __call__(self, fd, request_code, control):
        assert request_code == SNP_GET_EXT_REPORT
        self.calls += 1
        _, request_address, response_address, _, _ = struct.unpack("<B7xQQII", control)
        request = ctypes.string_at(request_address, 112)
        certs_address, certs_len = struct.unpack_from("<QI", request, 96)
        if certs_len < self.needs:
            ctypes.memmove(request_address + 104, struct.pack("<I", self.needs), 4)
            control[24:32] = struct.pack("<II", 0, 1)  # vmm_error: invalid length
            raise OSError(errno.EIO, "Input/output error")
        response = struct.pack("<II", 0, len(self.report)) + bytes(24) + self.report
        ctypes.memmove(response_address, response, len(response))
        ctypes.memmove(certs_address, self.table, len(self.table))
        return 0


def test_ioctl_path_with_a_fake_driver(tmp_path, monkeypatch, milan):
    device = tmp_path / "sev-guest"
    device.write_bytes(b"")
    report = milan.sign(milan.report(REPORT_DATA))
    driver = FakeDriver(report, milan.auxblob(), needs=20000)
    monkeypatch.setattr(collect.fcntl, "ioctl", driver)
    evidence = SnpAttester(tmp_path / "no-tsm", device).collect(REPORT_DATA)
    assert driver.calls == 2 and evidence.report == report
    verified = milan.verifier().verify(evidence, report_data=REPORT_DATA, at=milan.now)
    assert verified.collateral["vcek"]["source"] == "evidence:auxblob/vcek"
