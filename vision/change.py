"""Change detection between two drone (or satellite) surveys of the same place.

Three steps, each usable alone:

1. `register_pair` finds the homography that maps the new survey's image onto the
   baseline's: SIFT features on downscaled, contrast-equalised grey images, Lowe's
   ratio test, MAGSAC++ (`cv2.USAC_MAGSAC`), and checks that the result can be trusted;
   `warp_to` resamples the new image into the baseline's pixel grid.
2. `change_mask` marks the pixels whose surface changed, not merely its lighting. The
   new image's Lab channels are mapped onto the baseline's through pseudo-invariant
   pixels (textured in both, same local structure); colour is compared with lightness
   at half weight and structure through local gradient tensors, each pixel against the
   closest pixel of the other image within a few pixels (registration is never
   perfect); the fused score is thresholded automatically (Otsu's method, or the
   unchanged pixels' noise bound where that is lower) above an absolute floor;
   vegetation and shadow in the new image (season, time of day) never count; the mask
   is cleaned morphologically and snapped to the new image's own segments.
3. `change_regions` turns the mask into regions with areas in m², shape measures, a
   shadow cue for height, and a documented rule for what looks like a structure.

The method is classical and unsupervised: nothing is trained and every threshold is
fixed. Its figures on LEVIR-CD, and what was tried, are in `models/evaluate_change.py`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from vision._jit import EXACT, FAST, njit
from vision._union_find import find_root
from vision.errors import RegistrationError

logger = logging.getLogger(__name__)

Detector = Literal["sift", "orb"]

#: lightness weight in the colour difference: lightness is what lighting changes most
LIGHTNESS_WEIGHT = 0.5
#: a colour difference of this many (lightness-weighted) CIE Lab units scores 1.0
COLOUR_UNIT = 12.0
#: a gradient-tensor difference of this size (0 same .. 1 unrelated) scores 1.0
STRUCTURE_UNIT = 0.5
#: Felzenszwalb scale (Lab units) of the fine segments the mask snaps to
SNAP_SEGMENT_K = 60.0
#: how far beyond the raw change (working pixels) the after image is segmented for snapping
SNAP_REACH_PX = 32
#: excess green (2g - r - b of the chromaticity) above which a pixel is vegetation
VEGETATION_EXCESS_GREEN = 0.08
#: lightness below this fraction of the image's median is shadow
SHADOW_FRACTION = 0.5


# --------------------------------------------------------------------------- registration


@dataclass(frozen=True, slots=True)
class Registration:
    """Where the new image lies on the baseline.

    `homography` (3×3 float64, read-only) maps pixel coordinates of the `after` image
    onto pixel coordinates of the `before` image, both at full resolution (x right, y down).
    """

    homography: np.ndarray
    matches: int  # matches that passed the ratio test
    inliers: int  # matches consistent with the homography
    reprojection_error_px: float  # RMS of the inliers' residuals, in full-resolution `before` pixels

    def __post_init__(self) -> None:
        h = np.array(self.homography, dtype=np.float64)
        if h.shape != (3, 3) or not np.isfinite(h).all():
            raise ValueError(f"homography must be a finite 3x3 array, but got shape {h.shape}")
        h.flags.writeable = False
        object.__setattr__(self, "homography", h)

    @property
    def inlier_ratio(self) -> float:
        return self.inliers / self.matches if self.matches else 0.0

    def map_points(self, xy: np.ndarray) -> np.ndarray:
        """`after` pixel coordinates (N, 2) mapped onto `before`, (N, 2) float64."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.homography).reshape(-1, 2)


def _gray(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"{name} must be a uint8 image (H, W) or (H, W, 3), but got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < 16:
        raise ValueError(f"{name} must be at least 16 pixels on each side, but got {image.shape[:2]}")
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image.reshape(image.shape[:2])


def _shrink(gray: np.ndarray, work_side: int) -> tuple[np.ndarray, np.ndarray]:
    """`gray` shrunk so that its longer side is at most `work_side`, and the 3×3 map full → shrunk pixels."""
    h, w = gray.shape
    factor = min(1.0, work_side / max(h, w))
    if factor == 1.0:
        return gray, np.eye(3)
    small = cv2.resize(gray, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    sx, sy = small.shape[1] / w, small.shape[0] / h
    # pixel centres: full (x + 0.5) * s = small (x' + 0.5)
    return small, np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])


def _features(detector: Detector, max_features: int) -> tuple[cv2.Feature2D, int]:
    if detector == "sift":
        return cv2.SIFT.create(nfeatures=max_features), cv2.NORM_L2
    if detector == "orb":
        return cv2.ORB.create(nfeatures=max_features, fastThreshold=10), cv2.NORM_HAMMING
    raise ValueError(f"detector must be 'sift' or 'orb', but got {detector!r}")


def _implausible(h: np.ndarray, after_shape: tuple[int, int], before_shape: tuple[int, int]) -> str | None:
    """Why `h` (after → before, full resolution) is not a plausible survey-to-survey mapping, or None."""
    det = float(np.linalg.det(h[:2, :2]))
    if not 1 / 16 <= det <= 16:
        return f"the homography scales area by {det:.3g} (allowed 1/16 to 16; negative is a mirror image)"
    ah, aw = after_shape
    corners = np.array([[0, 0], [aw, 0], [aw, ah], [0, ah]], np.float64)
    if (corners @ h[2, :2] + h[2, 2] <= 0.05).any():
        return "the homography's perspective is too strong (part of the image maps to infinity)"
    quad = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), h).reshape(-1, 2).astype(np.float32)
    if not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
        return "the homography folds the image (its corners do not form a convex quadrilateral)"
    bh, bw = before_shape
    frame = np.array([[0, 0], [bw, 0], [bw, bh], [0, bh]], np.float32)
    overlap, _ = cv2.intersectConvexConvex(quad, frame)
    if overlap < 0.05 * bw * bh:
        return f"the mapped image covers only {overlap / (bw * bh):.1%} of the baseline image"
    return None


