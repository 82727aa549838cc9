"""Appraisal policies (YAML, from a site's operator or a federation's shared config):
policy.load.parse_policy. File references resolve against an empty folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

import common

with common.instrumented():
    from ccattest.policy.load import parse_policy
    from ccattest.policy.templates import TEMPLATES, starter_policy

BASE = Path(tempfile.mkdtemp(prefix="ccattest-fuzz-policy-"))


def entry(data: bytes) -> None:
    parse_policy(data, source="fuzz.yaml", base=BASE)


def seeds() -> list[bytes]:
    texts = [starter_policy([platform], ["ab" * 48]) for platform in TEMPLATES]
    texts.append(starter_policy(sorted(TEMPLATES)))
    texts += ["software:\n  allow: true\n", "common:\n  max_age: 300\n",
              "a: &x [1, 2]\nb: *x\n"]
    return [text.encode() for text in texts]


if __name__ == "__main__":
    common.main("policy", entry, seeds())
