"""The attester against a fake configfs-tsm tree: a subclass plays the kernel's part (files
appear on mkdir; writing inblob bumps generation and produces a signed quote)."""

import errno
import os
from pathlib import Path

import pytest

from ccattest.errors import ConfigError, PlatformUnavailable
from ccattest.platforms.base import Attester
from ccattest.platforms.tdx.collateral_json import collateral_to_json
from ccattest.platforms.tdx.collect import TdxAttester

REPORT_DATA = bytes(range(64))


class FakeKernel(TdxAttester):
    """configfs-tsm as the kernel serves it, in plain files."""

    def __init__(self, root: Path, fixture, *, provider: str = "tdx_guest\n", bump: int = 1,
                 quote: bytes | None = None):
        super().__init__(root)
        self.fixture, self.provider, self.bump, self.quote = fixture, provider, bump, quote
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
        quote = self.quote if self.quote is not None else self.fixture.quote(data).to_bytes()
        (entry / "outblob").write_bytes(quote)

    def _remove_entry(self, entry: Path) -> None:
        for child in entry.iterdir():
            child.unlink()
        super()._remove_entry(entry)


@pytest.fixture
def tsm_root(tmp_path):
    root = tmp_path / "tsm" / "report"
    root.mkdir(parents=True)
    return root


def test_collect_then_verify(tsm_root, tdx):
    attester = FakeKernel(tsm_root, tdx)
    assert isinstance(attester, Attester) and attester.platform == "tdx"
    evidence = attester.collect(REPORT_DATA)
    assert evidence.platform == "tdx" and evidence.endorsements == {}
    verified = tdx.verifier(tdx.collateral()).verify(evidence, report_data=REPORT_DATA,
                                                     at=tdx.now)
    assert verified.claims["report_data"] == REPORT_DATA.hex()
    assert list(tsm_root.iterdir()) == []
    assert attester.entries[0].name.startswith(f"ccattest-{os.getpid()}-")
    assert collateral_to_json(tdx.collateral())  # the collateral a verifier would need


def test_no_configfs_tsm(tmp_path):
    with pytest.raises(PlatformUnavailable, match="no TDX guest interface") as error:
        TdxAttester(tmp_path / "absent").collect(REPORT_DATA)
    assert "TDX guest" in str(error.value.hint)


def test_report_data_must_be_64_bytes(tsm_root, tdx):
    with pytest.raises(ConfigError, match="64 bytes"):
        FakeKernel(tsm_root, tdx).collect(b"short")


def test_another_tee_serves_configfs_tsm(tsm_root, tdx):
    with pytest.raises(PlatformUnavailable, match="another TEE"):
        FakeKernel(tsm_root, tdx, provider="sev_guest\n").collect(REPORT_DATA)
    assert list(tsm_root.iterdir()) == []


def test_concurrent_writer_is_detected(tsm_root, tdx):
    with pytest.raises(PlatformUnavailable, match="another writer"):
        FakeKernel(tsm_root, tdx, bump=2).collect(REPORT_DATA)


def test_empty_quote(tsm_root, tdx):
    with pytest.raises(PlatformUnavailable, match="empty quote") as error:
        FakeKernel(tsm_root, tdx, quote=b"").collect(REPORT_DATA)
    assert "QGS" in str(error.value.hint)


def test_generation_must_be_a_number(tsm_root, tdx):
    class Garbled(FakeKernel):
        def _make_entry(self, entry: Path) -> None:
            super()._make_entry(entry)
            (entry / "generation").write_text("x\n")

    with pytest.raises(PlatformUnavailable, match="not a number"):
        Garbled(tsm_root, tdx).collect(REPORT_DATA)


def test_missing_attribute(tsm_root, tdx):
    class NoProvider(FakeKernel):
        def _make_entry(self, entry: Path) -> None:
            super()._make_entry(entry)
            (entry / "provider").unlink()

    with pytest.raises(PlatformUnavailable, match="provider is missing"):
        NoProvider(tsm_root, tdx).collect(REPORT_DATA)


def test_unreadable_attribute(tsm_root, tdx):
    class Busy(FakeKernel):
        def _make_entry(self, entry: Path) -> None:
            super()._make_entry(entry)
            (entry / "outblob").mkdir()  # reading a directory fails with EISDIR

        def _write(self, entry: Path, name: str, data: bytes) -> None:
            generation = int((entry / "generation").read_text()) + 1
            (entry / "generation").write_text(f"{generation}\n")

        def _remove_entry(self, entry: Path) -> None:
            (entry / "outblob").rmdir()
            super()._remove_entry(entry)

    with pytest.raises(PlatformUnavailable, match=r"reading .*outblob failed"):
        Busy(tsm_root, tdx).collect(REPORT_DATA)


def test_cannot_create_entry(tsm_root, tdx):
    class Denied(FakeKernel):
        def _make_entry(self, entry: Path) -> None:
            raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(PlatformUnavailable, match="cannot create") as error:
        Denied(tsm_root, tdx).collect(REPORT_DATA)
    assert error.value.hint == "collecting needs root"


def test_write_failure(tsm_root, tdx):
    class ReadOnly(FakeKernel):
        def _make_entry(self, entry: Path) -> None:
            super()._make_entry(entry)
            (entry / "inblob").mkdir()

        def _remove_entry(self, entry: Path) -> None:
            (entry / "inblob").rmdir()
            super()._remove_entry(entry)

    with pytest.raises(PlatformUnavailable, match="writing inblob failed"):
        ReadOnly(tsm_root, tdx).collect(REPORT_DATA)


def test_entry_removal_is_best_effort(tsm_root, tdx, caplog):
    class Sticky(FakeKernel):
        def _remove_entry(self, entry: Path) -> None:
            for child in entry.iterdir():
                child.unlink()
            (entry / "keep").write_text("x")  # rmdir fails: directory not empty
            super(FakeKernel, self)._remove_entry(entry)

    Sticky(tsm_root, tdx).collect(REPORT_DATA)
    assert "cannot remove configfs-tsm entry" in caplog.text


def test_entry_already_gone(tsm_root, tdx):
    class Vanished(FakeKernel):
        def _remove_entry(self, entry: Path) -> None:
            for child in entry.iterdir():
                child.unlink()
            entry.rmdir()
            super(FakeKernel, self)._remove_entry(entry)

    assert Vanished(tsm_root, tdx).collect(REPORT_DATA).report
