"""Multi-object tracking: a ByteTrack-style tracker that gives detections stable ids.

ByteTrack (Zhang et al., ECCV 2022) keeps the detections a detector is unsure of instead
of throwing them away: a person half hidden behind a stall scores low, but a low-score box
where a track's Kalman filter expects it is still that person. Each frame it associates

1. confirmed and lost tracks with the high-score detections, by IoU with the tracks'
   Kalman-predicted boxes;
2. confirmed tracks still unmatched with the low-score detections (a stricter IoU);
3. tentative tracks (too young to report) with the high-score detections left over;

then starts tentative tracks from the high-score detections nobody took, and forgets lost
tracks after `lost_patience_frames` missed frames. Boxes move under a constant-velocity
Kalman filter on (centre x, centre y, aspect w/h, height), ByteTrack's own model and noise.

One departure, on by default (`refind_with_low_scores`): lost tracks join the second
association too. ByteTrack leaves them out, so an object that was missed for a few frames
and comes back with a low score stays unreported, and a neighbour's track that is still
"tracked" may take its box instead: an id switch. On the issue-3 benchmark streams this
raises the share of detections reported from 96% to 99% and lowers id switches.

Association is a minimum-cost assignment with a cost ceiling: pairs above it are never
matched, and among the rest the tracker minimises the sum of (cost - ceiling), which is
what ByteTrack gets from `lap.lapjv(cost, extend_cost=True, cost_limit=ceiling)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision._jit import EXACT, njit
from vision._union_find import find_root
from vision.geometry import _iou_pair
from vision.types import Detections, _frozen_view

#: ByteTrack's Kalman noise, as fractions of the box height: position and velocity std.
STD_WEIGHT_POSITION = 1.0 / 20
STD_WEIGHT_VELOCITY = 1.0 / 160


class TrackerConfig(BaseModel):
    """How `ByteTracker` splits detections by score and how close a match must be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_threshold: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Detections scoring at least this enter the first association and may start tracks",
    )
    low_threshold: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Detections scoring at or below this are ignored; those between it and high_threshold "
        "only extend confirmed tracks (the second association)",
    )
    new_track_threshold: float = Field(
        default=0.6,
        gt=0.0,
        le=1.0,
        description="A high-score detection that matched no track starts one only if it scores at least this",
    )
    match_iou: float = Field(
        default=0.2,
        gt=0.0,
        le=1.0,
        description="Least IoU between a track's predicted box and a high-score detection for a match "
        "(first association; cost ceiling 1 - match_iou)",
    )
    low_match_iou: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Least IoU for a confirmed track to take a low-score detection (second association)",
    )
    tentative_match_iou: float = Field(
        default=0.3,
        gt=0.0,
        le=1.0,
        description="Least IoU for a tentative track to take a leftover high-score detection (third association)",
    )
    lost_patience_frames: int = Field(
        default=30,
        ge=0,
        le=100_000,
        description="Missed update() frames a lost track is kept for re-association before it is forgotten; "
        "frames passed with coast() do not count",
    )
    min_hits: int = Field(
        default=2,
        ge=1,
        le=1_000,
        description="Consecutive matched frames before a new track is confirmed and reported; "
        "a tentative track that misses a frame is dropped",
    )
    class_aware: bool = Field(
        default=True,
        description="Match a track only with detections of its own class",
    )
    refind_with_low_scores: bool = Field(
        default=True,
        description="Lost tracks also take part in the second association, so an object missed for a few "
        "frames that comes back with a low score keeps its id (ByteTrack lets only tracked tracks take "
        "low-score detections there)",
    )
    fuse_score: bool = Field(
        default=False,
        description="Weigh IoU by the detection's score in the first and third associations, so that "
        "match_iou and tentative_match_iou bound IoU x score (ByteTrack's MOT17 setting); helps most when "
        "class_aware is off",
    )

    @model_validator(mode="after")
    def _check_score_order(self) -> Self:
        if not self.low_threshold < self.high_threshold:
            raise ValueError(
                f"low_threshold must be below high_threshold, but got {self.low_threshold} >= {self.high_threshold}"
            )
        if self.new_track_threshold < self.high_threshold:
            raise ValueError(
                "new_track_threshold must be at least high_threshold (only high-score detections start tracks), "
                f"but got {self.new_track_threshold} < {self.high_threshold}"
            )
        return self


