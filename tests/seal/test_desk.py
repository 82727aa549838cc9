"""The site process's sealing desk: which key a job may seal to, and what it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ccattest.errors import PolicyRejected
from ccattest.mesh.agent import SiteVerdict
from ccattest.mesh.config import SealMode
from ccattest.mesh.roster import Roster, SiteSpec
from ccattest.mesh.sealing import SealDesk
from ccattest.mesh.trustbook import TrustBook
from ccattest.seal.envelope import SealContext, open_sealed, seal
from ccattest.seal.keys import SealingKeys, SuiteName
from ccattest.testing.federation import SERVER, SimulatedFederation
from ccattest.timeutil import utcnow

ROSTER = Roster([SiteSpec("server"), SiteSpec("site-1"), SiteSpec("plain", False)])


class Journal:
    def __init__(self) -> None:
        self.actions: list[tuple[str, str, str, str]] = []

    def action(self, site: str, cause: str, action: str, detail: str) -> None:
        self.actions.append((site, cause, action, detail))


def _desk(mode: SealMode, journal: Journal | None = None) -> tuple[SealDesk, TrustBook]:
    trust = TrustBook("server")
    keys = SealingKeys(SuiteName.X25519, utcnow())
    return SealDesk("server", keys, trust, ROSTER, mode, journal), trust


def _affirming_verdict_about_site_1() -> SiteVerdict:
    """A real one: site-1's evidence judged by the server of an in-process federation."""
    fed = SimulatedFederation.create(1, sealing=SuiteName.X25519)
    try:
        assert fed.register("site-1")[0]
        entry = fed.sites[SERVER].trust.entry("site-1")
        assert entry is not None and entry.verdict.seal_key is not None
        fed.round()
        entry = fed.sites[SERVER].trust.entry("site-1")
        assert entry is not None and entry.definitive and entry.verdict.affirming
        return entry.verdict
    finally:
        fed.close()


def test_off_seals_nothing_and_expects_nothing() -> None:
    desk, _ = _desk(SealMode.OFF)
    assert desk.recipient("site-1", utcnow()) is None and not desk.expects_sealed("site-1")
    unsealed = SealDesk("server", None, TrustBook("server"), ROSTER, SealMode.ON)
    assert unsealed.recipient("site-1", utcnow()) is None
    with pytest.raises(PolicyRejected, match="does not seal"):
        unsealed.unwrap(2, "00", b"", b"", utcnow())


def test_a_trusted_peer_gets_its_attested_key_and_an_untrusted_one_nothing() -> None:
    journal = Journal()
    desk, trust = _desk(SealMode.ON, journal)
    at = utcnow()
    with pytest.raises(PolicyRejected, match="nothing is sealed to site-1: no current"):
        desk.recipient("site-1", at)
    with pytest.raises(PolicyRejected):
        desk.recipient("site-1", at)  # the same refusal is recorded once
    assert len(journal.actions) == 1 and journal.actions[0][2] == "seal_refused"
    verdict = _affirming_verdict_about_site_1()
    trust.record(verdict, definitive=True)
    at = utcnow()
    assert desk.recipient("site-1", at) == verdict.seal_key
    trust.exclude("site-1", "measurement matches no reference value")
    with pytest.raises(PolicyRejected, match="measurement matches no reference value"):
        desk.recipient("site-1", at)
    assert len(journal.actions) == 2  # a new reason is a new entry
    assert desk.recipient("plain", at) is None and not desk.expects_sealed("plain")
    assert desk.expects_sealed("site-1")


def test_required_refuses_a_non_cc_peer() -> None:
    journal = Journal()
    desk, _ = _desk(SealMode.REQUIRED, journal)
    with pytest.raises(PolicyRejected, match="not CC-enabled and sealing is required"):
        desk.recipient("plain", utcnow())
    assert journal.actions[0][:3] == ("plain", "unattested", "seal_refused")


def test_unwrap_opens_with_the_current_keys() -> None:
    desk, _ = _desk(SealMode.ON)
    at = utcnow()
    assert desk.keys is not None
    mine = desk.keys.current(at).public
    context = SealContext("j", "train", 1, "site-1", "server")
    sealed = seal(b"result", mine, context)
    assert open_sealed(sealed, lambda *a: desk.unwrap(*a, at), context) == b"result"
    later = at + timedelta(days=1)
    assert open_sealed(sealed, lambda *a: desk.unwrap(*a, later), context) == b"result"
