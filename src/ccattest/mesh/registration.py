"""Mutual attestation at registration, with verifier-issued freshness both ways.

NVFlare's registration carries one message each way, so the exchange is:

 1. client -> server (registration): `hello` = the client's challenge R for the server, a
    timestamp, and client evidence bound to H(R, t). The server has not challenged it yet:
    it checks the time window and that R was never seen, and judges the evidence only to
    turn obviously bad clients away early. The result is PROVISIONAL.
 2. server -> client (registration reply): server evidence bound to R (the client's own
    challenge: definitive for the client) and a server challenge N.
 3. client -> server (cell channel): client evidence bound to N. The server redeems N once
    and judges it: only now is the client DEFINITIVELY attested, and only definitive
    results pass the job gate. Neither side ever relies on evidence it did not challenge.

Every binding includes the authenticated identity the transport gives for the peer.

A restarted site registers afresh: nothing it proved before counts. A site this side
excluded (`handler`) is refused while its exclusion holds it out; otherwise its definitive
affirming verdict re-admits it (mesh/actions.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import MalformedEvidence, PolicyRejected, StaleEvidence
from ..freshness import ChallengeIssuer, ReplayCache, check_window
from .agent import SiteAgent, SiteVerdict
from .journal import Journal
from .trustbook import TrustBook
from .wire import bundle_from_wire, bundle_to_wire, parse_hex, parse_time

if TYPE_CHECKING:
    from .actions import FailureHandler

HELLO_CONTEXT = "ccattest/register/hello"
REPLY_CONTEXT = "ccattest/register/reply"
CONFIRM_CONTEXT = "ccattest/register/confirm"


def _hello_nonce(challenge: bytes, sent_at: datetime) -> bytes:
    return hashlib.sha256(b"ccattest/hello" + challenge + sent_at.isoformat().encode()).digest()


def _held_out(handler: FailureHandler | None, site: str, what: str) -> None:
    why = handler.blocks(site) if handler is not None else None
    if why is not None:
        raise PolicyRejected(f"{what}: {site} is {why}", expected="a site this site admits",
                             found="excluded", hint="an operator lifts a hold with "
                             f"`ccattest nvflare readmit {site}`; a back-off ends by itself")


def _rejection(verdict: SiteVerdict, what: str) -> PolicyRejected:
    return PolicyRejected(f"{what}: {verdict.site} is {verdict.status}",
                          found="; ".join(verdict.failures()[:4]) or verdict.status)


@dataclass
class RegistrationClient:
    agent: SiteAgent
    server: str  # the server's authenticated name, from this site's own startup kit
    trust: TrustBook
    journal: Journal | None = None
    handler: FailureHandler | None = None  # re-admits an excluded server, or refuses it

    def __post_init__(self) -> None:
        self._challenge: bytes | None = None
        self.journal = self.journal or Journal(None, self.agent.identity)

    def hello(self, at: datetime) -> dict[str, Any]:
        self._challenge = secrets.token_bytes(32)
        body: dict[str, Any] = {"challenge": self._challenge.hex(), "time": at.isoformat()}
        if self.agent.cc_enabled:
            nonce = _hello_nonce(self._challenge, at)
            body["evidence"] = bundle_to_wire(*self.agent.collect_bound(nonce, HELLO_CONTEXT,
                                                                         at))
        return body

    def on_reply(self, reply: dict[str, Any] | None, at: datetime) -> SiteVerdict:
        """Judge the server's answer to our challenge; raises PolicyRejected if untrusted."""
        if self._challenge is None:
            raise StaleEvidence("no registration challenge outstanding")
        challenge, self._challenge = self._challenge, None
        if not self.agent.roster.is_cc(self.server):
            verdict = SiteVerdict(self.server, at, cc_enabled=False)
        elif not reply or "evidence" not in reply:
            # The server is CC-enabled by our roster but sent nothing: never fall back to
            # judging our own evidence (NVFlare's CC manager does).
            raise PolicyRejected(f"server {self.server} sent no attestation evidence",
                                 expected="evidence bound to our challenge", found="none")
        else:
            evidence, key = bundle_from_wire(reply["evidence"])
            verdict = self.agent.judge(self.server, evidence, nonce=challenge,
                                       context=REPLY_CONTEXT, at=at, seal_key=key)
            _record(self.journal, verdict, evidence, "reply", definitive=True)
        self.trust.record(verdict, definitive=True)
        if verdict.cc_enabled and not verdict.affirming:
            raise _rejection(verdict, "the server failed attestation")
        if verdict.cc_enabled and self.handler is not None:
            _held_out(self.handler, self.server, "refusing the server")
            self.handler.affirmed(self.server, "fresh affirming evidence at registration")
        return verdict

    def confirm(self, reply: dict[str, Any]) -> dict[str, Any]:
        """Answer the server's challenge N (sent over the cell channel)."""
        nonce = parse_hex(reply.get("challenge"), 32, "server challenge")
        return {"challenge": nonce.hex(),
                "evidence": bundle_to_wire(*self.agent.collect_bound(nonce, CONFIRM_CONTEXT))}


