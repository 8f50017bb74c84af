"""Sliced detection for large images (SAHI's idea): detect in overlapping tiles, merge at the seams.

A 20-megapixel drone photo letterboxed whole into a 640-pixel model input shrinks an
umbrella of 60 pixels to 7; cut into 640-pixel tiles, each tile runs at full resolution.
The price is the seams: an object in the overlap of two tiles is found twice, and one
larger than the overlap is found in pieces. `merge_tiles` puts them back together, per
class, greedily in score order:

- two boxes whose IoU reaches `merge_iou` are one object seen twice;
- two boxes whose intersection over the smaller box reaches `merge_iou` are one object
  seen whole and in part, when they come from different tiles or one of them was cut by
  a tile edge (two boxes from one tile, both whole, were already told apart by the
  detector's own NMS, so overlapping umbrellas stay two);
- a box cut by an internal tile edge (its side within `seam_px` of the edge) is joined
  with a box that carries on across that edge, covers the cut box as far as its own
  tile sees (where tiles overlap, the two parts of one object overlap too), and shares
  at least `merge_iou` of the extent along the edge: the pieces of an object larger
  than the overlap.

Merged boxes become the union of their parts and keep the best score. The merged box is
compared again with what is left, so an object cut by four tiles at a corner comes back
whole.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from vision._jit import EXACT, njit
from vision.detectors.base import Detector
from vision.errors import InferenceError
from vision.types import Detections

logger = logging.getLogger(__name__)

Tile = tuple[int, int, int, int]

# which sides of a box a tile edge cut
CUT_LEFT, CUT_TOP, CUT_RIGHT, CUT_BOTTOM = 1, 2, 4, 8


def _starts(size: int, tile: int, overlap: float) -> list[int]:
    if size <= tile:
        return [0]
    # the largest whole-pixel step that keeps the overlap, then spread evenly so the last tile is flush
    step = math.floor(tile * (1.0 - overlap) + 1e-9)
    if step < 1:
        raise ValueError(f"overlap {overlap} leaves tiles of {tile} px no room to step; use a smaller overlap")
    n = math.ceil((size - tile) / step) + 1
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def tile_grid(height: int, width: int, tile: int = 640, overlap: float = 0.2) -> list[Tile]:
    """Tiles (x0, y0, x1, y1) covering a height × width image, row by row.

    Neighbours overlap by at least `overlap` × `tile` pixels, spread evenly, and the last
    row and column end flush with the image's edges, so every tile has the same size:
    `tile` square, or the image's side where the image is smaller.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, but got {height}x{width} (height x width)")
    if tile < 1:
        raise ValueError(f"tile must be >= 1 px, but got {tile}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must lie in [0, 1), but got {overlap}")
    tw, th = min(tile, width), min(tile, height)
    return [(x0, y0, x0 + tw, y0 + th) for y0 in _starts(height, tile, overlap) for x0 in _starts(width, tile, overlap)]


# --- merging ---------------------------------------------------------------------------------


@njit(**EXACT)
def _continues(a: np.ndarray, a_cut: int, b: np.ndarray, b_seen: np.ndarray, seam_px: float, ratio: float) -> bool:
    """Whether `b`, found in the region `b_seen`, carries on across a side of `a` that a tile edge cut.

    `b` must reach past the cut, cover `a` as far as `b_seen` lets it see (the real
    continuation of a cut object overlaps the cut part wherever the tiles overlap), and
    share at least `ratio` of the shorter extent along the cut.
    """
    for side in range(4):
        if not a_cut & (1 << side):
            continue
        if side == 0:  # left
            across = b[0] < a[0] - seam_px and b[2] >= min(a[2], b_seen[2]) - seam_px
        elif side == 2:  # right
            across = b[2] > a[2] + seam_px and b[0] <= max(a[0], b_seen[0]) + seam_px
        elif side == 1:  # top
            across = b[1] < a[1] - seam_px and b[3] >= min(a[3], b_seen[3]) - seam_px
        else:  # bottom
            across = b[3] > a[3] + seam_px and b[1] <= max(a[1], b_seen[1]) + seam_px
        if not across:
            continue
        lo = 1 if side % 2 == 0 else 0  # the extent along the cut: y for left/right, x for top/bottom
        shared = min(a[lo + 2], b[lo + 2]) - max(a[lo], b[lo])
        shorter = min(a[lo + 2] - a[lo], b[lo + 2] - b[lo])
        if shorter > 0.0 and shared >= ratio * shorter:
            return True
    return False