class TrackState(IntEnum):
    """Where a track is in its life; a removed track is simply gone from the snapshot."""

    TENTATIVE = 0  # born from a detection, not yet min_hits matches in a row: never reported
    CONFIRMED = 1  # matched in the latest update (or coasting since): reported when matched
    LOST = 2  # missed in an update; kept for re-association for lost_patience_frames


@dataclass(frozen=True, slots=True, eq=False)
class Tracks:
    """A read-only snapshot of every live track, as aligned arrays (one row per track).

    `xyxy` is the Kalman estimate: the last update's filtered box, or the prediction for a
    track that is lost or coasting. `velocity` is the centre's motion in px per frame.
    `frames_since_seen` counts every frame since the last matched detection (coasted ones
    too); `misses` counts only the update() frames without one, which is what
    `lost_patience_frames` is measured against.
    """

    track_id: np.ndarray  # (T,) int64
    class_id: np.ndarray  # (T,) int32
    xyxy: np.ndarray  # (T, 4) float32
    state: np.ndarray  # (T,) int8, TrackState values
    hits: np.ndarray  # (T,) int32, matched frames
    age: np.ndarray  # (T,) int32, frames since birth, birth frame included
    frames_since_seen: np.ndarray  # (T,) int32
    misses: np.ndarray  # (T,) int32
    velocity: np.ndarray  # (T, 2) float32

    def __post_init__(self) -> None:
        n = len(self.track_id)
        for name in ("track_id", "class_id", "xyxy", "state", "hits", "age", "frames_since_seen", "misses"):
            value = getattr(self, name)
            if len(value) != n:
                raise ValueError(f"{name} must have {n} rows to match track_id, but got {len(value)}")
            object.__setattr__(self, name, _frozen_view(value, value.dtype))
        object.__setattr__(self, "velocity", _frozen_view(self.velocity, np.float32))

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def in_state(self, state: TrackState) -> np.ndarray:
        """Boolean mask of the tracks in `state`."""
        return self.state == int(state)


# --- linear assignment -----------------------------------------------------------------


@njit(**EXACT)
def _lsap_kernel(cost: np.ndarray) -> np.ndarray:
    """Column of each row in a minimum-cost assignment of a finite (nr, nc) matrix, nr <= nc.

    Shortest augmenting paths with dual potentials (Jonker-Volgenant; Crouse 2016's
    rectangular form, the algorithm behind scipy's `linear_sum_assignment`).
    """
    nr, nc = cost.shape
    u = np.zeros(nr)
    v = np.zeros(nc)
    shortest = np.empty(nc)
    path = np.full(nc, -1, np.int64)
    col4row = np.full(nr, -1, np.int64)
    row4col = np.full(nc, -1, np.int64)
    seen_row = np.zeros(nr, np.bool_)
    seen_col = np.zeros(nc, np.bool_)
    remaining = np.empty(nc, np.int64)
    for cur_row in range(nr):
        for it in range(nc):
            remaining[it] = nc - it - 1
        num_remaining = nc
        seen_row[:] = False
        seen_col[:] = False
        shortest[:] = np.inf
        min_val = 0.0
        sink = -1
        i = cur_row
        while sink == -1:
            index = 0
            lowest = np.inf
            seen_row[i] = True
            for it in range(num_remaining):
                j = remaining[it]
                reduced = min_val + cost[i, j] - u[i] - v[j]
                if reduced < shortest[j]:
                    path[j] = i
                    shortest[j] = reduced
                # among equals prefer a free column: the path ends there
                if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                    lowest = shortest[j]
                    index = it
            min_val = lowest
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            seen_col[j] = True
            num_remaining -= 1
            remaining[index] = remaining[num_remaining]
        u[cur_row] += min_val
        for r in range(nr):
            if seen_row[r] and r != cur_row:
                u[r] += min_val - shortest[col4row[r]]
        for c in range(nc):
            if seen_col[c]:
                v[c] -= min_val - shortest[c]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            previous = col4row[i]
            col4row[i] = j
            j = previous
            if i == cur_row:
                break
    return col4row


