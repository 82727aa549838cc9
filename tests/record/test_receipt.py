"""Job receipts: what issue_receipt signs, and every way verify_receipt refuses one, each
checked offline with the federation's key set alone.

The server's log below holds, at fixed indices, the entries a receipt cites (good ones and
ones that must not be relied on); receipts are issued over it, and tampered receipts are
re-signed with the server's result key so that only the part changed is wrong."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from ccattest.errors import ConfigError, MalformedEvidence, VerificationFailed
from ccattest.record import note
from ccattest.record.entry import Entry
from ccattest.record.keys import SiteKeys, merge_jwks
from ccattest.record.log import SiteLog
from ccattest.record.receipt import CLAIM, MAX_ENTRIES, issue_receipt, verify_receipt
from ccattest.record.store import RecordStore
from ccattest.timeutil import utcnow
from ccattest.tokens import EAR_PROFILE, SigningKey, jwks

FEDERATION = "fed-r"
SERVER = "server"
CLIENTS = ("site-1", "site-2")
PARTICIPANTS = [SERVER, *CLIENTS]
JOB = "job-1"
GATE_AT = utcnow().replace(microsecond=0) - timedelta(hours=1)
BEFORE, AFTER = GATE_AT - timedelta(minutes=2), GATE_AT + timedelta(minutes=1)

# The server's log, by index.
V1, V2, V1_REFUSED, V1_PROVISIONAL, ROUND, ROUND_FAILED, GATE, EXCLUSION = range(8)
V1_LATE, ROUND_LATE, GATE_FEWER, GATE_REFUSED, GATE_GARBLED, ROUND_ODD = range(8, 14)
SIZE = 14


def _verdict(peer: str, *, status: str = "affirming", affirming: bool = True,
             definitive: bool = True, at: datetime = BEFORE) -> Entry:
    return Entry("verdict", SERVER, at, {
        "peer": peer, "context": "round", "round": None, "definitive": definitive,
        "status": status, "affirming": affirming,
        "policy": {"id": "policy-a", "digest": "00"} if peer == "site-1" else {},
        "results": [{"platform": "software", "status": status,
                     "trust_vector": {"executables": 2, "hardware": 2}},
                    {"platform": "gpu", "status": status, "trust_vector": {"executables": 3}},
                    {"platform": "none", "status": status}],
        "failures": []})


def _round(judged: dict[str, Any], at: datetime = BEFORE) -> Entry:
    return Entry("round", SERVER, at, {"round": 1, "transcript": "00", "coordinator": SERVER,
                                       "participants": sorted(judged), "missing": {},
                                       "judged": judged})


def _gate(participants: list[str], *, allowed: bool = True) -> Entry:
    return Entry("gate", SERVER, GATE_AT, {"job": JOB, "participants": participants,
                                           "allowed": allowed, "reasons": [], "byoc": False})


ENTRIES: list[Entry] = [
    _verdict("site-1"),
    _verdict("site-2"),
    _verdict("site-1", status="contraindicated", affirming=False),
    _verdict("site-1", definitive=False),
    _round({"site-1": ["affirming", "aa"], "site-2": ["affirming", "bb"]}),
    _round({"site-1": ["contraindicated", "aa"]}),
    _gate(PARTICIPANTS),
    Entry("exclusion", SERVER, AFTER, {"site": "site-2", "reason": "stopped attesting"}),
    _verdict("site-1", at=AFTER),
    _round({"site-1": ["affirming", "aa"]}, at=AFTER),
    _gate([SERVER, "site-1"]),
    _gate(PARTICIPANTS, allowed=False),
    Entry("gate", SERVER, GATE_AT, ["not", "an", "object"]),  # type: ignore[arg-type]
    _round({"site-1": {"status": "affirming"}}),
]
assert len(ENTRIES) == SIZE


@dataclass
class World:
    log: SiteLog
    keys: dict[str, SiteKeys]
    result_key: SigningKey
    jwks: dict[str, Any]
    checkpoint: bytes  # of the whole log, cosigned by every client

    def cosigned(self, *sites: str) -> bytes:
        data = self.log.checkpoint(at=GATE_AT)
        for site in sites:
            data = note.cosign(data, self.keys[site].witness, self.keys[SERVER].log.verifier,
                               at=GATE_AT)
        return data

    def issue(self, **changes: Any) -> str:
        arguments: dict[str, Any] = {
            "job": JOB, "phase": "admission", "issuer": SERVER, "participants": PARTICIPANTS,
            "gate": GATE, "relied": {SERVER: None, "site-1": {"verdict": V1, "round": ROUND},
                                     "site-2": {"verdict": V2, "round": None}},
            "checkpoint": self.checkpoint, "server_evidence": "ee" * 32, "at": GATE_AT}
        arguments.update(changes)
        return issue_receipt(self.log, self.result_key, **arguments)

    def resign(self, token: str, change: Callable[[dict[str, Any]], object]) -> str:
        """The token's claims, changed, signed again by the server's result key."""
        claims = copy.deepcopy(jwt.decode(token, options={"verify_signature": False}))
        change(claims)
        key = self.result_key
        return jwt.encode(claims, key.private_key, algorithm=key.alg,
                          headers={"kid": key.kid, "typ": "JWT"})

    def tampered(self, change: Callable[[dict[str, Any]], object], **issue: Any) -> str:
        """A receipt whose ccattest.receipt claim was changed after issuing."""
        return self.resign(self.issue(**issue), lambda claims: change(claims[CLAIM]))

    def verify(self, token: str, **options: Any) -> Any:
        return verify_receipt(token, self.jwks, now=utcnow(), **options)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    keys = {site: SiteKeys.generate(FEDERATION, site) for site in (SERVER, *CLIENTS, "site-3")}
    result_key = SigningKey.generate()
    key_set = merge_jwks([jwks([result_key])["keys"], *(k.public_jwks() for k in keys.values())])
    path: Path = tmp_path_factory.mktemp("receipt") / "server.sqlite3"
    with RecordStore.open(path, origin=keys[SERVER].log.name) as store:
        log = SiteLog(store, keys[SERVER].log, checkpoint_every=1000)
        for entry in ENTRIES:
            log.append(entry)
        world = World(log, keys, result_key, key_set, b"")
        world.checkpoint = world.cosigned(*CLIENTS)
        yield world


def _body(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})[CLAIM]


def _refused(world: World, token: str, kind: type[Exception] = VerificationFailed,
             **options: Any) -> Any:
    with pytest.raises(kind) as caught:
        world.verify(token, **options)
    return caught.value


# -- issuing -----------------------------------------------------------------------------------

def test_an_admission_receipt_verifies_and_says_what_was_relied_on(world: World) -> None:
    report = world.verify(world.issue())
    assert (report.job, report.phase, report.issuer) == (JOB, "admission", SERVER)
    assert report.issued_at == GATE_AT
    assert report.participants == tuple(PARTICIPANTS)
    assert (report.checkpoint_size, report.entries) == (SIZE, 4)  # V1, V2, ROUND, GATE
    assert report.cosigners == CLIENTS and report.missing_cosigners == ()
    assert report.statuses == {SERVER: "issuer", "site-1": "affirming", "site-2": "affirming"}
    assert report.events == () and report.checkpoint == world.checkpoint


def test_a_receipt_is_an_ear_with_one_submod_per_participant(world: World) -> None:
    token = world.issue()
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": world.result_key.kid,
                                                "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["eat_profile"] == EAR_PROFILE and claims["iat"] == int(GATE_AT.timestamp())
    assert (claims["iss"], claims["jti"]) == (SERVER, f"{JOB}/admission")
    assert claims["ear.verifier-id"]["developer"] == "ccattest"
    assert claims["submods"] == {
        SERVER: {"ear.status": "none", "ccattest.cc_enabled": False},
        "site-1": {"ear.status": "affirming", "ear.appraisal-policy-id": "policy-a",
                   "ear.trustworthiness-vector": {"executables": 3, "hardware": 2}},
        "site-2": {"ear.status": "affirming",
                   "ear.trustworthiness-vector": {"executables": 3, "hardware": 2}}}
    body = claims[CLAIM]
    assert body["version"] == 1 and body["log"] == world.log.origin
    assert body["relied"][SERVER] is None and body["server_evidence"] == "ee" * 32
    assert [item["index"] for item in body["entries"]] == [V1, V2, ROUND, GATE]
    assert "admission" not in body


def test_a_closing_receipt_cites_its_events(world: World) -> None:
    token = world.issue(phase="closing", events=[EXCLUSION], admission=GATE)
    assert _body(token)["admission"] == GATE and _body(token)["events"] == [EXCLUSION]
    report = world.verify(token)
    assert report.phase == "closing"
    assert [(e.kind, e.data["site"]) for e in report.events] == [("exclusion", "site-2")]


def test_a_participant_not_relied_on_is_not_cc(world: World) -> None:
    token = world.issue(relied={SERVER: None, "site-1": {"verdict": V1, "round": None},
                                "site-2": None})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["submods"]["site-2"] == {"ear.status": "none", "ccattest.cc_enabled": False}
    assert world.verify(token).statuses["site-2"] == "not-cc"


def test_a_participant_missing_from_relied_gets_an_empty_submod(world: World) -> None:
    token = world.issue(relied={"site-1": {"verdict": V1}})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["submods"]["site-2"]["ccattest.cc_enabled"] is False


def test_issuing_for_an_unknown_phase_is_a_config_error(world: World) -> None:
    with pytest.raises(ConfigError, match="unknown receipt phase 'opening'") as caught:
        world.issue(phase="opening")
    assert caught.value.expected == "admission or closing"


def test_issuing_over_another_logs_checkpoint_is_refused(world: World) -> None:
    other = world.keys["site-1"]
    checkpoint = note.sign_checkpoint(note.Checkpoint(other.log.name, 1, bytes(32)), other.log)
    with pytest.raises(VerificationFailed, match="the checkpoint is another log's") as caught:
        world.issue(checkpoint=checkpoint)
    assert (caught.value.expected, caught.value.found) == (world.log.origin, other.log.name)


@pytest.mark.parametrize("changes", [
    {"gate": SIZE},
    {"events": [SIZE + 3]},
    {"relied": {"site-1": {"verdict": V1, "round": SIZE}}},
    {"relied": {"site-1": {"verdict": SIZE + 1, "round": None}}},
], ids=["gate", "event", "round", "verdict"])
def test_issuing_a_receipt_that_cites_beyond_the_checkpoint_is_refused(
        world: World, changes: dict[str, Any]) -> None:
    with pytest.raises(VerificationFailed, match="cites an entry its checkpoint does not cover"
                       ) as caught:
        world.issue(**changes)
    assert caught.value.expected == f"indices below {SIZE}"
    assert caught.value.found >= SIZE


def test_issuing_over_a_checkpoint_larger_than_the_record_is_refused(world: World) -> None:
    head = note.Checkpoint(world.log.origin, SIZE + 10, bytes(32))
    checkpoint = note.sign_checkpoint(head, world.keys[SERVER].log)
    with pytest.raises(VerificationFailed, match=f"entry {SIZE + 2} is not in the record"):
        world.issue(checkpoint=checkpoint, events=[SIZE + 2])


# -- the token and its shape -------------------------------------------------------------------

def test_a_receipt_signed_by_another_key_is_refused(world: World) -> None:
    stranger = SigningKey.generate()
    claims = jwt.decode(world.issue(), options={"verify_signature": False})
    token = jwt.encode(claims, stranger.private_key, algorithm=stranger.alg,
                       headers={"kid": world.result_key.kid})
    assert "signature does not verify" in _refused(world, token).message


def test_a_token_that_is_not_an_ear_is_not_a_receipt(world: World) -> None:
    token = world.resign(world.issue(), lambda claims: claims.update(eat_profile="other"))
    error = _refused(world, token, MalformedEvidence)
    assert error.message == "not a ccattest receipt"
    assert error.expected == f"an EAR with {CLAIM}"


@pytest.mark.parametrize("claim", [None, "text", [1]])
def test_an_ear_without_a_receipt_object_is_not_a_receipt(world: World, claim: Any) -> None:
    token = world.resign(world.issue(), lambda claims: claims.update({CLAIM: claim}))
    assert _refused(world, token, MalformedEvidence).message == "not a ccattest receipt"


FIELDS = {"version": "int", "job": "str", "phase": "str", "issuer": "str",
          "participants": "list", "log": "str", "checkpoint": "str", "entries": "list",
          "gate": "int", "relied": "dict", "events": "list"}
WRONG = {"int": ["1", 1.0, True, None], "str": [1, None, ["x"]], "list": ["x", {}, None],
         "dict": [[], "x", None]}


@pytest.mark.parametrize(("field", "value"), [
    (field, value) for field, kind in FIELDS.items() for value in [*WRONG[kind], "<missing>"]])
def test_a_receipt_field_missing_or_of_the_wrong_type_is_malformed(
        world: World, field: str, value: Any) -> None:
    def change(body: dict[str, Any]) -> None:
        if value == "<missing>":
            del body[field]
        else:
            body[field] = value

    error = _refused(world, world.tampered(change), MalformedEvidence)
    assert error.message == f"receipt field {field} is missing or malformed"
    assert error.expected == FIELDS[field]


@pytest.mark.parametrize(("version", "phase"), [(2, "admission"), (0, "admission"),
                                                (1, "opening"), (1, "")])
def test_a_receipt_of_an_unknown_version_or_phase_is_malformed(
        world: World, version: int, phase: str) -> None:
    token = world.tampered(lambda body: body.update(version=version, phase=phase))
    error = _refused(world, token, MalformedEvidence)
    assert error.message == "receipt of an unknown version or phase"
    assert error.found == f"{version}, {phase}"


def test_a_receipt_with_too_many_entries_is_malformed(world: World) -> None:
    token = world.tampered(lambda body: body.update(entries=[{}] * (MAX_ENTRIES + 1)))
    error = _refused(world, token, MalformedEvidence)
    assert error.message == "receipt is malformed"
    assert error.expected == f"at most {MAX_ENTRIES} entries and an iat"


@pytest.mark.parametrize("iat", [None, "now", 1.5])
def test_a_receipt_without_an_integer_iat_is_malformed(world: World, iat: Any) -> None:
    token = world.resign(world.issue(), lambda claims: claims.update(iat=iat))
    assert _refused(world, token, MalformedEvidence).message == "receipt is malformed"


@pytest.mark.parametrize("iat", [10**15, 10**20])
def test_a_receipt_whose_iat_is_no_time_is_malformed(world: World, iat: int) -> None:
    token = world.resign(world.issue(), lambda claims: claims.update(iat=iat))
    _refused(world, token, MalformedEvidence)


# -- the checkpoint and its cosignatures -------------------------------------------------------

def test_a_receipt_of_a_log_outside_the_key_set_is_a_config_error(world: World) -> None:
    token = world.tampered(lambda body: body.update(log="ccattest.record/x/server"))
    error = _refused(world, token, ConfigError)
    assert error.message == "the key set has no key for the log ccattest.record/x/server"


def test_a_checkpoint_the_log_did_not_sign_is_refused(world: World) -> None:
    impostor = note.Signer.generate(world.log.origin)
    head = note.Checkpoint(world.log.origin, SIZE, world.log.tree.root())
    forged = note.sign_checkpoint(head, impostor).decode("utf-8")
    token = world.tampered(lambda body: body.update(checkpoint=forged))
    assert _refused(world, token).message == "note is signed by no known key"


@pytest.mark.parametrize(("iss", "issuer"), [("site-1", SERVER), (SERVER, "site-1")])
def test_a_receipt_whose_issuer_is_not_its_signer_is_refused(world: World, iss: str,
                                                             issuer: str) -> None:
    token = world.resign(world.issue(), lambda claims: (
        claims.update(iss=iss), claims[CLAIM].update(issuer=issuer)))
    error = _refused(world, token)
    assert error.message == "the receipt's issuer and log disagree"
    assert error.found == f"{iss} / {world.log.origin}"


def test_a_checkpoint_without_a_participants_cosignature_is_refused(world: World) -> None:
    token = world.issue(checkpoint=world.cosigned("site-1"))
    error = _refused(world, token)
    assert error.message == "the receipt's checkpoint lacks participants' cosignatures"
    assert (error.expected, error.found) == ("2 cosigners", "1; missing site-2")
    assert "--min-cosigners" in error.hint


def test_min_cosigners_lowers_the_bar_and_the_report_names_who_is_missing(
        world: World) -> None:
    report = world.verify(world.issue(checkpoint=world.cosigned("site-1")), min_cosigners=1)
    assert report.cosigners == ("site-1",) and report.missing_cosigners == ("site-2",)


def test_min_cosigners_above_the_participants_is_refused(world: World) -> None:
    error = _refused(world, world.issue(), min_cosigners=3)
    assert (error.expected, error.found) == ("3 cosigners", "2; missing ")


def test_a_participant_without_a_witness_key_counts_as_missing(world: World) -> None:
    token = world.issue()
    key_set = {"keys": [k for k in world.jwks["keys"] if k.get("ccattest_name") != "site-2"]}
    with pytest.raises(VerificationFailed, match="lacks participants' cosignatures"):
        verify_receipt(token, key_set, now=utcnow())
    report = verify_receipt(token, key_set, now=utcnow(), min_cosigners=1)
    assert report.missing_cosigners == ("site-2",)


def test_a_forged_cosignature_line_is_refused(world: World) -> None:
    witness = world.keys["site-2"].witness
    honest = note.parse(world.checkpoint)
    forged_signature = witness.sign(b"another checkpoint\n", at=GATE_AT)
    forged = note.Note(honest.text, tuple(
        forged_signature if s.name == "site-2" else s for s in honest.signatures)).encode()
    error = _refused(world, world.issue(checkpoint=forged))
    assert error.message == f"signature by site-2+{witness.key_id.hex()} does not verify"


def test_a_cosignature_dated_in_the_future_is_refused(world: World) -> None:
    later = note.cosign(world.checkpoint, world.keys["site-2"].witness,
                        world.keys[SERVER].log.verifier, at=utcnow() + timedelta(hours=2))
    error = _refused(world, world.issue(checkpoint=later))
    assert error.message == "cosignature by site-2 is dated in the future"


# -- the cited entries -------------------------------------------------------------------------

@pytest.mark.parametrize("item", [
    "entry", None, {"entry": "{}", "proof": []}, {"index": "6", "entry": "{}", "proof": []},
    {"index": 6, "entry": 5, "proof": []}, {"index": 6, "proof": []},
    {"index": 6, "entry": "{}", "proof": "00"}, {"index": 6, "entry": "{}"},
], ids=["text", "null", "no-index", "str-index", "int-entry", "no-entry", "str-proof",
        "no-proof"])
def test_a_malformed_cited_entry_is_refused(world: World, item: Any) -> None:
    token = world.tampered(lambda body: body["entries"].append(item))
    error = _refused(world, token, MalformedEvidence)
    assert (error.message, error.expected) == ("receipt entry is malformed",
                                               "index, entry, proof")


@pytest.mark.parametrize("bad", ["zz" * 32, 7, None, "abc"])
def test_a_cited_entry_whose_proof_is_not_hex_is_refused(world: World, bad: Any) -> None:
    def change(body: dict[str, Any]) -> None:
        body["entries"][0]["proof"][1] = bad

    error = _refused(world, world.tampered(change), MalformedEvidence)
    assert error.message == f"receipt entry {V1}: proof is not hex"


def test_a_cited_entry_whose_proof_is_wrong_is_refused(world: World) -> None:
    def change(body: dict[str, Any]) -> None:
        body["entries"][0]["proof"][0] = "00" * 32

    error = _refused(world, world.tampered(change))
    assert error.message == f"receipt entry {V1} is not in the checkpointed log"
    assert error.found == "inclusion proof leads to a different tree hash"


def test_a_cited_entry_with_a_hash_too_few_is_refused(world: World) -> None:
    token = world.tampered(lambda body: body["entries"][0]["proof"].pop())
    error = _refused(world, token)
    assert error.found == "inclusion proof has the wrong number of hashes"


def test_a_rewritten_entry_is_not_in_the_checkpointed_log(world: World) -> None:
    def change(body: dict[str, Any]) -> None:
        gate = next(item for item in body["entries"] if item["index"] == GATE)
        gate["entry"] = gate["entry"].replace('"job":"job-1"', '"job":"job-9"')
        body["job"] = "job-9"

    error = _refused(world, world.tampered(change))
    assert error.message == f"receipt entry {GATE} is not in the checkpointed log"


def test_a_cited_entry_beyond_the_checkpoint_is_refused(world: World) -> None:
    token = world.tampered(lambda body: body["entries"].append(
        {**body["entries"][0], "index": SIZE}))
    error = _refused(world, token)
    assert error.message == f"receipt entry {SIZE} is not in the checkpointed log"
    assert error.found == "leaf index is outside the tree"


def test_a_cited_entry_at_another_index_is_refused(world: World) -> None:
    token = world.tampered(lambda body: body["entries"][0].update(index=V1_REFUSED))
    assert _refused(world, token).message == (f"receipt entry {V1_REFUSED} is not in the "
                                              "checkpointed log")


def test_a_cited_entry_at_a_negative_index_is_malformed(world: World) -> None:
    token = world.tampered(lambda body: body["entries"][0].update(index=-1))
    assert _refused(world, token, MalformedEvidence).message == "leaf index is out of range"


# -- the gate ----------------------------------------------------------------------------------

@pytest.mark.parametrize("gate", [V1, EXCLUSION, GATE_REFUSED + 100])
def test_a_gate_that_is_not_a_cited_gate_entry_is_refused(world: World, gate: int) -> None:
    token = world.tampered(lambda body: body.update(gate=gate))
    error = _refused(world, token)
    assert error.message == "the receipt's gate entry is not a cited gate entry"
    assert error.found == repr(gate)


def test_a_gate_entry_that_admitted_other_participants_is_refused(world: World) -> None:
    error = _refused(world, world.issue(gate=GATE_FEWER))
    assert error.message == ("the gate entry does not admit this job with these participants")
    assert error.expected == f"{JOB}: {PARTICIPANTS}"
    assert error.found == f"{JOB}: {[SERVER, 'site-1']}"


def test_a_gate_entry_that_refused_the_job_is_refused(world: World) -> None:
    error = _refused(world, world.issue(gate=GATE_REFUSED))
    assert error.message.startswith("the gate entry does not admit this job")


def test_a_gate_entry_of_another_job_is_refused(world: World) -> None:
    error = _refused(world, world.issue(job="job-2"))
    assert (error.expected, error.found) == (f"job-2: {PARTICIPANTS}", f"{JOB}: {PARTICIPANTS}")


def test_participants_other_than_the_gates_are_refused(world: World) -> None:
    token = world.tampered(lambda body: body.update(participants=[SERVER, "site-1"]))
    assert _refused(world, token).message.startswith("the gate entry does not admit")


def test_a_gate_entry_whose_data_is_not_an_object_is_refused(world: World) -> None:
    _refused(world, world.issue(gate=GATE_GARBLED))


# -- what the server relied on -----------------------------------------------------------------

@pytest.mark.parametrize("relied", [
    {SERVER: None, "site-1": {"verdict": V1, "round": None}},
    {SERVER: None, "site-1": {"verdict": V1, "round": None}, "site-2": None, "site-3": None},
], ids=["fewer", "more"])
def test_relied_not_matching_the_participants_is_refused(world: World,
                                                        relied: dict[str, Any]) -> None:
    error = _refused(world, world.issue(relied=relied))
    assert error.message == "the receipt relies on other sites than its participants"
    assert error.expected == PARTICIPANTS and error.found == sorted(relied)


@pytest.mark.parametrize("cited", [[V1, ROUND], V1, "verdict"])
def test_a_relied_entry_that_is_not_an_object_is_malformed(world: World, cited: Any) -> None:
    token = world.tampered(lambda body: body["relied"].update({"site-1": cited}))
    assert _refused(world, token, MalformedEvidence).message == \
        "receipt: relied[site-1] is malformed"


@pytest.mark.parametrize("verdict", [ROUND, GATE, V1_REFUSED, None, "0"])
def test_a_verdict_that_is_not_a_cited_verdict_entry_is_refused(world: World,
                                                                verdict: Any) -> None:
    # V1_REFUSED is a verdict in the log, but this receipt does not cite it.
    token = world.tampered(lambda body: body["relied"]["site-1"].update(verdict=verdict))
    error = _refused(world, token)
    assert error.message == "the receipt's verdict for site-1 is not a cited verdict entry"
    assert error.found == repr(verdict)


def test_a_verdict_cited_as_none_is_refused(world: World) -> None:
    token = world.issue(relied={SERVER: None, "site-1": {"verdict": V1, "round": None},
                                "site-2": {"verdict": None, "round": None}})
    error = _refused(world, token)
    assert error.message == "the receipt's verdict for site-2 is not a cited verdict entry"


@pytest.mark.parametrize(("verdict", "found"), [
    (V2, "peer site-2, status affirming"),
    (V1_REFUSED, "peer site-1, status contraindicated"),
    (V1_PROVISIONAL, "peer site-1, status affirming"),
], ids=["another-peer", "not-affirming", "not-definitive"])
def test_a_verdict_that_is_not_definitive_affirming_for_that_peer_is_refused(
        world: World, verdict: int, found: str) -> None:
    token = world.issue(relied={SERVER: None, "site-1": {"verdict": verdict, "round": None},
                                "site-2": {"verdict": V2, "round": None}})
    error = _refused(world, token)
    assert error.message == ("the verdict the receipt cites for site-1 is not a definitive "
                             "affirming verdict of it")
    assert error.found == found


def test_a_verdict_made_after_the_gate_decision_is_refused(world: World) -> None:
    token = world.issue(relied={SERVER: None, "site-1": {"verdict": V1_LATE, "round": None},
                                "site-2": {"verdict": V2, "round": None}})
    assert _refused(world, token).message == "the verdict for site-1 postdates the gate decision"


@pytest.mark.parametrize("round_index", [V1, GATE, "4"])
def test_a_round_that_is_not_a_cited_round_entry_is_refused(world: World,
                                                            round_index: Any) -> None:
    token = world.tampered(lambda body: body["relied"]["site-1"].update(round=round_index))
    error = _refused(world, token)
    assert error.message == "the receipt's round for site-1 is not a cited round entry"


@pytest.mark.parametrize(("site", "round_index"), [
    ("site-1", ROUND_FAILED),  # judged it, not affirming
    ("site-2", ROUND_FAILED),  # did not judge it at all
    ("site-1", ROUND_LATE),    # affirmed it, after the gate
], ids=["not-affirming", "not-judged", "after-gate"])
def test_a_round_that_did_not_affirm_the_site_before_the_gate_is_refused(
        world: World, site: str, round_index: int) -> None:
    relied: dict[str, Any] = {SERVER: None, "site-1": {"verdict": V1, "round": None},
                              "site-2": {"verdict": V2, "round": None}}
    relied[site] = {**relied[site], "round": round_index}
    error = _refused(world, world.issue(relied=relied))
    assert error.message == (f"the round the receipt cites for {site} did not affirm it "
                             "before the gate decision")


def test_a_round_whose_judgement_is_not_a_list_is_refused(world: World) -> None:
    _refused(world, world.issue(relied={SERVER: None,
                                        "site-1": {"verdict": V1, "round": ROUND_ODD},
                                        "site-2": {"verdict": V2, "round": None}}))


def test_a_cited_round_that_affirmed_the_site_is_accepted_for_each_client(
        world: World) -> None:
    token = world.issue(relied={SERVER: None, "site-1": {"verdict": V1, "round": ROUND},
                                "site-2": {"verdict": V2, "round": ROUND}})
    assert world.verify(token).statuses["site-2"] == "affirming"


# -- events ------------------------------------------------------------------------------------

@pytest.mark.parametrize("events", [[EXCLUSION], ["7"], [None], [V1, EXCLUSION]],
                         ids=["uncited", "str", "null", "one-of-two-uncited"])
def test_an_event_the_receipt_does_not_cite_is_refused(world: World, events: list[Any]) -> None:
    token = world.tampered(lambda body: body.update(events=events))
    assert _refused(world, token).message == "the receipt lists an event it does not cite"


def test_a_cited_entry_may_be_listed_as_an_event(world: World) -> None:
    token = world.tampered(lambda body: body.update(events=[V1]))
    assert [e.kind for e in world.verify(token).events] == ["verdict"]