@njit(**EXACT)
def _same_object(
    a: np.ndarray,
    a_cut: int,
    a_tile: int,
    a_seen: np.ndarray,
    b: np.ndarray,
    b_cut: int,
    b_tile: int,
    b_seen: np.ndarray,
    merge_iou: float,
    seam_px: float,
) -> bool:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw > 0.0 and ih > 0.0:
        inter = iw * ih
        area_a = (a[2] - a[0]) * (a[3] - a[1])
        area_b = (b[2] - b[0]) * (b[3] - b[1])
        if inter >= merge_iou * (area_a + area_b - inter):
            return True
        partial_view = a_tile != b_tile or a_cut != 0 or b_cut != 0
        if partial_view and inter >= merge_iou * min(area_a, area_b):
            return True
    return _continues(a, a_cut, b, b_seen, seam_px, merge_iou) or _continues(b, b_cut, a, a_seen, seam_px, merge_iou)


@njit(**EXACT)
def _union_into(cur: np.ndarray, cur_cut: int, b: np.ndarray, b_cut: int, seam_px: float) -> int:
    """Grow `cur` to hold `b`; returns the union's cut sides (a side is cut if the part that bounds it was)."""
    out_cut = 0
    for side in range(4):
        bit = 1 << side
        k = side  # xyxy index of this side: left 0, top 1, right 2, bottom 3
        low = side < 2  # left and top bound from below
        ca, cb = cur[k], b[k]
        if abs(ca - cb) <= seam_px:
            cut = (cur_cut & bit) != 0 and (b_cut & bit) != 0
        elif (ca < cb) == low:
            cut = (cur_cut & bit) != 0
        else:
            cut = (b_cut & bit) != 0
        if cut:
            out_cut |= bit
        cur[k] = min(ca, cb) if low else max(ca, cb)
    return out_cut


