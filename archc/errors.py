"""Errors that carry a spec location, printed as `file:line:col: message`."""
from __future__ import annotations

from dataclasses import dataclass
import difflib


@dataclass(frozen=True)
class Location:
    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file


class SpecError(Exception):
    """Bad input (spec, overrides, data, flags). The CLI prints it and exits with status 2."""

    def __init__(self, message: str, loc: Location | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}" if self.loc else self.message


class ShapeError(SpecError):
    """A shape that an op cannot accept; raised by op rules, located by the caller."""


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for the nearest choice, or for the shortest choice that contains
    the word (a short name of a long one: 'lraspp'), or ''."""
    word, choices = str(word), sorted(map(str, choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        close = sorted((c for c in choices if word.lower() in c.lower()), key=len)[:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


class Unavailable(Exception):
    """Something outside the input is missing: a download that failed, a package not installed
    where no extra names it. The CLI prints it and exits with status 1."""
