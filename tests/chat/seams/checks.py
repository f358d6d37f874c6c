"""Assertions for the seam tests: each failure names what moved and what needs it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def has(owner: Any, name: str, *, needed_by: str) -> None:
    """`owner` (a class or module) still has the attribute `name`."""
    assert hasattr(owner, name), f"{_name(owner)}.{name} is gone: {needed_by} needs it"


def params(function: Callable[..., Any], expected: list[str], *, needed_by: str) -> None:
    """`function` still takes the parameters `expected`, in that order."""
    got = list(inspect.signature(function).parameters)
    assert got == expected, (
        f"{function.__module__}.{function.__qualname__} now takes ({', '.join(got)}), "
        f"not ({', '.join(expected)}): {needed_by} relies on it"
    )


def source_has(function: Any, fragment: str, *, needed_by: str) -> None:
    """`function`'s source still contains `fragment`: an attribute it sets, a call it makes."""
    assert fragment in inspect.getsource(function), (
        f"{_name(function)} no longer contains `{fragment}`: {needed_by} relies on it"
    )


def _name(owner: Any) -> str:
    module = getattr(owner, "__module__", None)
    qualname = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner))
    return f"{module}.{qualname}" if module and module != qualname else str(qualname)