def register_pair(
    before: np.ndarray,
    after: np.ndarray,
    *,
    max_features: int = 4000,
    ratio: float = 0.75,
    ransac_px: float = 2.0,
    work_side: int = 1600,
    detector: Detector = "sift",
    min_inliers: int = 25,
) -> Registration:
    """Register `after` onto `before` (uint8 BGR or grey images of one place).

    Matching runs on grey copies shrunk so that their longer side is at most
    `work_side` pixels and equalised (CLAHE) against lighting; the homography is
    mapped back to full resolution. `ransac_px` is the MAGSAC++ inlier threshold in
    pixels of the shrunk images. SIFT is the default: on the drone-sized pair of
    `benchmarks/bench_change.py` (rotation, zoom, other light) its worst corner was
    0.22 px off against ORB's 0.52 px, for 1.8 s against 0.3 s; this OpenCV build has
    no AKAZE.

    Raises `RegistrationError`, naming the counts, when fewer than `min_inliers`
    matches agree or the homography is implausible (mirrors, folds, extreme scale or
    perspective, or maps the image off the baseline).
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must lie in (0, 1), but got {ratio}")
    if not ransac_px > 0:
        raise ValueError(f"ransac_px must be > 0, but got {ransac_px}")
    if max_features < 8 or work_side < 64 or min_inliers < 4:
        raise ValueError(
            f"need max_features >= 8, work_side >= 64 and min_inliers >= 4, but got {max_features}, {work_side} "
            f"and {min_inliers}"
        )
    gray_before, gray_after = _gray(before, "before"), _gray(after, "after")
    small_before, to_small_before = _shrink(gray_before, work_side)
    small_after, to_small_after = _shrink(gray_after, work_side)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    features, norm = _features(detector, max_features)
    kp_before, des_before = features.detectAndCompute(clahe.apply(small_before), None)
    kp_after, des_after = features.detectAndCompute(clahe.apply(small_after), None)
    n_before, n_after = len(kp_before), len(kp_after)
    if des_before is None or des_after is None or n_before < 2 or n_after < 2:
        raise RegistrationError(
            f"0 inliers: {detector} found {n_before} keypoints in before and {n_after} in after "
            f"(featureless images cannot be registered)"
        )
    pairs = cv2.BFMatcher(norm).knnMatch(des_after, des_before, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(good) < min_inliers:
        raise RegistrationError(
            f"0 inliers: only {len(good)} of {len(pairs)} matches passed the ratio test {ratio} "
            f"({n_before} and {n_after} keypoints); need at least {min_inliers} inliers"
        )
    src = np.array([kp_after[m.queryIdx].pt for m in good], np.float64).reshape(-1, 1, 2)
    dst = np.array([kp_before[m.trainIdx].pt for m in good], np.float64).reshape(-1, 1, 2)
    h_small, flags = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, ransac_px, maxIters=10000, confidence=0.999)
    inliers = 0 if flags is None else int(flags.sum())
    if h_small is None or inliers < min_inliers:
        raise RegistrationError(
            f"{inliers} inliers of {len(good)} matches, need at least {min_inliers}: too few matches agree on "
            f"one homography for a registration to be trusted (another scene, or too much changed between flights)"
        )
    h = np.linalg.inv(to_small_before) @ h_small @ to_small_after
    if not np.isfinite(h).all() or abs(h[2, 2]) < 1e-12:
        raise RegistrationError(f"{inliers} inliers of {len(good)} matches, but the homography is degenerate")
    h = h / h[2, 2]
    why = _implausible(h, gray_after.shape[:2], gray_before.shape[:2])
    if why is not None:
        raise RegistrationError(f"{inliers} inliers of {len(good)} matches, but {why}")
    keep = flags.ravel().astype(bool)
    to_full_after = np.linalg.inv(to_small_after)
    to_full_before = np.linalg.inv(to_small_before)
    src_full = cv2.perspectiveTransform(src[keep], to_full_after)
    dst_full = cv2.perspectiveTransform(dst[keep], to_full_before)
    residual = cv2.perspectiveTransform(src_full, h) - dst_full
    error = float(np.sqrt(np.mean(np.sum(residual.reshape(-1, 2) ** 2, axis=1))))
    logger.debug("registered: %d inliers of %d matches, RMS %.2f px", inliers, len(good), error)
    return Registration(h, len(good), inliers, error)


def warp_to(
    before_shape: tuple[int, ...], after: np.ndarray, registration: Registration
) -> tuple[np.ndarray, np.ndarray]:
    """`after` resampled into `before`'s pixel grid, and the bool mask of the pixels it covers.

    The mask leaves out a one-pixel rim along the image's edge, where bilinear
    resampling blends image with border.
    """
    if len(before_shape) < 2 or min(before_shape[:2]) < 1:
        raise ValueError(f"before_shape must be (H, W[, C]), but got {before_shape}")
    if after.ndim not in (2, 3) or after.size == 0:
        raise ValueError(f"after must be an image (H, W[, C]), but got shape {after.shape}")
    size = (int(before_shape[1]), int(before_shape[0]))
    warped = cv2.warpPerspective(after, registration.homography, size, flags=cv2.INTER_LINEAR)
    covered = cv2.warpPerspective(np.full(after.shape[:2], 255, np.uint8), registration.homography, size,
                                  flags=cv2.INTER_NEAREST)  # fmt: skip
    valid = cv2.erode(covered, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return warped, valid


# --------------------------------------------------------------------------- kernels


#: edge weights are ordered in buckets of this many colour units (a counting sort: linear, stable)
_WEIGHT_BUCKET = 1.0 / 1024.0


@njit(**EXACT)
def _segment_kernel(image: np.ndarray, include: np.ndarray, k: float, min_size: int, labels: np.ndarray) -> int:
    """Felzenszwalb-Huttenlocher graph segmentation of the `include`d pixels of `image` (H, W, C)
    float32, 8-connected.

    Edges weigh the Euclidean colour distance and are visited in increasing weight,
    bucketed to `_WEIGHT_BUCKET` and in edge order within a bucket. Two components merge
    when the edge is within both one's internal difference plus k / size; then
    components under `min_size` pixels join the neighbour across their lightest edge.
    Writes labels 0..n-1 in order of first pixel (row-major), -1 where not included,
    and returns n.
    """
    h, w, c = image.shape
    n = h * w
    count = 0
    for y in range(h):
        for x in range(w):
            if include[y, x]:
                for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
                    yy, xx = y + dy, x + dx
                    if yy < h and 0 <= xx < w and include[yy, xx]:
                        count += 1
    ea = np.empty(count, np.int32)
    eb = np.empty(count, np.int32)
    weight = np.empty(count, np.float32)
    key = np.empty(count, np.int32)
    m = 0
    top = 0
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
                yy, xx = y + dy, x + dx
                if yy < h and 0 <= xx < w and include[y, x] and include[yy, xx]:
                    s = np.float32(0.0)
                    for ch in range(c):
                        d = image[y, x, ch] - image[yy, xx, ch]
                        s += d * d
                    ea[m] = y * w + x
                    eb[m] = yy * w + xx
                    weight[m] = np.sqrt(s)
                    key[m] = np.int32(weight[m] / _WEIGHT_BUCKET)
                    top = max(top, key[m])
                    m += 1
    starts = np.zeros(top + 2, np.int64)
    for i in range(count):
        starts[key[i] + 1] += 1
    for b in range(1, top + 2):
        starts[b] += starts[b - 1]
    order = np.empty(count, np.int64)
    for i in range(count):
        order[starts[key[i]]] = i
        starts[key[i]] += 1
    parent = np.arange(n, dtype=np.int32)
    size = np.ones(n, np.int64)
    threshold = np.full(n, np.float32(k), np.float32)
    for o in order:
        a = find_root(parent, ea[o])
        b = find_root(parent, eb[o])
        if a != b and weight[o] <= threshold[a] and weight[o] <= threshold[b]:
            if size[a] < size[b] or (size[a] == size[b] and b < a):
                a, b = b, a
            parent[b] = a
            size[a] += size[b]
            threshold[a] = weight[o] + np.float32(k / size[a])
    for o in order:
        a = find_root(parent, ea[o])
        b = find_root(parent, eb[o])
        if a != b and (size[a] < min_size or size[b] < min_size):
            if size[a] < size[b] or (size[a] == size[b] and b < a):
                a, b = b, a
            parent[b] = a
            size[a] += size[b]
    ids = np.full(n, -1, np.int64)
    next_id = 0
    for i in range(n):
        y, x = i // w, i % w
        if not include[y, x]:
            labels[y, x] = -1
            continue
        r = find_root(parent, i)
        if ids[r] < 0:
            ids[r] = next_id
            next_id += 1
        labels[y, x] = ids[r]
    return next_id


@njit(**FAST)
def _tolerant_difference_kernel(before: np.ndarray, after: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """`out[y, x]`: the larger over the two directions of the smallest colour distance from a
    pixel of one image to the other image's pixels at `offsets` (dy, dx) around it, edges
    reflected (OpenCV's BORDER_REFLECT)."""
    h, w, c = before.shape
    for y in range(h):
        for x in range(w):
            best_ab = np.float32(np.inf)
            best_ba = np.float32(np.inf)
            for i in range(offsets.shape[0]):
                yy = y + offsets[i, 0]
                xx = x + offsets[i, 1]
                # BORDER_REFLECT: fedcba|abcdefgh|hgfedcb
                if yy < 0:
                    yy = -yy - 1
                elif yy >= h:
                    yy = 2 * h - yy - 1
                if xx < 0:
                    xx = -xx - 1
                elif xx >= w:
                    xx = 2 * w - xx - 1
                s_ab = np.float32(0.0)
                s_ba = np.float32(0.0)
                for ch in range(c):
                    d_ab = before[y, x, ch] - after[yy, xx, ch]
                    d_ba = after[y, x, ch] - before[yy, xx, ch]
                    s_ab += d_ab * d_ab
                    s_ba += d_ba * d_ba
                best_ab = min(best_ab, s_ab)
                best_ba = min(best_ba, s_ba)
            out[y, x] = np.sqrt(max(best_ab, best_ba))


@njit(**EXACT)
def _pieces_kernel(ids: np.ndarray, labels: np.ndarray, parent: np.ndarray) -> int:
    """Label the 8-connected pieces of equal nonzero `ids` (H, W) int32; 0 is background.

    Writes labels 1..n in order of each piece's first pixel (row-major), 0 for
    background, and returns n. `parent` (H·W + 1) is scratch.
    """
    h, w = ids.shape
    n = 0
    for y in range(h):
        for x in range(w):
            v = ids[y, x]
            if v == 0:
                labels[y, x] = 0
                continue
            label = 0
            if x > 0 and ids[y, x - 1] == v:
                label = find_root(parent, labels[y, x - 1])
            if y > 0:
                for xx in range(max(x - 1, 0), min(x + 2, w)):
                    if ids[y - 1, xx] == v:
                        above = find_root(parent, labels[y - 1, xx])
                        if label == 0:
                            label = above
                        elif above != label:
                            # roots stay the smallest label of their set, which is the piece's first pixel
                            parent[max(label, above)] = min(label, above)
                            label = min(label, above)
            if label == 0:
                n += 1
                parent[n] = n
                label = n
            labels[y, x] = label
    remap = np.zeros(n + 1, np.int32)
    count = 0
    for i in range(1, n + 1):
        if find_root(parent, i) == i:
            count += 1
            remap[i] = count
    for y in range(h):
        for x in range(w):
            if labels[y, x] != 0:
                labels[y, x] = remap[find_root(parent, labels[y, x])]
    return count


@njit(**EXACT)
def _piece_stats_kernel(labels: np.ndarray, stats: np.ndarray) -> None:
    """`stats[i]` = x1, y1, x2, y2 (inclusive) and area of label i >= 1 in `labels`."""
    h, w = labels.shape
    for i in range(stats.shape[0]):
        stats[i, 0] = w
        stats[i, 1] = h
        stats[i, 2] = -1
        stats[i, 3] = -1
        stats[i, 4] = 0
    for y in range(h):
        for x in range(w):
            b = labels[y, x]
            if b != 0:
                stats[b, 0] = min(stats[b, 0], x)
                stats[b, 1] = min(stats[b, 1], y)
                stats[b, 2] = max(stats[b, 2], x)
                stats[b, 3] = max(stats[b, 3], y)
                stats[b, 4] += 1


def _segment(
    image: np.ndarray, *, k: float, min_size: int, include: np.ndarray | None = None, sigma: float = 0.8
) -> tuple[np.ndarray, int]:
    """Felzenszwalb-Huttenlocher segments of a float32 (H, W, C) image: (labels int32 (H, W), count).

    `k` sets the scale in the image's own units (larger: larger segments); `sigma` the
    Gaussian smoothing before, in pixels. Only `include`d pixels (all by default) are
    segmented, as a graph of their own; the others are labelled -1.
    """
    if image.ndim != 3 or image.dtype != np.float32 or min(image.shape[:2]) < 1:
        raise ValueError(f"image must be float32 (H, W, C), but got {image.dtype} {image.shape}")
    if include is None:
        include = np.ones(image.shape[:2], bool)
    elif include.dtype != np.bool_ or include.shape != image.shape[:2]:
        raise ValueError(f"include must be a bool mask of shape {image.shape[:2]}, but got {include.dtype} "
                         f"{include.shape}")  # fmt: skip
    if not k > 0 or min_size < 1 or sigma < 0:
        raise ValueError(f"need k > 0, min_size >= 1 and sigma >= 0, but got {k}, {min_size} and {sigma}")
    smooth = cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0 else image
    smooth = np.ascontiguousarray(smooth.reshape(image.shape))
    labels = np.empty(image.shape[:2], np.int32)
    n = _segment_kernel(smooth, np.ascontiguousarray(include), float(k), int(min_size), labels)
    return labels, int(n)


def _pieces(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected pieces of equal nonzero `ids`: (labels int32 (H, W), stats (n + 1, 5) int64; row 0 unused)."""
    if ids.ndim != 2 or ids.dtype != np.int32:
        raise ValueError(f"ids must be 2D int32, but got {ids.dtype} {ids.shape}")
    h, w = ids.shape
    labels = np.empty((h, w), np.int32)
    n = _pieces_kernel(np.ascontiguousarray(ids), labels, np.empty(h * w + 1, np.int32))
    stats = np.empty((n + 1, 5), np.int64)
    _piece_stats_kernel(labels, stats)
    return labels, stats


# --------------------------------------------------------------------------- change mask


def _lab(image: np.ndarray) -> np.ndarray:
    """CIE Lab in its own units: L 0-100, a and b about -100..100."""
    return cv2.cvtColor(image.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_BGR2Lab)


def _sample(values: np.ndarray, limit: int = 250_000) -> np.ndarray:
    """Every n-th of `values` (flattened), about `limit` at most: quantiles of a large image, cheaply."""
    flat = values.ravel()
    return flat[:: max(1, flat.size // limit)]


def _quantile_map(source: np.ndarray, reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The monotone map that sends `source`'s quantiles onto `reference`'s, applied to `values`."""
    q = np.linspace(0.0, 1.0, 65)
    xs = np.quantile(_sample(source), q) + np.arange(q.size) * 1e-6  # strictly increasing, for interp
    ys = np.quantile(_sample(reference), q)
    return np.interp(values, xs, ys).astype(np.float32)


def _gradient_tensor(lightness: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3)
    return (
        cv2.GaussianBlur(gx * gx, (0, 0), sigma),
        cv2.GaussianBlur(gx * gy, (0, 0), sigma),
        cv2.GaussianBlur(gy * gy, (0, 0), sigma),
    )


def _structure_difference(before_l: np.ndarray, after_l: np.ndarray, sigma: float) -> np.ndarray:
    """0 (same local gradient structure) .. 1 (unrelated), from the smoothed gradient tensors.

    Dividing by both tensors' energy makes it blind to a change of contrast (a gain on
    lightness); the smoothing makes it tolerate a shift of about `sigma` pixels.
    """
    ta = _gradient_tensor(before_l, sigma)
    tb = _gradient_tensor(after_l, sigma)
    diff = np.sqrt((ta[0] - tb[0]) ** 2 + 2 * (ta[1] - tb[1]) ** 2 + (ta[2] - tb[2]) ** 2)
    energy = ta[0] + ta[2] + tb[0] + tb[2]
    # the floor keeps flat-against-flat (noise) near 0: 20 is the energy of faint texture
    return diff / (energy + 20.0)


def _disc(radius: int) -> np.ndarray:
    """(dy, dx) offsets of a digital disc of `radius` pixels, (n, 2) int64."""
    return np.array(
        [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
         if dy * dy + dx * dx <= radius * radius + radius], np.int64)  # fmt: skip


def _tolerant_colour_difference(before: np.ndarray, after: np.ndarray, radius: int) -> np.ndarray:
    """Per pixel, the colour distance to the closest pixel of the other image within `radius`
    (a disc), the larger of the two directions: symmetric, and blind to shifts up to `radius`."""
    if radius < 0 or radius > 1 + min(before.shape[:2]) // 2:
        raise ValueError(f"radius must lie in [0, {1 + min(before.shape[:2]) // 2}], but got {radius}")
    out = np.empty(before.shape[:2], np.float32)
    _tolerant_difference_kernel(
        np.ascontiguousarray(before, np.float32), np.ascontiguousarray(after, np.float32), _disc(radius), out
    )
    return out


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of float `values`: the cut that maximises the between-class variance."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("values must not be empty")
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return hi
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    p = hist / v.size
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0[-1] * w0 - m0) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


def _automatic_threshold(scores: np.ndarray, min_score: float) -> float:
    """Otsu's threshold of the scores, unless the unchanged pixels' noise bound is lower.

    Otsu splits the two modes of a histogram; when a few small changes sit in a quiet
    scene it lands between the noise and the strongest change and misses the weaker
    ones. The noise bound (median + 3 robust standard deviations) is then the lower and
    better cut; in a scene where most pixels moved (a season, a new estate) it is the
    higher one, and Otsu's cut stands.
    """
    # scores far above the floor are changes whatever else changed: clip them out of Otsu's way
    otsu = otsu_threshold(np.minimum(scores, 4.0 * min_score))
    sample = _sample(scores)
    median = float(np.median(sample))
    noise = median + 3 * 1.4826 * float(np.median(np.abs(sample - median)))
    return min(otsu, noise)


def _vegetation(bgr: np.ndarray) -> np.ndarray:
    f = bgr.astype(np.float32)
    return (2 * f[..., 1] - f[..., 0] - f[..., 2]) / (f.sum(axis=2) + 1.0) > VEGETATION_EXCESS_GREEN


def _shadow(lightness: np.ndarray, valid: np.ndarray) -> np.ndarray:
    median = float(np.median(_sample(lightness[valid]))) if valid.any() else 50.0
    return lightness < SHADOW_FRACTION * median


def _clean(mask: np.ndarray, *, radius: int, min_area: float) -> np.ndarray:
    """Open (drop specks and thin lines), close (bridge gaps), drop components under `min_area`, fill smaller holes."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= max(1.0, min_area)
    keep[0] = False
    kept = keep[labels]
    _, holes, hole_stats, _ = cv2.connectedComponentsWithStats((~kept).astype(np.uint8), connectivity=4)
    small = hole_stats[:, cv2.CC_STAT_AREA] < max(1.0, min_area)
    small[np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))] = False  # outside, not a hole
    return kept | small[holes]


@dataclass(frozen=True, slots=True)
class ChangeEvidence:
    """What `change_mask` decided from, at its working resolution (`scale` × the input's)."""

    score: np.ndarray  # float32 fused change score; 1.0 is a clear change
    threshold: float  # the score above which a pixel changed (see `_automatic_threshold`), never below `min_score`
    nuisance: np.ndarray  # bool: vegetation or shadow in the after image, never counted as change
    mask: np.ndarray  # bool: the final mask
    scale: float  # working resolution / input resolution (1.0 unless the input exceeded `max_side`)


def _validate_pair(before: np.ndarray, after: np.ndarray, valid: np.ndarray | None) -> None:
    for name, image in (("before", before), ("after_aligned", after)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name} must be a uint8 BGR image (H, W, 3), but got {image.dtype} {image.shape}")
    if before.shape != after.shape:
        raise ValueError(
            f"before and after_aligned must have one shape (warp the after image with warp_to first), but got "
            f"{before.shape} and {after.shape}"
        )
    if min(before.shape[:2]) < 8:
        raise ValueError(f"images must be at least 8 pixels on each side, but got {before.shape[:2]}")
    if valid is not None and (valid.dtype != np.bool_ or valid.shape != before.shape[:2]):
        raise ValueError(f"valid must be a bool mask of shape {before.shape[:2]}, but got {valid.dtype} {valid.shape}")


def change_evidence(
    before: np.ndarray,
    after_aligned: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    tolerance_px: float = 2.0,
    min_score: float = 1.0,
    min_area_px: float = 24.0,
    exclude_vegetation: bool = True,
    exclude_shadow: bool = True,
    snap_to_segments: bool = True,
    max_side: int = 2048,
) -> ChangeEvidence:
    """`change_mask`'s working: the score, threshold, nuisance and mask it decided from
    (at the working resolution), for display and diagnosis. Arguments as `change_mask`."""
    _validate_pair(before, after_aligned, valid)
    if not (tolerance_px >= 0 and min_area_px >= 0 and min_score > 0 and max_side >= 16):
        raise ValueError(
            f"need tolerance_px >= 0, min_area_px >= 0, min_score > 0 and max_side >= 16, but got "
            f"{tolerance_px}, {min_area_px}, {min_score} and {max_side}"
        )
    h, w = before.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        before = cv2.resize(before, size, interpolation=cv2.INTER_AREA)
        after_aligned = cv2.resize(after_aligned, size, interpolation=cv2.INTER_AREA)
        if valid is not None:
            valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    ok = np.ones(before.shape[:2], bool) if valid is None else valid
    if valid is not None:
        # the baseline shows through where the after image has no pixels: no false edge along the border
        after_aligned = np.where(valid[..., None], after_aligned, before)
    radius = round(tolerance_px * scale)
    area = min_area_px * scale * scale

    lab_before, lab_after = _lab(before), _lab(after_aligned)
    # structure first: lighting does not move it, so it finds the pixels that show how the
    # lighting changed (textured in both, same structure) for the radiometric normalisation
    structure = _structure_difference(lab_before[..., 0], lab_after[..., 0], max(1.0, radius))
    textured = ok & (np.abs(cv2.Laplacian(lab_before[..., 0], cv2.CV_32F, ksize=3)) > 1.0)
    textured &= np.abs(cv2.Laplacian(lab_after[..., 0], cv2.CV_32F, ksize=3)) > 1.0
    normalised: np.ndarray = lab_after
    if textured.sum() >= 200:
        invariant = textured & (structure <= np.median(_sample(structure[textured])))
        normalised = np.stack(
            [_quantile_map(lab_after[..., c][invariant], lab_before[..., c][invariant], lab_after[..., c])
             for c in range(3)], axis=2)  # fmt: skip
    weights = np.array([LIGHTNESS_WEIGHT, 1.0, 1.0], np.float32)
    colour = _tolerant_colour_difference(lab_before * weights, normalised * weights, radius)
    fused = np.maximum(colour / COLOUR_UNIT, structure / STRUCTURE_UNIT)
    score = cv2.GaussianBlur(fused.astype(np.float32), (0, 0), 1.0)

    nuisance = np.zeros_like(ok)
    if exclude_vegetation:
        nuisance |= _vegetation(after_aligned)
    if exclude_shadow:
        nuisance |= _shadow(normalised[..., 0], ok)
    counted = ok & ~nuisance
    threshold = min_score
    if counted.sum() >= 16:
        threshold = max(min_score, _automatic_threshold(score[counted], min_score))
    mask = _clean((score > threshold) & counted, radius=max(1, radius), min_area=area) & ok
    if snap_to_segments and mask.any():
        # segments are only needed near the change: the graph is cut SNAP_REACH_PX beyond it
        reach = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * SNAP_REACH_PX + 1, 2 * SNAP_REACH_PX + 1))
        near = ok & (cv2.dilate(mask.astype(np.uint8), reach) > 0)
        labels, n = _segment(normalised, k=SNAP_SEGMENT_K, min_size=max(8, round(area / 2)), include=near)
        covered = np.bincount(labels[near], minlength=n)
        hit = np.bincount(labels[mask], minlength=n)
        mask = near & (2 * hit >= np.maximum(covered, 1))[np.maximum(labels, 0)]
        mask = _clean(mask, radius=1, min_area=area) & ok
    return ChangeEvidence(score, threshold, nuisance, mask, scale)


