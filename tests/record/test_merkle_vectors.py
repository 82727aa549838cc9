"""record.merkle against transparency-dev/merkle's published proof vectors
(../shared/vectors/tlog, MANIFEST.md "tlog"): happy cases verify, damaged ones are refused
with a typed error, and our generator reproduces the happy proofs byte for byte."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ccattest.errors import MalformedEvidence, VerificationFailed
from ccattest.record.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

TESTDATA = Path("tlog", "transparency-dev-merkle", "testdata")
# The eight entries transparency-dev's (and RFC 6962's) reference tree is built from.
ENTRIES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                      "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
LEAVES = [leaf_hash(entry) for entry in ENTRIES]
# Where we refuse on purpose what the Go library accepts: it compares equal-size roots
# without looking at their length; we refuse any hash that is not 32 bytes.
DEPARTURES = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


@dataclass(frozen=True)
class Case:
    name: str
    data: dict

    @property
    def want_error(self) -> bool:
        return bool(self.data["wantErr"])

    def hash(self, key: str) -> bytes:
        return base64.b64decode(self.data[key], validate=True)

    @property
    def proof(self) -> list[bytes]:
        return [base64.b64decode(item, validate=True) for item in self.data["proof"] or []]


def load(vectors: Path, kind: str) -> list[Case]:
    base = vectors / TESTDATA
    return [Case(path.relative_to(base).as_posix(), json.loads(path.read_text()))
            for path in sorted((base / kind).rglob("*.json"))]


def check_inclusion(case: Case) -> None:
    verify_inclusion(case.data["leafIdx"], case.data["treeSize"], case.hash("leafHash"),
                     case.proof, case.hash("root"))


def check_consistency(case: Case) -> None:
    verify_consistency(case.data["size1"], case.data["size2"], case.hash("root1"),
                       case.hash("root2"), case.proof)


def run_all(cases: list[Case], check) -> dict[str, int]:
    counts = {"happy": 0, "damaged": 0, "malformed": 0, "departures": 0}
    for case in cases:
        if case.name in DEPARTURES:
            assert not case.want_error, case.name
            with pytest.raises(MalformedEvidence, match="not a SHA-256 hash"):
                check(case)
            counts["departures"] += 1
        elif case.want_error:
            # Only our two kinds: never an IndexError, never a silent pass.
            with pytest.raises((MalformedEvidence, VerificationFailed)) as caught:
                check(case)
            counts["damaged"] += 1
            counts["malformed"] += isinstance(caught.value, MalformedEvidence)
        else:
            check(case)
            counts["happy"] += 1
    return counts


def test_every_inclusion_vector(vectors):
    counts = run_all(load(vectors, "inclusion"), check_inclusion)
    # 98 cases (MANIFEST.md): 6 happy, 92 damaged; 26 of those carry a hash that is not
    # 32 bytes (garbage, a truncated leaf or an empty tree hash) and are malformed.
    assert counts == {"happy": 6, "damaged": 92, "malformed": 26, "departures": 0}


def test_every_consistency_vector(vectors):
    counts = run_all(load(vectors, "consistency"), check_consistency)
    # 98 cases: 6 happy (one a departure, above), 92 damaged, 26 of them malformed.
    assert counts == {"happy": 5, "damaged": 92, "malformed": 26, "departures": 1}


def test_our_generator_reproduces_the_happy_proofs(vectors):
    assert root(LEAVES).hex() == ("5dc9da79a70659a9ad559cb701ded9a2"
                                  "ab9d823aad2f4960cfe370eff4604328")
    compared = 0
    for case in load(vectors, "inclusion"):
        data = case.data
        if case.want_error:
            continue
        leaves = LEAVES[:data["treeSize"]]
        if case.hash("leafHash") != leaves[data["leafIdx"]]:  # single-entry: its own leaf
            leaves = [case.hash("leafHash")]
        assert root(leaves) == case.hash("root"), case.name
        assert inclusion_proof(data["leafIdx"], leaves) == case.proof, case.name
        compared += 1
    for case in load(vectors, "consistency"):
        data = case.data
        if case.want_error or case.name in DEPARTURES:
            continue
        leaves = LEAVES[:data["size2"]]
        assert root(LEAVES[:data["size1"]]) == case.hash("root1"), case.name
        assert root(leaves) == case.hash("root2"), case.name
        assert consistency_proof(data["size1"], leaves) == case.proof, case.name
        compared += 1
    assert compared == 11  # all happy cases but the departure: 6 inclusion, 5 consistency