@njit(**EXACT)
def _assign_kernel(cost: np.ndarray, max_cost: float) -> np.ndarray:
    """Column matched to each row (-1: none), minimising the sum of (cost - max_cost).

    Only pairs with cost <= max_cost may match. Rows and columns split into the connected
    components of that eligibility graph, each solved on its own: IoU costs make them
    tiny (mostly one track and one detection), so a frame costs far less than one
    assignment over the whole matrix. Within a component, an ineligible pair gets gain 0,
    the same as leaving both unmatched, so a full rectangular assignment of the gains
    (cost - max_cost, at most 0) finds the best partial matching; ineligible pairs are
    then dropped.
    """
    n, m = cost.shape
    match = np.full(n, -1, np.int64)
    if n == 0 or m == 0:
        return match
    parent = np.arange(n + m)
    edges = 0
    for i in range(n):
        for j in range(m):
            if cost[i, j] <= max_cost:
                edges += 1
                a = find_root(parent, i)
                b = find_root(parent, n + j)
                if a != b:
                    parent[a] = b
    if edges == 0:
        return match
    label_of_root = np.full(n + m, -1, np.int64)
    label = np.empty(n + m, np.int64)
    count = 0
    for k in range(n + m):
        root = find_root(parent, k)
        if label_of_root[root] < 0:
            label_of_root[root] = count
            count += 1
        label[k] = label_of_root[root]
    # bucket rows and columns by component (a counting sort)
    row_start = np.zeros(count + 1, np.int64)
    col_start = np.zeros(count + 1, np.int64)
    for i in range(n):
        row_start[label[i] + 1] += 1
    for j in range(m):
        col_start[label[n + j] + 1] += 1
    for c in range(count):
        row_start[c + 1] += row_start[c]
        col_start[c + 1] += col_start[c]
    rows = np.empty(n, np.int64)
    cols = np.empty(m, np.int64)
    row_fill = row_start[:-1].copy()
    col_fill = col_start[:-1].copy()
    for i in range(n):
        rows[row_fill[label[i]]] = i
        row_fill[label[i]] += 1
    for j in range(m):
        cols[col_fill[label[n + j]]] = j
        col_fill[label[n + j]] += 1
    for c in range(count):
        r0, r1 = row_start[c], row_start[c + 1]
        c0, c1 = col_start[c], col_start[c + 1]
        nr, nc = r1 - r0, c1 - c0
        if nr == 0 or nc == 0:
            continue
        if nr == 1 and nc == 1:  # connected, so the one pair is eligible
            match[rows[r0]] = cols[c0]
            continue
        flip = nr > nc
        gain = np.empty((nc, nr) if flip else (nr, nc))
        for a in range(nr):
            for b in range(nc):
                value = cost[rows[r0 + a], cols[c0 + b]]
                g = value - max_cost if value <= max_cost else 0.0
                if flip:
                    gain[b, a] = g
                else:
                    gain[a, b] = g
        col4row = _lsap_kernel(gain)
        for a in range(col4row.shape[0]):
            if flip:
                i, j = rows[r0 + col4row[a]], cols[c0 + a]
            else:
                i, j = rows[r0 + a], cols[c0 + col4row[a]]
            if cost[i, j] <= max_cost:
                match[i] = j
    return match


