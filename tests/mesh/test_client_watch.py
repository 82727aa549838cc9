"""A client's own judgement of what it cannot see: a peer the server leaves out of its
rounds, and a server that stops sending rounds, are unreachable to the client too (by its
grace and its action); both come back on fresh affirming evidence, without a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ccattest.mesh.actions import ActionConfig, Cause
from ccattest.mesh.trustbook import TrustBook
from ccattest.mesh.watchdog import ServerWatch
from ccattest.nvflare.effects import ClientEffects
from ccattest.testing.federation import SERVER, SimulatedFederation
from ccattest.timeutil import utcnow

GRACE0 = ActionConfig(unreachable_grace_seconds=0)


@pytest.fixture
def fed():
    federation = SimulatedFederation.create(2, actions=GRACE0)
    for name in ("site-1", "site-2"):
        assert federation.register(name)[0]
    for site in federation.sites.values():
        site.participant.watch_peers = site.name != SERVER
    yield federation
    federation.close()


def test_a_peer_left_out_of_rounds_is_excluded_by_clients_and_readmitted(fed) -> None:
    site_1 = fed.sites["site-1"]
    fed.round()
    assert not site_1.trust.excluded()
    fed.transports[SERVER].down.add("site-2")  # partitioned from the server
    fed.round()
    assert "site-2" in fed.sites[SERVER].trust.excluded()
    assert "site-2" in site_1.trust.excluded()  # by site-1's own judgement, not the server's
    assert "missing from round" in site_1.trust.excluded()["site-2"]
    assert ("exclude_site", "site-2") in site_1.effects.actions()
    fed.transports[SERVER].down.discard("site-2")
    fed.round()
    assert not fed.sites[SERVER].trust.excluded() and not site_1.trust.excluded()


def test_a_left_out_peer_within_the_grace_is_only_alerted(fed) -> None:
    for site in fed.sites.values():
        site.handler.config = ActionConfig(unreachable_grace_seconds=3600)
    fed.round()
    fed.transports[SERVER].down.add("site-2")
    fed.round()
    assert not fed.sites["site-1"].trust.excluded()
    calls = fed.sites["site-1"].effects.calls
    assert any(c[:2] == ("alert", "site-2") and "3600s grace" in c[2] for c in calls)


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now


def test_a_silent_server_is_unreachable_after_a_round_and_grace_and_comes_back(fed) -> None:
    site_1 = fed.sites["site-1"]
    clock = Clock()
    watch = ServerWatch(site_1.participant, site_1.handler, SERVER,
                        expected=timedelta(seconds=90), clock=clock)
    assert not watch.check()
    fed.round()
    clock.now = site_1.participant.last_verified + timedelta(seconds=60)
    assert not watch.check()
    clock.now += timedelta(seconds=40)
    assert watch.check()  # 100 s without a round: unreachable (grace 0: excluded)
    assert "no round from the server" in site_1.trust.excluded()[SERVER]
    fed.round()  # the server is back: its fresh affirming evidence re-admits it
    assert SERVER not in site_1.trust.excluded()


def test_an_unreachable_server_does_not_make_a_client_leave_but_a_rejected_one_does() -> None:
    class Engine:
        stopped = False

        def shutdown(self) -> None:
            self.stopped = True

    notes: list[tuple[str, str, str]] = []
    engine = Engine()
    effects = ClientEffects(engine, TrustBook("site-1"), SERVER,
                            lambda *note: notes.append(note))
    effects.exclude_site(SERVER, "no round for 100s", Cause.UNREACHABLE)
    assert not engine.stopped and SERVER in effects.trust.excluded()
    effects.exclude_site(SERVER, "measurement matches no reference value", Cause.REJECTED)
    assert engine.stopped
