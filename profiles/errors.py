"""The one error type of the domain: a machine code, a human message, the field at fault."""

from __future__ import annotations


class ProfileError(ValueError):
    def __init__(self, code: str, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, field={self.field!r})"


class ConcurrentWrite(Exception):
    """Another transaction changed what a batch relies on: roll it back and apply it again."""