def change_mask(
    before: np.ndarray,
    after_aligned: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    tolerance_px: float = 2.0,
    min_score: float = 1.0,
    min_area_px: float = 24.0,
    exclude_vegetation: bool = True,
    exclude_shadow: bool = True,
    snap_to_segments: bool = True,
    max_side: int = 2048,
) -> np.ndarray:
    """Bool mask (H, W) of the pixels whose surface changed between two co-registered uint8 BGR images.

    Robust to lighting and season: the after image's Lab channels are mapped onto the
    before image's through pixels whose local structure did not change; colour is
    compared with lightness at half weight, structure through gradient tensors, which
    a change of brightness or contrast does not move. Each pixel is compared with the
    closest pixel of the other image within `tolerance_px` (misregistration). A pixel
    changed when its fused score exceeds both `min_score` (1.0: a colour difference of
    12 weighted Lab units, or a structure difference of 0.5) and an automatic threshold:
    Otsu's of the image's scores, or the unchanged pixels' noise bound (median + 3
    robust sigma) where that is lower, so that weak changes beside strong ones in a
    quiet scene are kept. Vegetation (seasons) and shadow (time of day) in the after
    image never count (`exclude_vegetation`, `exclude_shadow`). The mask is opened and
    closed, components and holes under `min_area_px` dropped, and (`snap_to_segments`)
    every segment of the after image taken whole when at least half of it changed.

    Images larger than `max_side` are compared shrunk to it; the pixel parameters are
    in input pixels either way. Pixels outside `valid` never changed; where `valid` is
    given, the before image shows through outside it, so the border is no edge.
    """
    evidence = change_evidence(
        before,
        after_aligned,
        valid=valid,
        tolerance_px=tolerance_px,
        min_score=min_score,
        min_area_px=min_area_px,
        exclude_vegetation=exclude_vegetation,
        exclude_shadow=exclude_shadow,
        snap_to_segments=snap_to_segments,
        max_side=max_side,
    )
    mask = evidence.mask
    h, w = before.shape[:2]
    if mask.shape != (h, w):
        mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        if valid is not None:
            mask &= valid
    return mask


