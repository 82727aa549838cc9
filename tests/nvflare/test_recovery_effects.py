"""The NVFlare side of recovery: exclusions disable a client, re-admissions enable it."""

from __future__ import annotations

import pytest

pytest.importorskip("nvflare", reason="the [nvflare] extra is not installed")

from ccattest.errors import ConfigError
from ccattest.mesh.actions import ActionConfig, FailureHandler
from ccattest.mesh.trustbook import TrustBook
from ccattest.nvflare.admin import check_site, take_requests, write_request
from ccattest.nvflare.effects import ClientEffects, ServerEffects
from ccattest.timeutil import utcnow


class Engine:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.run_processes: dict = {}

    def disable_clients(self, names: list[str]) -> dict:
        self.calls.append(("disable", names))
        return {}

    def enable_clients(self, names: list[str]) -> dict:
        self.calls.append(("enable", names))
        return {}


def test_server_disables_on_exclusion_and_enables_on_readmission():
    engine, notes = Engine(), []
    trust = TrustBook("server")
    effects = ServerEffects(engine, trust, lambda *note: notes.append(note))
    handler = FailureHandler(ActionConfig(unreachable_grace_seconds=0), effects)
    handler.unreachable("site-2", "no answer", utcnow())
    assert engine.calls == [("disable", ["site-2"])] and "site-2" in trust.excluded()
    handler.rejoining("site-2")  # re-registering: NVFlare must let it finish registering
    assert engine.calls[-1] == ("enable", ["site-2"]) and "site-2" in trust.excluded()
    assert handler.affirmed("site-2", "fresh affirming evidence")
    assert engine.calls[-1] == ("enable", ["site-2"]) and not trust.excluded()
    assert [n[0] for n in notes] == ["alert", "exclude_site", "rejoin_allowed", "readmit_site"]
    handler.rejoining("site-1")  # not excluded: nothing to enable
    assert len(engine.calls) == 3


def test_client_readmits_a_peer_in_its_trust_book():
    notes = []
    trust = TrustBook("site-1")
    effects = ClientEffects(object(), trust, "server", lambda *note: notes.append(note))
    handler = FailureHandler(ActionConfig(readmit={"rejected": "auto"}), effects)
    handler.rejected("site-2", "bad")
    assert "site-2" in trust.excluded()
    assert handler.affirmed("site-2", "fresh")
    assert not trust.excluded() and notes[-1][:2] == ("readmit_site", "site-2")


def test_readmit_requests_are_taken_once(tmp_path):
    lifted = []

    def lift(site: str, by: str) -> str:
        if site == "site-9":
            raise ConfigError("site-9 is not excluded here")
        lifted.append((site, by))
        return f"{site}: hold lifted"

    assert take_requests(tmp_path, lift) == []
    write_request(tmp_path, "site-2", "ops", utcnow())
    write_request(tmp_path, "site-9", "ops", utcnow())
    (tmp_path / "readmit" / "junk.json").write_text("{not json")
    done = dict(take_requests(tmp_path, lift))
    assert done["site-2"] == "site-2: hold lifted" and "not excluded" in done["site-9"]
    assert "unreadable" in done["junk"]
    assert lifted == [("site-2", "ops (request file)")]
    assert take_requests(tmp_path, lift) == []  # consumed
    for bad in ("", "../x", ".hidden", "a/b"):
        with pytest.raises(ConfigError):
            check_site(bad)


def test_readmit_command_needs_one_channel_and_a_configured_kit(tmp_path):
    from tests.cli_process import ccattest

    assert "both or neither" in ccattest("nvflare", "readmit", "site-2", cwd=tmp_path,
                                         check=2).stderr.replace("\n", " ")
    kit = tmp_path / "site-1"
    assert "no ccattest configuration" in " ".join(ccattest(
        "nvflare", "readmit", "site-2", "--kit", str(kit), cwd=tmp_path, check=2).stderr.split())
    (kit / "local" / "cc").mkdir(parents=True)
    (kit / "local" / "cc" / "cc_config.yaml").write_text("site: site-1\n")
    done = ccattest("nvflare", "readmit", "site-2", "--kit", str(kit), cwd=tmp_path, check=0)
    assert "next round" in done.stdout
    assert (kit / "local" / "cc" / "readmit" / "site-2.json").is_file()
    ccattest("nvflare", "readmit", "../x", "--kit", str(kit), cwd=tmp_path, check=2)
    assert "not an admin startup kit" in " ".join(ccattest(
        "nvflare", "readmit", "site-2", "--admin", str(kit), cwd=tmp_path, check=2
    ).stderr.split())
