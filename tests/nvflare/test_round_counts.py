"""Every site counts the rounds it took part in: a client's status said `rounds: 0` after
the server's first round because only the coordinator counted (the bug this pins)."""

from __future__ import annotations

from ccattest.testing.federation import SERVER, SimulatedFederation


def test_clients_count_the_rounds_they_judged_in():
    federation = SimulatedFederation.create(2)
    try:
        assert federation.sites["site-1"].participant.completed() == (0, None)
        report = federation.round()
        for name in (SERVER, "site-1", "site-2"):
            count, last = federation.sites[name].participant.completed()
            assert count == 1, name
            assert last is not None and last["round_id"] == report.round_id
            assert last["sites"] == [SERVER, "site-1", "site-2"]
            assert last["judged"] == sorted({SERVER, "site-1", "site-2"} - {name})
        federation.round()
        assert federation.sites["site-2"].participant.completed()[0] == 2
    finally:
        federation.close()


def test_a_site_left_out_of_a_round_does_not_count_it():
    federation = SimulatedFederation.create(2)
    try:
        federation.sites[SERVER].trust.exclude("site-2", "test")
        federation.round()
        assert federation.sites["site-1"].participant.completed()[0] == 1
        assert federation.sites["site-2"].participant.completed() == (0, None)
    finally:
        federation.close()
