"""Job receipts: what the server relied on when it admitted a job, provable offline.

A receipt is an EAR-compatible JWT (eat_profile, iat, ear.verifier-id, one submod per
participant with its status, trust vector and policy) signed with the server's result key
(tokens.py), carrying one more claim, ``ccattest.receipt``:

    {"version": 1, "job": ..., "phase": "admission" | "closing", "issuer": server site,
     "participants": [...], "log": the server's log origin,
     "checkpoint": the signed checkpoint note, with the witnesses' cosignature lines,
     "entries": [{"index": i, "entry": canonical entry text, "proof": [hex, ...]}, ...],
     "gate": index of the gate entry that admitted the job,
     "relied": {site: {"verdict": index, "round": index | null} | null (not CC)},
     "server_evidence": digest of the server's latest evidence | null,
     "events": [indices of exclusions, actions and rounds with missing sites]  (closing),
     "admission": index of the admission receipt's gate entry (closing)}

`verify_receipt` needs the receipt and the federation's JWK Set only: the JWT signature, the
log's signature on the checkpoint, every cosignature present, each cited entry's inclusion
proof against that one checkpoint, and that the entries say what the receipt claims (the
gate admitted exactly these participants; each CC participant's verdict is a definitive
affirming verdict of that site, made no later than the gate decision).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from ..errors import ConfigError, MalformedEvidence, VerificationFailed
from ..tokens import EAR_PROFILE, SigningKey, signed_claims
from . import merkle, note
from .entry import Entry, decode
from .keys import note_keys
from .log import SiteLog

CLAIM = "ccattest.receipt"
PHASES = ("admission", "closing")
MAX_ENTRIES = 4096


@dataclass(frozen=True)
class Cited:
    index: int
    entry: Entry
    body: bytes


def _cite(log: SiteLog, index: int, size: int) -> dict[str, Any]:
    try:
        stored = log.store.entries(index, index + 1)
    except ValueError:  # beyond the record: the checkpoint claims more than it holds
        stored = []
    if not stored:
        raise VerificationFailed(f"entry {index} is not in the record",
                                 hint="the checkpoint is larger than the record")
    return {"index": index, "entry": stored[0].body.decode("utf-8"),
            "proof": [item.hex() for item in log.inclusion_proof(index, size)]}


def _submod(verdict: Mapping[str, Any] | None) -> dict[str, Any]:
    if verdict is None:
        return {"ear.status": "none", "ccattest.cc_enabled": False}
    data = verdict.get("data", {})
    vector: dict[str, int] = {}
    for result in data.get("results", []):  # the site's worst value per claim
        for claim, value in (result.get("trust_vector") or {}).items():
            vector[claim] = value if claim not in vector else max(vector[claim], value)
    submod: dict[str, Any] = {"ear.status": data.get("status", "none"),
                              "ear.trustworthiness-vector": vector}
    policy = data.get("policy") or {}
    if policy.get("id"):
        submod["ear.appraisal-policy-id"] = policy["id"]
    return submod


def issue_receipt(log: SiteLog, key: SigningKey, *, job: str, phase: str, issuer: str,
                  participants: Sequence[str], gate: int,
                  relied: Mapping[str, Mapping[str, int | None] | None],
                  checkpoint: bytes, server_evidence: str | None, at: datetime,
                  events: Sequence[int] = (), admission: int | None = None) -> str:
    """Sign a receipt whose proofs lead to `checkpoint` (a note of this log, cosigned)."""
    if phase not in PHASES:
        raise ConfigError(f"unknown receipt phase {phase!r}", expected=" or ".join(PHASES))
    head = note.Checkpoint.parse(note.parse(checkpoint).text)
    if head.origin != log.origin:
        raise VerificationFailed("the checkpoint is another log's", expected=log.origin,
                                 found=head.origin)
    indices = {gate, *events}
    for cited in relied.values():
        if cited is not None:
            indices.update(i for i in cited.values() if i is not None)
    if any(i >= head.size for i in indices):
        raise VerificationFailed("a receipt cites an entry its checkpoint does not cover",
                                 expected=f"indices below {head.size}", found=max(indices))
    entries = [_cite(log, i, head.size) for i in sorted(indices)]
    bodies = {item["index"]: decode(item["entry"].encode("utf-8")) for item in entries}
    submods = {}
    for site in participants:
        cited = relied.get(site)
        verdict_index = None if cited is None else cited.get("verdict")
        verdict = None if verdict_index is None else {"data": bodies[verdict_index].data}
        submods[site] = _submod(verdict)
    body: dict[str, Any] = {
        "version": 1, "job": job, "phase": phase, "issuer": issuer,
        "participants": sorted(participants), "log": log.origin,
        "checkpoint": checkpoint.decode("utf-8"), "entries": entries, "gate": gate,
        "relied": {site: None if cited is None else dict(cited)
                   for site, cited in sorted(relied.items())},
        "server_evidence": server_evidence, "events": sorted(events),
    }
    if admission is not None:
        body["admission"] = admission
    claims = {"eat_profile": EAR_PROFILE, "iat": math.floor(at.timestamp()),
              "iss": issuer, "jti": f"{job}/{phase}",
              "ear.verifier-id": {"developer": "ccattest", "build": f"ccattest {__version__}"},
              "submods": submods, CLAIM: body}
    import jwt

    return jwt.encode(claims, key.private_key, algorithm=key.alg,
                      headers={"kid": key.kid, "typ": "JWT"})


@dataclass(frozen=True)
class ReceiptReport:
    job: str
    phase: str
    issuer: str
    issued_at: datetime
    participants: tuple[str, ...]
    checkpoint_size: int
    cosigners: tuple[str, ...]
    missing_cosigners: tuple[str, ...]
    entries: int
    statuses: Mapping[str, str]
    events: tuple[Entry, ...]
    checkpoint: bytes = b""  # the cosigned checkpoint note, worth keeping (audit consistency)


def _shape(claims: Mapping[str, Any]) -> dict[str, Any]:
    body = claims.get(CLAIM)
    if claims.get("eat_profile") != EAR_PROFILE or not isinstance(body, dict):
        raise MalformedEvidence("not a ccattest receipt", expected=f"an EAR with {CLAIM}")
    types = {"version": int, "job": str, "phase": str, "issuer": str, "participants": list,
             "log": str, "checkpoint": str, "entries": list, "gate": int, "relied": dict,
             "events": list}
    for name, kind in types.items():
        if not isinstance(body.get(name), kind) or isinstance(body.get(name), bool):
            raise MalformedEvidence(f"receipt field {name} is missing or malformed",
                                    expected=kind.__name__)
    if body["version"] != 1 or body["phase"] not in PHASES:
        raise MalformedEvidence("receipt of an unknown version or phase",
                                found=f"{body['version']}, {body['phase']}")
    if len(body["entries"]) > MAX_ENTRIES or not isinstance(claims.get("iat"), int):
        raise MalformedEvidence("receipt is malformed", expected=f"at most {MAX_ENTRIES} "
                                "entries and an iat")
    return body


def _entries(body: Mapping[str, Any], size: int, root: bytes) -> dict[int, Entry]:
    cited: dict[int, Entry] = {}
    for item in body["entries"]:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int) or \
                not isinstance(item.get("entry"), str) or not isinstance(item.get("proof"), list):
            raise MalformedEvidence("receipt entry is malformed",
                                    expected="index, entry, proof")
        index, raw = item["index"], item["entry"].encode("utf-8")
        try:
            proof = [bytes.fromhex(h) for h in item["proof"]]
        except (TypeError, ValueError):
            raise MalformedEvidence(f"receipt entry {index}: proof is not hex") from None
        try:
            merkle.verify_inclusion(index, size, merkle.leaf_hash(raw), proof, root)
        except VerificationFailed as error:
            raise VerificationFailed(f"receipt entry {index} is not in the checkpointed log",
                                     found=error.message) from None
        cited[index] = decode(raw)
    return cited


def _cited(entries: Mapping[int, Entry], index: Any, kind: str, what: str) -> Entry:
    entry = entries.get(index) if isinstance(index, int) else None
    if entry is None or entry.kind != kind:
        raise VerificationFailed(f"the receipt's {what} is not a cited {kind} entry",
                                 found=repr(index))
    if not isinstance(entry.data, Mapping):  # decode accepts any JSON value as data
        raise VerificationFailed(f"the receipt's {what} holds no object",
                                 found=type(entry.data).__name__)
    return entry


def verify_receipt(token: str, jwks: Mapping[str, Any], *, now: datetime,
                   min_cosigners: int | None = None) -> ReceiptReport:
    """Check a receipt offline. `min_cosigners`: how many participants other than the
    issuer must have cosigned its checkpoint (default: all of them)."""
    claims = signed_claims(token, jwks)
    body = _shape(claims)
    keys = note_keys(jwks)
    checkpoint = body["checkpoint"].encode("utf-8")
    head, _ = note.open_checkpoint(checkpoint, keys.log(body["log"]))
    signed_by = {(s.name, s.key_id) for s in note.parse(checkpoint).signatures}
    participants = sorted(str(p) for p in body["participants"])
    if claims.get("iss") != body["issuer"] or body["log"] != head.origin:
        raise VerificationFailed("the receipt's issuer and log disagree",
                                 found=f"{claims.get('iss')} / {body['log']}")
    cosigners, missing = [], []
    for site in participants:
        if site == body["issuer"]:
            continue
        witness = keys.witnesses.get(site)
        if witness is None or (witness.name, witness.key_id) not in signed_by:
            missing.append(site)
            continue
        note.verify_cosignature(checkpoint, witness, now=now)
        cosigners.append(site)
    required = len(cosigners) + len(missing) if min_cosigners is None else min_cosigners
    if len(cosigners) < required:
        raise VerificationFailed("the receipt's checkpoint lacks participants' cosignatures",
                                 expected=f"{required} cosigners",
                                 found=f"{len(cosigners)}; missing " + ", ".join(missing),
                                 hint="a server showing sites different logs cannot "
                                      "gather them; --min-cosigners lowers the bar")
    entries = _entries(body, head.size, head.root)
    try:
        issued = datetime.fromtimestamp(claims["iat"], UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEvidence("the receipt's iat is no time", found=str(claims["iat"])[:40]
                                ) from None
    gate = _cited(entries, body["gate"], "gate", "gate entry")
    if gate.data.get("allowed") is not True or sorted(gate.data.get("participants", [])) \
            != participants or gate.data.get("job") != body["job"]:
        raise VerificationFailed("the gate entry does not admit this job with these "
                                 "participants", expected=f"{body['job']}: {participants}",
                                 found=f"{gate.data.get('job')}: "
                                       f"{sorted(gate.data.get('participants', []))}")
    statuses = _relied(body, entries, participants, gate)
    if not all(isinstance(i, int) and i in entries for i in body["events"]):
        raise VerificationFailed("the receipt lists an event it does not cite")
    events = tuple(entries[i] for i in body["events"])
    return ReceiptReport(body["job"], body["phase"], body["issuer"], issued,
                         tuple(participants), head.size, tuple(cosigners), tuple(missing),
                         len(entries), statuses, events, checkpoint)


def _relied(body: Mapping[str, Any], entries: Mapping[int, Entry], participants: list[str],
            gate: Entry) -> dict[str, str]:
    relied = body["relied"]
    if sorted(relied) != participants:
        raise VerificationFailed("the receipt relies on other sites than its participants",
                                 expected=participants, found=sorted(relied))
    statuses = {}
    for site in participants:
        cited = relied[site]
        if cited is None:
            statuses[site] = "not-cc" if site != body["issuer"] else "issuer"
            continue
        if not isinstance(cited, dict):
            raise MalformedEvidence(f"receipt: relied[{site}] is malformed")
        verdict = _cited(entries, cited.get("verdict"), "verdict", f"verdict for {site}")
        data = verdict.data
        if data.get("peer") != site or not data.get("definitive") or not data.get("affirming"):
            raise VerificationFailed(f"the verdict the receipt cites for {site} is not a "
                                     "definitive affirming verdict of it",
                                     found=f"peer {data.get('peer')}, status "
                                           f"{data.get('status')}")
        if verdict.at > gate.at:
            raise VerificationFailed(f"the verdict for {site} postdates the gate decision")
        if cited.get("round") is not None:
            round_entry = _cited(entries, cited["round"], "round", f"round for {site}")
            statuses_in_round = round_entry.data.get("judged")
            judged = (statuses_in_round.get(site) if isinstance(statuses_in_round, Mapping)
                      else None)
            if not isinstance(judged, list) or not judged or judged[0] != "affirming" \
                    or round_entry.at > gate.at:
                raise VerificationFailed(f"the round the receipt cites for {site} did not "
                                         "affirm it before the gate decision")
        statuses[site] = str(data.get("status"))
    return statuses
