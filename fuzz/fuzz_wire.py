"""Messages sites exchange (NVFlare cell payloads and FLARE authorizer tokens): the
payload decoding of nvflare.transport, then the mesh.wire decoders a body is handed to:
evidence lists (evidence_from_wire), round transcripts (Transcript.from_wire), witnessed log
views (record.witness.LogView.from_wire), hex and time fields (parse_hex, parse_time)."""

from __future__ import annotations

import json

import common

with common.instrumented():
    from ccattest.mesh.wire import (
        Transcript,
        evidence_from_wire,
        evidence_to_wire,
        parse_hex,
        parse_time,
    )
    from ccattest.nvflare.transport import _decode
    from ccattest.record.witness import LogView
    from ccattest.testing.cases import FIXED_NOW
    from ccattest.testing.software import SoftwareFixture


def entry(data: bytes) -> None:
    body = _decode(data)
    if "evidence" in body:
        evidence_from_wire(body["evidence"])
    if "transcript" in body:
        Transcript.from_wire(body["transcript"]).nonce()
    if "log" in body:
        LogView.from_wire(body["log"])
    if "challenge" in body:
        parse_hex(body["challenge"], 32, "challenge")
    if "time" in body:
        parse_time(body["time"], "time")


def seeds() -> list[bytes]:
    evidence, _, _ = SoftwareFixture.create().evidence(bytes(32))
    transcript = Transcript.build("round-1", {"site-a": bytes(32), "site-b": b"\1" * 32},
                                  FIXED_NOW)
    bodies = [
        {"evidence": evidence_to_wire([evidence]), "challenge": "00" * 32,
         "time": FIXED_NOW.isoformat()},
        {"transcript": transcript.to_wire(), "evidence": evidence_to_wire([evidence])},
        {"log": {"checkpoint": "origin\n1\nAAAA\n\n— site AAAA\n", "from": 0, "proof": []}},
    ]
    return [json.dumps(body).encode() for body in bodies]


if __name__ == "__main__":
    common.main("wire", entry, seeds())