# --------------------------------------------------------------------------- regions


@dataclass(frozen=True, slots=True)
class ChangeRegion:
    """One region of change, measured.

    `looks_like_structure` is true when all of: `min_area_m2 <= area_m2 <= max_area_m2`,
    `rectangularity >= min_rectangularity` (a building's footprint fills most of its
    rotated bounding box), `solidity >= min_solidity` (no deep notches) and
    `elongation <= max_elongation` (not a road, a trench or a fence line); the bounds
    are `change_regions`' arguments.
    """

    bbox: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, end exclusive
    polygon: np.ndarray  # (N, 2) int32 outline in pixels (x, y), simplified to about a pixel; read-only
    area_px: int
    area_m2: float
    rectangularity: float  # area / area of the minimum-area rotated rectangle, 0..1
    solidity: float  # area / area of the convex hull, 0..1
    elongation: float  # long / short side of the minimum-area rotated rectangle, >= 1
    shadow_cue: float | None  # 0..1 share of (new) shadow in the darkest band beside it; None without `after`
    looks_like_structure: bool

    def __post_init__(self) -> None:
        p = np.array(self.polygon, dtype=np.int32)
        if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3:
            raise ValueError(f"polygon must be an (N >= 3, 2) array, but got shape {p.shape}")
        p.flags.writeable = False
        object.__setattr__(self, "polygon", p)


