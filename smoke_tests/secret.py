"""A secret string that never shows its value, for passwords and keys the suite handles.

The Pulumi program's settings use the same class (with pydantic's schema added there), so a
password read from a stack and one read from the environment compare equal and print alike.
"""

from __future__ import annotations


class Secret:
    """A secret string: its repr and str never show the value, so it cannot leak into logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
