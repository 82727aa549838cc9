"""Attacks on what crosses the wire: oversized and malformed messages on the cell channel
and in the mesh's decoders, oversized evidence and certificate chains. Memory is measured
with tracemalloc: a refusal must come before the input is copied or parsed."""

from __future__ import annotations

import dataclasses
import tracemalloc
from typing import Any

import pytest

from ccattest.errors import MalformedEvidence
from ccattest.evidence import MAX_ENVELOPE_BYTES, Evidence
from ccattest.mesh.rounds import ATTEST, CONTRIBUTE, VERIFY, RoundCoordinator
from ccattest.mesh.wire import MAX_EVIDENCE_PER_SITE, evidence_from_wire
from ccattest.testing.federation import SERVER
from ccattest.testing.nvgpu import pem as gpu_pem
from ccattest.testing.snp import pem as snp_pem

from .catalog import attack
from .conftest import assert_honest_unharmed

nvflare = pytest.importorskip("nvflare")
from nvflare.fuel.f3.cellnet.defs import MessageHeaderKey, ReturnCode  # noqa: E402
from nvflare.fuel.f3.message import Message  # noqa: E402

from ccattest.nvflare.transport import MAX_BODY, CellTransport, serve  # noqa: E402

BOMB = b"[" * 200_000 + b"]" * 200_000  # 400 KB of nesting: under every size cap


def _peak(call: Any) -> int:
    """Bytes allocated at the peak while `call` runs (its input already exists)."""
    tracemalloc.start()
    try:
        call()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


class FakeCell:
    """A cell whose peer answers every request with `payload`; records served callbacks."""

    def __init__(self, payload: bytes = b"{}") -> None:
        self.payload = payload
        self.callbacks: dict[str, Any] = {}

    def send_request(self, *, channel, topic, target, request, timeout):
        return Message(headers={MessageHeaderKey.RETURN_CODE: ReturnCode.OK},
                       payload=self.payload)

    def register_request_cb(self, *, channel, topic, cb):
        self.callbacks[topic] = cb


@attack("oversized cell message",
        does="sends a ccattest message over the cell channel larger than any real one (17 MiB) "
             "to exhaust the receiver's memory",
        stopped_by="the cell decoder refuses bodies over MAX_BODY (16 MiB) before copying or "
                   "parsing them: MalformedEvidence 'ccattest message too large', memory "
                   "stays under 1 MiB")
def test_oversized_cell_message():
    huge = b" " * (MAX_BODY + 1024 * 1024)
    transport = CellTransport(FakeCell(huge))

    def ask() -> None:
        with pytest.raises(MalformedEvidence, match="ccattest message too large"):
            transport.request("site-2", CONTRIBUTE, {}, timeout=1)

    assert _peak(ask) < 1024 * 1024


@attack("deeply nested message on the cell channel",
        does="a peer answers the coordinator with 400 KB of nested JSON arrays (under every "
             "size cap) so that decoding it overflows Python's recursion limit",
        stopped_by="the cell decoder turns RecursionError into MalformedEvidence; the "
                   "coordinator counts the peer unreachable and the round goes on for the "
                   "honest sites (before the fix the RecursionError aborted every round)")
def test_deeply_nested_cell_message(fed):
    with pytest.raises(MalformedEvidence, match="not JSON"):
        CellTransport(FakeCell(BOMB)).request("site-2", CONTRIBUTE, {}, timeout=1)
    bomb = CellTransport(FakeCell(BOMB))

    class Mixed:
        def request(self, target, topic, body, *, timeout):
            if target == "site-2":
                return bomb.request(target, topic, body, timeout=timeout)
            return fed.transports[SERVER].request(target, topic, body, timeout=timeout)

    server = fed.sites[SERVER]
    coordinator = RoundCoordinator(server.participant, Mixed(), fed.roster,
                                   members=lambda: list(fed.sites), handler=server.handler)
    try:
        report = coordinator.run_round()
    finally:
        coordinator.close()
    assert "not JSON" in report.unreachable["site-2"]
    assert report.verdicts[SERVER]["site-1"]["affirming"]
    assert_honest_unharmed(fed, ["site-1", "site-3"])


