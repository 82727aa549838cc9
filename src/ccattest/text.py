"""Values as a person writes them: reasons and errors are read by operators, not by Python,
so no reprs (True, None, ['a', 'b'], {'k': 1}) reach them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def one_of(values: Iterable[Any]) -> str:
    """'a', 'a or b', 'a, b or c'; 'none' when there is nothing to choose from."""
    words = [human(value) for value in values]
    if not words:
        return "none"
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} or {words[-1]}"


def human(value: Any, *, minimum: bool = False) -> str:
    """One value in words. A mapping of numbers reads 'k ≥ v, ...' when it is a minimum
    (`minimum=True`), otherwise 'k: v, ...'."""
    if value is None:
        return "none"
    if isinstance(value, bool):  # before int: bool is an int
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if not value:
            return "none"
        separator = " ≥ " if minimum else ": "
        return ", ".join(f"{key}{separator}{human(item)}" for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return ", ".join(human(item) for item in items) if items else "none"
    return str(value)


__all__ = ["human", "one_of"]