@njit(**EXACT)
def _merge_kernel(
    xyxy: np.ndarray,
    score: np.ndarray,
    class_id: np.ndarray,
    cut: np.ndarray,
    tile: np.ndarray,
    regions: np.ndarray,
    merge_iou: float,
    seam_px: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = xyxy.shape[0]
    order = np.argsort(-score, kind="mergesort")
    absorbed = np.zeros(n, np.bool_)
    out_xyxy = np.empty((n, 4), np.float64)
    out_score = np.empty(n, np.float32)
    out_class = np.empty(n, np.int32)
    m = 0
    cur = np.empty(4, np.float64)
    seen = np.empty(4, np.float64)  # the union of the regions the merged parts were found in
    for p in range(n):
        i = order[p]
        if absorbed[i]:
            continue
        absorbed[i] = True
        cur[:] = xyxy[i]
        seen[:] = regions[tile[i]]
        cur_cut = int(cut[i])
        changed = True
        while changed:
            changed = False
            for q in range(p + 1, n):
                j = order[q]
                if absorbed[j] or class_id[j] != class_id[i]:
                    continue
                b_seen = regions[tile[j]]
                if _same_object(cur, cur_cut, tile[i], seen, xyxy[j], int(cut[j]), tile[j], b_seen, merge_iou, seam_px):
                    cur_cut = _union_into(cur, cur_cut, xyxy[j], int(cut[j]), seam_px)
                    seen[0] = min(seen[0], b_seen[0])
                    seen[1] = min(seen[1], b_seen[1])
                    seen[2] = max(seen[2], b_seen[2])
                    seen[3] = max(seen[3], b_seen[3])
                    absorbed[j] = True
                    changed = True
        out_xyxy[m] = cur
        out_score[m] = score[i]
        out_class[m] = class_id[i]
        m += 1
    return out_xyxy[:m], out_score[:m], out_class[:m]


def _cut_sides(xyxy: np.ndarray, found_in: np.ndarray, image_hw: tuple[int, int], seam_px: float) -> np.ndarray:
    """Which sides of each box (image pixels) lie on an internal edge of the region it was found in."""
    h, w = image_hw
    cut = np.where((found_in[:, 0] > 0) & (xyxy[:, 0] <= found_in[:, 0] + seam_px), CUT_LEFT, 0)
    cut |= np.where((found_in[:, 1] > 0) & (xyxy[:, 1] <= found_in[:, 1] + seam_px), CUT_TOP, 0)
    cut |= np.where((found_in[:, 2] < w) & (xyxy[:, 2] >= found_in[:, 2] - seam_px), CUT_RIGHT, 0)
    cut |= np.where((found_in[:, 3] < h) & (xyxy[:, 3] >= found_in[:, 3] - seam_px), CUT_BOTTOM, 0)
    return cut.astype(np.uint8)


def merge_tiles(
    tiles: Sequence[Tile],
    detections: Sequence[Detections],
    image_hw: tuple[int, int],
    *,
    merge_iou: float = 0.5,
    seam_px: float = 4.0,
    full_image: Detections | None = None,
) -> Detections:
    """Merge per-tile detections (each in its tile's pixels) into one set in image pixels.

    `tiles[k]` is where `detections[k]` was found; `full_image` adds detections made on
    the whole image (already in image pixels), which no tile edge cut. Merging follows
    the module's rules; the result is sorted by score, best first. Use this directly to
    batch the tiles of several images through one detector.
    """
    if len(tiles) != len(detections):
        raise ValueError(f"tiles and detections must pair up, but got {len(tiles)} tiles and {len(detections)} results")
    if not 0.0 < merge_iou <= 1.0:
        raise ValueError(f"merge_iou must lie in (0, 1], but got {merge_iou}")
    if seam_px < 0:
        raise ValueError(f"seam_px must be >= 0, but got {seam_px}")
    h, w = image_hw
    # where each box was found: its tile, and for the full-image pass (id len(tiles)) the whole image
    regions = np.array([*tiles, (0, 0, w, h)], np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = regions[:-1].T
    outside = np.flatnonzero((x0 < 0) | (y0 < 0) | (x1 > w) | (y1 > h) | (x1 <= x0) | (y1 <= y0))
    if outside.size:
        k = int(outside[0])
        raise ValueError(f"tile {k} {tuple(tiles[k])} does not lie inside the {w}x{h} image")
    parts = [*detections, *([full_image] if full_image is not None else [])]
    counts = np.array([len(d) for d in parts], np.int64)
    if not counts.sum():
        return Detections.empty()
    nonempty = [d for d in parts if len(d)]
    tile_ids = np.repeat(np.arange(len(parts), dtype=np.int32), counts)
    found_in = regions[tile_ids]  # the full-image region starts at (0, 0) and has no internal edges
    xyxy = np.concatenate([d.xyxy for d in nonempty]).astype(np.float64) + np.tile(found_in[:, :2], 2)
    cut = _cut_sides(xyxy, found_in, image_hw, seam_px)
    merged, score, class_id = _merge_kernel(
        xyxy,
        np.concatenate([d.score for d in nonempty]),
        np.concatenate([d.class_id for d in nonempty]),
        cut,
        tile_ids,
        regions,
        float(merge_iou),
        float(seam_px),
    )
    return Detections(xyxy=merged.astype(np.float32), score=score, class_id=class_id)


def detect_tiled(
    detector: Detector,
    image: np.ndarray,
    *,
    tile: int = 640,
    overlap: float = 0.2,
    batch: int = 8,
    merge_iou: float = 0.5,
    include_full_image: bool = False,
    seam_px: float = 4.0,
) -> Detections:
    """Detect in a large image tile by tile, in batches of `batch` tiles, and merge at the seams.

    Tiles are views of `image`, not copies. `include_full_image` also runs the detector
    on the whole image (letterboxed), which finds objects too large for a tile. Boxes
    come back in image pixels; see `merge_tiles` for how pieces are joined.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an (H, W, 3) uint8 BGR array, but got {got}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, but got {batch}")
    h, w = int(image.shape[0]), int(image.shape[1])
    tiles = tile_grid(h, w, tile, overlap)
    found: list[Detections] = []
    for start in range(0, len(tiles), batch):
        chunk = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in tiles[start : start + batch]]
        results = detector.detect(chunk)
        if len(results) != len(chunk):
            raise InferenceError(f"the detector returned {len(results)} results for a batch of {len(chunk)} tiles")
        found.extend(results)
    full = None
    if include_full_image:
        (full,) = detector.detect([image])
    return merge_tiles(tiles, found, (h, w), merge_iou=merge_iou, seam_px=seam_px, full_image=full)