class RegistrationServer:
    def __init__(self, agent: SiteAgent, trust: TrustBook, *,
                 window: timedelta = timedelta(minutes=2), journal: Journal | None = None,
                 handler: FailureHandler | None = None) -> None:
        self.agent = agent
        self.handler = handler  # exclusions: refuse a held-out client, re-admit at confirm
        self.trust = trust
        self.journal = journal or Journal(None, agent.identity)
        self.window = window
        self.issuer = ChallengeIssuer(ttl=window, verifier_id=agent.identity)
        self._seen = ReplayCache(ttl=2 * window, what="registration challenge")

    def on_hello(self, client: str, hello: Any, at: datetime) -> dict[str, Any]:
        """Judge a registering client provisionally; raise to refuse it; return the reply."""
        if not isinstance(hello, dict):
            raise MalformedEvidence("registration carries no ccattest data",
                                    found=type(hello).__name__)
        challenge = parse_hex(hello.get("challenge"), 32, "client challenge")
        sent_at = parse_time(hello.get("time"), "registration time")
        check_window(sent_at, at=at, max_age=self.window)
        self._seen.check_and_add(challenge, at=at)
        if self.agent.roster.is_cc(client):
            _held_out(self.handler, client, "registration refused")
            evidence, key = bundle_from_wire(hello.get("evidence"))
            verdict = self.agent.judge(client, evidence, nonce=_hello_nonce(challenge, sent_at),
                                       context=HELLO_CONTEXT, at=at, seal_key=key)
            _record(self.journal, verdict, evidence, "hello", definitive=False)
            self.trust.record(verdict, definitive=False)
            if not verdict.affirming:
                raise _rejection(verdict, "registration refused")
            if self.handler is not None:
                self.handler.rejoining(client)  # still excluded until its confirmation
        else:
            self.trust.record(SiteVerdict(client, at, cc_enabled=False), definitive=True)
            self.journal.registration(client, "hello", definitive=True, status="not-cc",
                                      verdict=None, at=at)
        reply: dict[str, Any] = {}
        if self.agent.cc_enabled:
            reply["evidence"] = bundle_to_wire(*self.agent.collect_bound(challenge,
                                                                          REPLY_CONTEXT, at))
        if self.agent.roster.is_cc(client):
            reply["challenge"] = self.issuer.issue(context=f"confirm:{client}", at=at).nonce.hex()
        return reply

    def on_confirm(self, client: str, body: Any, at: datetime) -> SiteVerdict:
        if not isinstance(body, dict):
            raise MalformedEvidence("confirmation is malformed")
        nonce = parse_hex(body.get("challenge"), 32, "challenge")
        self.issuer.redeem(nonce, context=f"confirm:{client}", at=at)
        evidence, key = bundle_from_wire(body.get("evidence"))
        verdict = self.agent.judge(client, evidence, nonce=nonce, context=CONFIRM_CONTEXT,
                                   at=at, seal_key=key)
        _record(self.journal, verdict, evidence, "confirm", definitive=True)
        self.trust.record(verdict, definitive=True)
        if self.handler is not None and verdict.cc_enabled:
            if verdict.affirming:
                self.handler.affirmed(client, "fresh affirming evidence at registration")
            else:
                self.handler.rejected(client, "; ".join(verdict.failures()[:3])
                                      or verdict.status)
        return verdict


def _record(journal: Journal, verdict: SiteVerdict, evidence: list[Any], stage: str, *,
            definitive: bool) -> None:
    index = journal.verdict(verdict, evidence, context=f"registration/{stage}",
                            definitive=definitive)
    journal.registration(verdict.site, stage, definitive=definitive, status=verdict.status,
                         verdict=index, at=verdict.at)
