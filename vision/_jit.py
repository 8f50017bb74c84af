"""Numba compile options, kept in one place.

Kernels are private, never raise, and are only called from public functions that have
validated their arguments (stumpy's split). `NUMBA_DISABLE_JIT=1` turns them back into
plain Python, which the coverage run uses to see inside them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])

#: Exact arithmetic: kernels whose results are compared against references bit for bit.
EXACT: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": False}
#: Pixel kernels, where reassociation is harmless and vectorisation pays.
FAST: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": True}
#: Pixel kernels split over numba's thread pool (`numba.prange`).
PARALLEL: dict[str, Any] = {**FAST, "parallel": True}

if os.environ.get("NONSITE_NUMBA_NO_CACHE"):
    EXACT["cache"] = FAST["cache"] = PARALLEL["cache"] = False


def njit(**options: Any) -> Callable[[F], F]:
    """`numba.njit` with the project's options; `options` picks `EXACT` or `FAST`."""

    def wrap(fn: F) -> F:
        return numba.njit(**options)(fn)

    return wrap