def _merge_slivers(labels: np.ndarray, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pieces at most 2 pixels thick join the neighbouring piece they share the most border with.

    Segmenting a blurred edge leaves a sliver of in-between colours along it (a ring
    round a roof); it belongs to what it borders, not a region of its own.
    """
    labels = labels.copy()
    h, w = labels.shape
    core = np.ones((3, 3), np.uint8)
    ring = np.ones((3, 3), np.uint8)
    changed = False
    for i in range(1, len(stats)):
        x1, y1, x2, y2, _ = (int(v) for v in stats[i])
        cx1, cy1, cx2, cy2 = max(0, x1 - 1), max(0, y1 - 1), min(w, x2 + 2), min(h, y2 + 2)
        crop = labels[cy1:cy2, cx1:cx2]
        piece = (crop == i).astype(np.uint8)
        if cv2.erode(piece, core, borderType=cv2.BORDER_CONSTANT, borderValue=0).any():
            continue
        border = crop[(cv2.dilate(piece, ring) > 0) & (piece == 0) & (crop > 0)]
        if border.size:
            crop[piece > 0] = np.bincount(border).argmax()
            changed = True
    if changed:
        _piece_stats_kernel(labels, stats)
    return labels, stats


#: the eight directions a shadow may fall in, as unit steps (x, y)
_DIRECTIONS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))


def _shadow_cue(piece: np.ndarray, dark: np.ndarray, band_px: int) -> float:
    """Largest share of dark pixels in a band `band_px` wide beside the region, over eight directions.

    A raised structure casts its shadow to one side: a band, not a ring.
    """
    size = 2 * band_px + 1
    best = 0.0
    for dx, dy in _DIRECTIONS:
        # dilating with a one-sided line sweeps the region 1..band_px pixels along (dx, dy)
        line = np.zeros((size, size), np.uint8)
        for step in range(1, band_px + 1):
            line[band_px - dy * step, band_px - dx * step] = 1
        band = (cv2.dilate(piece, line, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0) & (piece == 0)
        total = int(np.count_nonzero(band))
        if total:
            best = max(best, np.count_nonzero(band & dark) / total)
    return best


def _dark_level(image: np.ndarray) -> float:
    """The lightness under which a pixel of `image` is shadow: SHADOW_FRACTION of its median."""
    sample = image.reshape(-1, 3)[:: max(1, image.shape[0] * image.shape[1] // 250_000)]
    lightness = _lab(sample.reshape(-1, 1, 3))[..., 0]
    return SHADOW_FRACTION * float(np.median(lightness))


def _measure(
    piece: np.ndarray, stats: np.ndarray, dark: np.ndarray | None, band_px: int, pixel_m2: float, min_area_m2: float
) -> tuple[np.ndarray, int, int, int, int, int, float, float, float, float | None] | None:
    """Outline, box, area and shape measures (and shadow cue) of one piece, or None when it is noise."""
    x1, y1, x2, y2, area = (int(v) for v in stats)
    if area == 0 or area * pixel_m2 < min_area_m2 / 4:
        return None
    contours, _ = cv2.findContours(piece.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=len)
    (_, _), (rw, rh), _ = cv2.minAreaRect(outline)
    # contours run through pixel centres: footprints are half a pixel larger all round
    perimeter = cv2.arcLength(outline, True)
    rectangularity = min(1.0, area / ((rw + 1) * (rh + 1)))
    solidity = min(1.0, area / (cv2.contourArea(cv2.convexHull(outline)) + perimeter / 2 + 1))
    elongation = (max(rw, rh) + 1) / (min(rw, rh) + 1)
    polygon = cv2.approxPolyDP(outline, max(1.0, 0.01 * perimeter), True).reshape(-1, 2)
    if len(polygon) < 3:
        polygon = np.round(cv2.boxPoints(cv2.minAreaRect(outline))).astype(np.int32)
    cue = None if dark is None else _shadow_cue(piece.astype(np.uint8), dark, band_px)
    return polygon, x1, y1, x2 + 1, y2 + 1, area, float(rectangularity), float(solidity), float(elongation), cue


def change_regions(
    mask: np.ndarray,
    *,
    gsd_m: float,
    min_area_m2: float = 8.0,
    max_area_m2: float = 20000.0,
    min_rectangularity: float = 0.55,
    min_solidity: float = 0.7,
    max_elongation: float = 5.0,
    before: np.ndarray | None = None,
    after: np.ndarray | None = None,
    split_scale: float | None = 400.0,
) -> list[ChangeRegion]:
    """The regions of `mask`, largest first, measured at `gsd_m` metres per pixel.

    Without images, regions are the mask's 8-connected components. With `after` (the
    aligned new image, uint8 BGR) the masked pixels are segmented by their colour in
    the after image (Felzenszwalb, scale `split_scale` in Lab units; None: no split), so
    that a new roof and the new drive beside it are judged apart; and each region
    gets a `shadow_cue`, the share of dark pixels in the darkest 1.5 m band beside it
    (of eight directions). With `before` too, pixels already dark before do not count,
    so an old shadow is no cue. The cue is evidence of height for an officer; it is not
    part of `looks_like_structure` (see `ChangeRegion`), which decides on shape alone.

    Regions under a quarter of `min_area_m2` are dropped as noise.
    """
    if mask.dtype != np.bool_ or mask.ndim != 2:
        raise ValueError(f"mask must be a 2D bool array, but got {mask.dtype} {mask.shape}")
    if not (math.isfinite(gsd_m) and gsd_m > 0):
        raise ValueError(f"gsd_m must be a positive number of metres per pixel, but got {gsd_m}")
    if not 0 <= min_area_m2 <= max_area_m2:
        raise ValueError(f"need 0 <= min_area_m2 <= max_area_m2, but got {min_area_m2} and {max_area_m2}")
    if split_scale is not None and not split_scale > 0:
        raise ValueError(f"split_scale must be > 0 or None, but got {split_scale}")
    for name, image in (("before", before), ("after", after)):
        if image is not None and (image.dtype != np.uint8 or image.ndim != 3 or image.shape[:2] != mask.shape):
            raise ValueError(f"{name} must be uint8 BGR of shape {mask.shape} + (3,), but got {image.dtype} "
                             f"{image.shape}")  # fmt: skip
    if before is not None and after is None:
        raise ValueError("before is only used with after (for the shadow cue); pass after too, or neither")
    pixel_m2 = gsd_m * gsd_m
    h, w = mask.shape
    band_px = max(2, round(1.5 / gsd_m))
    pad = band_px + 1
    # shadow is dark against the whole image's median lightness, estimated from a sample
    dark_after = None if after is None else _dark_level(after)
    dark_before = None if before is None else _dark_level(before)
    min_piece = max(4, round(min_area_m2 / pixel_m2 / 4))
    n, components, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    regions = []
    for c in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[c])
        if area * pixel_m2 < min_area_m2 / 4:
            continue
        # everything below works in a crop around one component: the cost follows the change, not the image
        cx1, cy1, cx2, cy2 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(h, y + bh + pad)
        component = components[cy1:cy2, cx1:cx2] == c
        dark = None
        if after is not None and dark_after is not None:
            lab = _lab(after[cy1:cy2, cx1:cx2])
            dark = lab[..., 0] < dark_after
            if before is not None and dark_before is not None:
                dark &= _lab(before[cy1:cy2, cx1:cx2])[..., 0] >= dark_before
            if split_scale is not None:
                segments, _ = _segment(lab, k=split_scale, min_size=min_piece, include=component)
                pieces, piece_stats = _pieces((segments + 1).astype(np.int32))
                pieces, piece_stats = _merge_slivers(pieces, piece_stats)
            else:
                pieces, piece_stats = _pieces(component.astype(np.int32))
        else:
            pieces, piece_stats = _pieces(component.astype(np.int32))
        for i in range(1, len(piece_stats)):
            region = _measure(pieces == i, piece_stats[i], dark, band_px, pixel_m2, min_area_m2)
            if region is None:
                continue
            polygon, px1, py1, px2, py2, piece_area, rectangularity, solidity, elongation, cue = region
            area_m2 = piece_area * pixel_m2
            regions.append(
                ChangeRegion(
                    bbox=(px1 + cx1, py1 + cy1, px2 + cx1, py2 + cy1),
                    polygon=polygon + np.array([cx1, cy1], np.int32),
                    area_px=piece_area,
                    area_m2=area_m2,
                    rectangularity=rectangularity,
                    solidity=solidity,
                    elongation=elongation,
                    shadow_cue=cue,
                    looks_like_structure=bool(
                        min_area_m2 <= area_m2 <= max_area_m2
                        and rectangularity >= min_rectangularity
                        and solidity >= min_solidity
                        and elongation <= max_elongation
                    ),
                )
            )
    regions.sort(key=lambda r: -r.area_px)
    return regions


def regions_mask(shape: tuple[int, ...], regions: list[ChangeRegion], *, structures_only: bool = True) -> np.ndarray:
    """Bool mask (H, W) of the regions' polygons; by default only those that look like structures."""
    out = np.zeros(shape[:2], np.uint8)
    polygons = [r.polygon.reshape(-1, 1, 2) for r in regions if r.looks_like_structure or not structures_only]
    if polygons:
        cv2.fillPoly(out, polygons, 1)
    return out > 0
