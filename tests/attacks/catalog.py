"""The attack catalog's one decorator: each test names the attack it mounts, what the
attacker does and what stops it. tools/attack_table.py reads these (by AST, without
importing the tests) and writes the table in docs/SECURITY.md; test_table.py checks the two
agree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Attack:
    name: str
    does: str
    stopped_by: str


def attack(name: str, *, does: str, stopped_by: str) -> Callable[[F], F]:
    """Mark a test as one catalog entry. All three arguments must be string literals."""

    def mark(test: F) -> F:
        test.attack = Attack(name, does, stopped_by)  # type: ignore[attr-defined]
        return test

    return mark