@attack("malformed messages on the cell channel",
        does="sends a site's cell handler bodies that are not JSON, not objects, deeply nested, "
             "or carry round messages of the wrong shape",
        stopped_by="every decoder (cell, transcript, evidence list, envelope) raises "
                   "MalformedEvidence only; the handler answers with the error, never crashes "
                   "or hangs, and the site keeps serving")
def test_malformed_cell_messages(fed):
    cell = FakeCell()
    site = fed.sites["site-1"]
    serve(cell, [CONTRIBUTE, ATTEST, VERIFY], site.participant.handle)
    handler = cell.callbacks[ATTEST]
    bodies = [b"not json", b"[1, 2]", BOMB, b"\xff\xfe", b'{"transcript": 3}',
              b'{"transcript": {"round_id": "x", "contributions": [["site-1", "zz"]],'
              b' "deadline": "2026-01-01T00:00:00+00:00"}}',
              b'{"transcript": {"round_id": "x", "contributions": [], "deadline": "soon"}}']
    for body in bodies:
        request = Message(headers={MessageHeaderKey.ORIGIN: SERVER,
                                   MessageHeaderKey.TOPIC: ATTEST}, payload=body)
        answer = handler(request)
        assert answer.get_header(MessageHeaderKey.RETURN_CODE) == ReturnCode.OK
        assert b"MalformedEvidence" in answer.payload, (body[:40], answer.payload)
    for bad in ({"round_id": ""}, {"round_id": "x" * 65}, {"round_id": 7}):
        with pytest.raises(MalformedEvidence, match="round id"):
            site.participant.handle(SERVER, CONTRIBUTE, bad)
    assert_honest_unharmed(fed, ["site-1", "site-2", "site-3"])


@attack("oversized evidence",
        does="hands a verifier an evidence envelope of several megabytes, or more evidence "
             "items per site than any machine has",
        stopped_by="Evidence.from_json refuses envelopes over 4 MiB before parsing JSON, and "
                   "the wire form takes at most 8 evidence items per site (MalformedEvidence)")
def test_oversized_evidence(software):
    huge = "x" * (MAX_ENVELOPE_BYTES + 1)

    def parse() -> None:
        with pytest.raises(MalformedEvidence, match="too large"):
            Evidence.from_json(huge)

    assert _peak(parse) < 64 * 1024
    evidence, _, _ = software.evidence()
    with pytest.raises(MalformedEvidence, match="at most"):
        evidence_from_wire([evidence.to_dict()] * (MAX_EVIDENCE_PER_SITE + 1))


@attack("oversized certificate chain",
        does="endorses evidence with a multi-megabyte certificate chain (thousands of copies "
             "of a genuine certificate), many times over, to fill the verifier's memory and "
             "its caches",
        stopped_by="SNP endorsements over 64 KiB are refused before parsing (so the verifier's "
                   "certificate cache never holds them); GPU chains longer than 8 "
                   "certificates are refused (MalformedEvidence)")
def test_oversized_certificate_chain(milan, hopper):
    evidence, report_data, _ = milan.evidence()
    vcek = milan.endorsements()["vcek"]
    copies = (4 * 1024 * 1024) // len(snp_pem(milan.intermediate))
    chains = [snp_pem(milan.intermediate, milan.ark) * copies + bytes([n]) for n in range(8)]
    verifier = milan.verifier()

    def flood() -> None:
        for chain in chains:
            flooded = dataclasses.replace(evidence, endorsements={"vcek": vcek,
                                                                  "cert_chain": chain})
            with pytest.raises(MalformedEvidence, match="too large"):
                verifier.verify(flooded, report_data=report_data, at=milan.now)

    tracemalloc.start()
    flood()
    retained, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert retained < 4 * 1024 * 1024  # nothing of the 32 MiB sent is kept
    gpu, nonce = hopper.evidence()
    long_chain = hopper.chain() + gpu_pem(hopper.brom) * 4
    with pytest.raises(MalformedEvidence, match="chain too long"):
        hopper.verifier().verify(dataclasses.replace(gpu, endorsements={
            "cert_chain": long_chain}), report_data=nonce, at=hopper.now)