def linear_assignment(cost: npt.ArrayLike, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Match rows to columns of `cost` (N×M) at least total cost, never above `max_cost`.

    Returns `(rows, cols)`, int64 index arrays of the matched pairs in row order. Among
    matchings that use only pairs with cost <= max_cost it minimises the sum of
    (cost - max_cost): a pair is worth matching by how far it is under the ceiling, as in
    ByteTrack's `lapjv(..., cost_limit=max_cost)`. `+inf` marks a forbidden pair.
    """
    arr = np.asarray(cost, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"cost must be a 2D array with shape (N, M), but got shape {arr.shape}")
    if np.isnan(arr).any() or np.isneginf(arr).any():
        raise ValueError("cost must be finite or +inf (a forbidden pair), but holds NaN or -inf")
    if not math.isfinite(max_cost):
        raise ValueError(f"max_cost must be finite, but got {max_cost}")
    match = _assign_kernel(np.ascontiguousarray(arr), float(max_cost))
    rows = np.flatnonzero(match >= 0)
    return rows, match[rows]


# --- IoU association -------------------------------------------------------------------


@njit(**EXACT)
def _associate_kernel(
    track_xyxy: np.ndarray,
    track_class: np.ndarray,
    rows: np.ndarray,
    det_xyxy: np.ndarray,
    det_class: np.ndarray,
    det_score: np.ndarray,
    cols: np.ndarray,
    class_aware: bool,
    fuse_score: bool,
    max_cost: float,
    det_of_track: np.ndarray,
) -> None:
    """Match tracks `rows` with detections `cols` by 1 - IoU (x score when fused); writes each match's detection."""
    cost = np.empty((rows.shape[0], cols.shape[0]))
    for a in range(rows.shape[0]):
        i = rows[a]
        for b in range(cols.shape[0]):
            j = cols[b]
            if class_aware and track_class[i] != det_class[j]:
                cost[a, b] = np.inf
            else:
                iou = _iou_pair(track_xyxy, i, det_xyxy, j)
                cost[a, b] = 1.0 - iou * det_score[j] if fuse_score else 1.0 - iou
    match = _assign_kernel(cost, max_cost)
    for a in range(rows.shape[0]):
        if match[a] >= 0:
            det_of_track[rows[a]] = cols[match[a]]


# --- Kalman filter on (cx, cy, aspect, h) and their velocities ------------------------


@njit(**EXACT)
def _kalman_initiate_kernel(xyxy: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> None:
    """A new track's state from its first box: still, with ByteTrack's initial uncertainty."""
    for k in range(xyxy.shape[0]):
        w = float(xyxy[k, 2]) - float(xyxy[k, 0])
        h = float(xyxy[k, 3]) - float(xyxy[k, 1])
        mean[k, :] = 0.0
        mean[k, 0] = float(xyxy[k, 0]) + w / 2
        mean[k, 1] = float(xyxy[k, 1]) + h / 2
        mean[k, 2] = w / h
        mean[k, 3] = h
        cov[k, :, :] = 0.0
        sp, sv = 2 * STD_WEIGHT_POSITION * h, 10 * STD_WEIGHT_VELOCITY * h
        cov[k, 0, 0] = cov[k, 1, 1] = cov[k, 3, 3] = sp * sp
        cov[k, 2, 2] = 1e-2 * 1e-2
        cov[k, 4, 4] = cov[k, 5, 5] = cov[k, 7, 7] = sv * sv
        cov[k, 6, 6] = 1e-5 * 1e-5


@njit(**EXACT)
def _kalman_predict_kernel(mean: np.ndarray, cov: np.ndarray, hold_height: np.ndarray) -> None:
    """One frame of constant-velocity motion for every track, in place.

    With F = [[I, I], [0, I]] and P = [[A, B], [C, D]], F P F^T is
    [[A + B + C + D, B + D], [C + D, D]]; the process noise scales with the height.
    A track with `hold_height` set (lost, as in ByteTrack) stops growing or shrinking.
    """
    for k in range(mean.shape[0]):
        if hold_height[k]:
            mean[k, 7] = 0.0
        h = mean[k, 3]
        sp, sv = STD_WEIGHT_POSITION * h, STD_WEIGHT_VELOCITY * h
        for d in range(4):
            mean[k, d] += mean[k, d + 4]
        p = cov[k]
        for i in range(4):
            for j in range(4):
                a, b, c, d = p[i, j], p[i, j + 4], p[i + 4, j], p[i + 4, j + 4]
                p[i, j] = a + b + c + d
                p[i, j + 4] = b + d
                p[i + 4, j] = c + d
        p[0, 0] += sp * sp
        p[1, 1] += sp * sp
        p[2, 2] += 1e-2 * 1e-2
        p[3, 3] += sp * sp
        p[4, 4] += sv * sv
        p[5, 5] += sv * sv
        p[6, 6] += 1e-5 * 1e-5
        p[7, 7] += sv * sv


@njit(**EXACT)
def _kalman_update_kernel(
    mean: np.ndarray, cov: np.ndarray, tracks: np.ndarray, xyxy: np.ndarray, dets: np.ndarray
) -> None:
    """Correct tracks `tracks` with boxes `dets`, in place: x += K y, P -= K S K^T.

    S = H P H^T + R is 4×4 and solved by Cholesky; with H = [I 0], K S K^T is
    P[:, :4] S^-1 P[:4, :].
    """
    s = np.empty((4, 4))
    chol = np.zeros((4, 4))
    x = np.empty((4, 8))
    pht = np.empty((8, 4))  # P H^T = P[:, :4], kept while P changes
    z = np.empty(4)
    for t in range(tracks.shape[0]):
        k, n = tracks[t], dets[t]
        p, mu = cov[k], mean[k]
        w = float(xyxy[n, 2]) - float(xyxy[n, 0])
        h = float(xyxy[n, 3]) - float(xyxy[n, 1])
        z[0] = float(xyxy[n, 0]) + w / 2 - mu[0]
        z[1] = float(xyxy[n, 1]) + h / 2 - mu[1]
        z[2] = w / h - mu[2]
        z[3] = h - mu[3]
        r = STD_WEIGHT_POSITION * mu[3]
        for i in range(4):
            for j in range(4):
                s[i, j] = p[i, j]
        s[0, 0] += r * r
        s[1, 1] += r * r
        s[2, 2] += 1e-1 * 1e-1
        s[3, 3] += r * r
        for i in range(4):
            for j in range(i + 1):
                acc = s[i, j]
                for q in range(j):
                    acc -= chol[i, q] * chol[j, q]
                if i == j:
                    chol[i, i] = math.sqrt(max(acc, 1e-300))
                else:
                    chol[i, j] = acc / chol[j, j]
        # x = S^-1 P[:4, :], by forward then back substitution, one column at a time
        for col in range(8):
            for i in range(4):
                acc = p[i, col]
                for q in range(i):
                    acc -= chol[i, q] * x[q, col]
                x[i, col] = acc / chol[i, i]
            for i in range(3, -1, -1):
                acc = x[i, col]
                for q in range(i + 1, 4):
                    acc -= chol[q, i] * x[q, col]
                x[i, col] = acc / chol[i, i]
        # K y = (S^-1 P[:4, :])^T y, as P and S are symmetric
        for a in range(8):
            acc = 0.0
            for i in range(4):
                acc += x[i, a] * z[i]
            mu[a] += acc
        for a in range(8):
            for i in range(4):
                pht[a, i] = p[a, i]
        for a in range(8):
            for b in range(a, 8):
                acc = 0.0
                for i in range(4):
                    acc += pht[a, i] * x[i, b]
                p[a, b] -= acc
                if b != a:
                    p[b, a] = p[a, b]


@njit(**EXACT)
def _boxes_of_kernel(mean: np.ndarray) -> np.ndarray:
    """xyxy boxes of Kalman states; a negative height or width (a long coast) becomes zero."""
    out = np.empty((mean.shape[0], 4), np.float32)
    for k in range(mean.shape[0]):
        h = max(mean[k, 3], 0.0)
        w = max(mean[k, 2] * h, 0.0)
        out[k, 0] = mean[k, 0] - w / 2
        out[k, 1] = mean[k, 1] - h / 2
        out[k, 2] = mean[k, 0] + w / 2
        out[k, 3] = mean[k, 1] + h / 2
    return out


# --- the tracker -------------------------------------------------------------------------


class ByteTracker:
    """ByteTrack over `Detections`: `update` once per inferred frame, `coast` for a skipped one.

    Reported ids are positive int64 that increase in order of birth and survive gaps of
    up to `lost_patience_frames` missed frames. `update` returns new `Detections`: the
    input rows that a confirmed track took this frame, in input order, boxes and scores as
    detected, with `track_id` set. Detections with no area are ignored.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        if config is not None and not isinstance(config, TrackerConfig):
            raise TypeError(f"config must be a TrackerConfig or None, but got {type(config).__name__}")
        self.config = config if config is not None else TrackerConfig()
        self.reset()

    def reset(self) -> None:
        """Forget every track and start ids again from 1, as for a new stream."""
        self._next_id = 1
        self._mean = np.empty((0, 8))
        self._cov = np.empty((0, 8, 8))
        self._id = np.empty(0, np.int64)
        self._class = np.empty(0, np.int32)
        self._state = np.empty(0, np.int8)
        self._hits = np.empty(0, np.int32)
        self._age = np.empty(0, np.int32)
        self._since_seen = np.empty(0, np.int32)
        self._misses = np.empty(0, np.int32)

    @property
    def tracks(self) -> Tracks:
        """Every live track (tentative, confirmed and lost), as a read-only snapshot."""
        return Tracks(
            track_id=self._id.copy(),
            class_id=self._class.copy(),
            xyxy=_boxes_of_kernel(self._mean),
            state=self._state.copy(),
            hits=self._hits.copy(),
            age=self._age.copy(),
            frames_since_seen=self._since_seen.copy(),
            misses=self._misses.copy(),
            velocity=self._mean[:, 4:6].astype(np.float32),
        )

    def coast(self) -> None:
        """Advance one frame that was not inferred (a motion gate skipped it).

        Tracks move on their predictions and age, but nothing counts as a miss: no track
        is lost, dropped or brought closer to being forgotten.
        """
        _kalman_predict_kernel(self._mean, self._cov, self._state == TrackState.LOST)
        self._age += 1
        self._since_seen += 1

    def update(self, detections: Detections) -> Detections:
        """Associate one frame's detections with the tracks; the confirmed ones come back with ids."""
        if not isinstance(detections, Detections):
            raise TypeError(f"detections must be vision.Detections, but got {type(detections).__name__}")
        cfg = self.config
        xyxy, score, det_class = detections.xyxy, detections.score, detections.class_id
        state = self._state
        _kalman_predict_kernel(self._mean, self._cov, state == TrackState.LOST)
        predicted = _boxes_of_kernel(self._mean)

        has_area = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        high = has_area & (score >= cfg.high_threshold)
        low = has_area & (score > cfg.low_threshold) & ~high
        det_of_track = np.full(len(state), -1, np.int64)

        def associate(rows: np.ndarray, cols: np.ndarray, min_iou: float, fuse: bool) -> None:
            if rows.size and cols.size:
                _associate_kernel(
                    predicted,
                    self._class,
                    rows,
                    xyxy,
                    det_class,
                    score,
                    cols,
                    cfg.class_aware,
                    fuse,
                    1.0 - min_iou,
                    det_of_track,
                )

        established = state != TrackState.TENTATIVE
        associate(np.flatnonzero(established), np.flatnonzero(high), cfg.match_iou, cfg.fuse_score)
        second = established if cfg.refind_with_low_scores else state == TrackState.CONFIRMED
        associate(np.flatnonzero(second & (det_of_track < 0)), np.flatnonzero(low), cfg.low_match_iou, False)
        taken = np.zeros(len(detections), np.bool_)
        taken[det_of_track[det_of_track >= 0]] = True
        tentative_rows = np.flatnonzero(state == TrackState.TENTATIVE)
        associate(tentative_rows, np.flatnonzero(high & ~taken), cfg.tentative_match_iou, cfg.fuse_score)
        taken[det_of_track[det_of_track >= 0]] = True

        matched = det_of_track >= 0
        matched_rows = np.flatnonzero(matched)
        _kalman_update_kernel(self._mean, self._cov, matched_rows, xyxy, det_of_track[matched_rows])
        self._class[matched_rows] = det_class[det_of_track[matched_rows]]
        self._hits[matched_rows] += 1
        self._since_seen = np.where(matched, 0, self._since_seen + 1).astype(np.int32)
        self._misses = np.where(matched, 0, self._misses + 1).astype(np.int32)
        self._age += 1
        tentative = state == TrackState.TENTATIVE
        confirm = matched & ((state == TrackState.LOST) | (tentative & (self._hits >= cfg.min_hits)))
        state[confirm] = TrackState.CONFIRMED
        state[(state == TrackState.CONFIRMED) & ~matched] = TrackState.LOST
        dead = (tentative & ~matched) | ((state == TrackState.LOST) & (self._misses > cfg.lost_patience_frames))
        if dead.any():
            self._keep(~dead)
            det_of_track = det_of_track[~dead]

        births = np.flatnonzero(high & ~taken & (score >= cfg.new_track_threshold))
        if births.size:
            self._add(births, xyxy, det_class)
            det_of_track = np.concatenate([det_of_track, births])

        reported = np.flatnonzero((self._state == TrackState.CONFIRMED) & (self._since_seen == 0))
        order = np.argsort(det_of_track[reported], kind="stable")
        rows, dets = reported[order], det_of_track[reported[order]]
        return Detections(xyxy[dets], score[dets], det_class[dets], self._id[rows])

    def _keep(self, alive: np.ndarray) -> None:
        self._mean, self._cov = self._mean[alive], self._cov[alive]
        self._id, self._class, self._state = self._id[alive], self._class[alive], self._state[alive]
        self._hits, self._age = self._hits[alive], self._age[alive]
        self._since_seen, self._misses = self._since_seen[alive], self._misses[alive]

    def _add(self, dets: np.ndarray, xyxy: np.ndarray, det_class: np.ndarray) -> None:
        k = dets.size
        mean, cov = np.empty((k, 8)), np.empty((k, 8, 8))
        _kalman_initiate_kernel(np.ascontiguousarray(xyxy[dets]), mean, cov)
        born = TrackState.CONFIRMED if self.config.min_hits <= 1 else TrackState.TENTATIVE
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._next_id += k
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        self._id = np.concatenate([self._id, ids])
        self._class = np.concatenate([self._class, det_class[dets]])
        self._state = np.concatenate([self._state, np.full(k, born, np.int8)])
        self._hits = np.concatenate([self._hits, np.ones(k, np.int32)])
        self._age = np.concatenate([self._age, np.ones(k, np.int32)])
        self._since_seen = np.concatenate([self._since_seen, np.zeros(k, np.int32)])
        self._misses = np.concatenate([self._misses, np.zeros(k, np.int32)])
