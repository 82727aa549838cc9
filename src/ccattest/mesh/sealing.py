"""What a site lets its job processes do with its sealing keys (NVFlare-free): find the
attested key to seal to a peer, and unwrap a sealed payload's content key. The private key
never leaves the site's own process; nothing is sealed to a peer without a current
affirming verdict, and a refusal is recorded once per peer and reason."""

from __future__ import annotations

import threading
from datetime import datetime

from ..errors import PolicyRejected
from ..seal.envelope import unwrap_with
from ..seal.keys import SealingKeys, SealingPublicKey
from .config import SealMode
from .journal import Journal
from .roster import Roster
from .trustbook import TrustBook


class SealDesk:
    def __init__(self, identity: str, keys: SealingKeys | None, trust: TrustBook,
                 roster: Roster, mode: SealMode, journal: Journal | None = None) -> None:
        self.identity = identity
        self.keys = keys
        self.trust = trust
        self.roster = roster
        self.mode = mode
        self.journal = journal
        self._lock = threading.Lock()
        self._refused: dict[str, str] = {}  # peer -> the refusal last recorded

    def recipient(self, site: str, at: datetime) -> SealingPublicKey | None:
        """The key to seal to `site`; None: send in clear (sealing off, or a non-CC peer
        when sealing is `on`). Raises PolicyRejected: send nothing."""
        if self.mode is SealMode.OFF or self.keys is None:
            return None
        if not self.roster.is_cc(site):
            if self.mode is SealMode.REQUIRED:
                self._refuse(site, f"{site} is not CC-enabled and sealing is required")
            return None
        key = self.trust.sealing_key(site, at)
        if key is None:
            why = self.trust.excluded().get(site) or "no current affirming verdict"
            self._refuse(site, f"nothing is sealed to {site}: {why}")
        with self._lock:
            self._refused.pop(site, None)
        return key

    def expects_sealed(self, sender: str) -> bool:
        """Whether a payload from `sender` must arrive sealed (no downgrade to clear)."""
        return (self.mode is not SealMode.OFF and self.keys is not None
                and self.roster.is_cc(sender))

    def unwrap(self, suite_id: int, key_id: str, enc: bytes, info: bytes, at: datetime
               ) -> bytes:
        if self.keys is None:
            raise PolicyRejected("this site does not seal", hint="seal: mode is off here")
        return unwrap_with(self.keys.openers(at), suite_id, key_id, enc, info)

    def _refuse(self, site: str, detail: str) -> None:
        with self._lock:
            first = self._refused.get(site) != detail
            self._refused[site] = detail
        if first and self.journal is not None:
            self.journal.action(site, "unattested", "seal_refused", detail)
        raise PolicyRejected(detail, hint="the peer gets payloads again once it attests "
                                          "afresh with an affirming verdict")
