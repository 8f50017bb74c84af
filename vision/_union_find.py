"""The union-find root lookup shared by the blob labelling and the assignment's components."""

from __future__ import annotations

import numpy as np

from vision._jit import EXACT, njit


@njit(**EXACT)
def find_root(parent: np.ndarray, x: int) -> int:
    """Root of `x` in the forest `parent`, halving the path on the way."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x
