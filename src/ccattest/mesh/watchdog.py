"""A client's watch on the server's rounds. Rounds are the server's to start, so a server
that went quiet (partitioned, stopped) is noticed by the time since the last round that
reached this site; the client's own configured `on_unreachable` then applies, after its
grace. The next round's fresh affirming evidence of the server re-admits it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ..timeutil import utcnow
from .actions import FailureHandler
from .rounds import RoundParticipant


class ServerWatch:
    def __init__(self, participant: RoundParticipant, handler: FailureHandler, server: str, *,
                 expected: timedelta, clock: Callable[[], datetime] = utcnow) -> None:
        """`expected`: the longest a healthy server leaves between two rounds reaching this
        site (its interval with jitter, and a round's deadline)."""
        self.participant = participant
        self.handler = handler
        self.server = server
        self.expected = expected
        self.clock = clock
        self.started = clock()

    def check(self) -> bool:
        """True when the server is overdue (and was reported unreachable)."""
        now = self.clock()
        last = self.participant.last_verified or self.started
        if now - last <= self.expected:
            return False
        quiet = (now - last).total_seconds()
        self.handler.unreachable(self.server, f"no round from the server for {quiet:.0f}s",
                                 now)
        return True
