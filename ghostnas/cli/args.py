"""Argument types with their ranges: a bad number or name is refused where it is read, in one line
naming the option, the value and what is accepted (argparse prints it and exits 2)."""

from __future__ import annotations

import argparse
import math
import re
from typing import Any, Callable

MAX_SEED = 2**32 - 1  # numpy and torch generators take seeds in [0, 2**32)


def integer(low: int | None = None, high: int | None = None, what: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (f"from {low} to {high}" if high is not None else f"at least {low}") if low is not None \
                else f"at most {high}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: {what or 'need'} {bounds}".strip())
        return value

    parse.__name__ = "integer"
    return parse


def real(low: float | None = None, high: float | None = None, low_open: bool = False,
         what: str = "") -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            bound = f"{'above' if low_open else 'at least'} {low:g}" if low is not None else ""
            bound += (" and " if bound and high is not None else "") + (f"at most {high:g}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"{value:g} is out of range: {what or 'need'} {bound}".strip())
        return value

    parse.__name__ = "number"
    return parse


def non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value; give one")
    return text


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def plain_name(text: str) -> str:
    """A study name: one folder name, never a path (``--study ../x`` would write outside --runs)."""
    if not NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain name (letters, digits, . _ -, no "
                                         "slashes); --runs DIR chooses where studies go")
    return text


def device(text: str) -> str:
    """cpu, cuda or cuda:N; that CUDA is present is checked when it is used."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda or cuda:N")
    return text


positive = integer(1)
non_negative = integer(0)
seed = integer(0, MAX_SEED, "a seed is")
threads = integer(1, 1024, "threads:")


def opt(*flags: str, **kwargs: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One option as data: the flags and argparse's keyword arguments."""
    return flags, kwargs
