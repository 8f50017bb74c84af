"""Orthomosaics: a GeoTIFF of an earlier flight as the baseline a new drone image is compared with.

WebODM/ODM, DJI Terra, Pix4D and Metashape all write an orthomosaic as a GeoTIFF: an RGB
or RGBA raster on a map grid (usually UTM, in China often CGCS2000 Gauss-Krüger), tied to
its coordinate reference system by GeoTIFF tags, often with overviews (a COG) and an alpha
band or a GDAL nodata value where nothing was flown. `read_orthomosaic` reads those tags
(no pixels), `Orthomosaic.read` decodes one pyramid level, and `view_homography` +
`render_view` resample the orthomosaic into a drone image's own pixel grid, so that
the baseline "looks like" the new image and image-to-image change detection applies.

Conventions are `vision.geo`'s: pixel coordinates are continuous with (0, 0) the top-left
corner of the raster, and OpenCV's pixel centres lie at integers (subtract 0.5). Map
coordinates are the raster's CRS as x = easting or longitude, y = northing or latitude,
whatever the CRS's own axis order (pyproj's `always_xy`, as GeoTIFF stores them); lat/lon
are WGS84 degrees, which CGCS2000 (EPSG:4490) matches to within centimetres.

What is refused, with the file and the reason: not a TIFF, no GeoTIFF georeferencing, a
user-defined or unknown CRS, a raster tied by several tie points (GCPs: warp it onto a
grid first, e.g. `gdalwarp`), a raster whose bands are not grey, RGB or RGBA, samples that
are not 8 or 16 bit integers, and a level too large to hold in memory.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import tifffile
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError

from vision.errors import OrthoError

#: the largest level `Orthomosaic.read` decodes: 600 MP is 2.4 GB as RGBA
MAX_PIXELS = 600_000_000

_MODEL_PIXEL_SCALE, _MODEL_TIEPOINT, _MODEL_TRANSFORMATION, _GEO_KEYS = 33550, 33922, 34264, 34735
_GDAL_NODATA = 42113
_USER_DEFINED = 32767
_WGS84 = Geod(ellps="WGS84")


Affine = tuple[float, float, float, float, float, float]


@dataclass(frozen=True, slots=True)
class Orthomosaic:
    """A georeferenced raster's metadata: where its pixels lie, at each pyramid level.

    `transform` is GDAL's geotransform of the full-resolution level:
    x = t0 + col * t1 + row * t2, y = t3 + col * t4 + row * t5, for continuous pixel
    coordinates (corners). `levels` holds (width, height) of the full raster and of each
    overview; `gsd_m` is the ground size of a full-resolution pixel at the raster's centre.
    """

    path: Path
    crs: str
    transform: Affine
    levels: tuple[tuple[int, int], ...]
    gsd_m: float
    bands: int
    file_time: datetime | None = None

    @property
    def width(self) -> int:
        return self.levels[0][0]

    @property
    def height(self) -> int:
        return self.levels[0][1]

    def level_gsd_m(self, level: int) -> float:
        return self.gsd_m * self.width / self.levels[level][0]

    def level_for(self, gsd_m: float) -> int:
        """The coarsest level whose pixels are no larger than `gsd_m` (the finest when none is), or,
        when that level is too large to hold (`MAX_PIXELS`), the finest coarser one that is not."""
        fitting = [k for k in range(len(self.levels)) if self.level_gsd_m(k) <= gsd_m * 1.001]
        wanted = max(fitting) if fitting else 0
        for level in range(wanted, len(self.levels)):
            if self._holdable(level):
                return level
        width, height = self.levels[-1]
        raise OrthoError(
            f"{self.path}: even its coarsest level is {width}x{height} pixels, more than {MAX_PIXELS:,} to hold "
            "in memory; add overviews (gdaladdo)"
        )

    def _holdable(self, level: int) -> bool:
        width, height = self.levels[level]
        return width * height <= MAX_PIXELS

    def pixel_to_map(self, level: int = 0) -> np.ndarray:
        """The 3×3 affine from continuous pixel coordinates of `level` to map coordinates."""
        t = self.transform
        width, height = self.levels[level]
        sx, sy = self.width / width, self.height / height
        return np.array([[t[1] * sx, t[2] * sy, t[0]], [t[4] * sx, t[5] * sy, t[3]], [0.0, 0.0, 1.0]])

    def latlons_to_pixels(self, latlon: npt.ArrayLike, level: int = 0) -> np.ndarray:
        """(N, 2) lat/lon → (N, 2) continuous pixel coordinates of `level`."""
        points = np.asarray(latlon, np.float64).reshape(-1, 2)
        x, y = _from_wgs84(self.crs).transform(points[:, 1], points[:, 0])
        inverse = np.linalg.inv(self.pixel_to_map(level))
        xy1 = np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64), np.ones(len(points))])
        return (inverse @ xy1)[:2].T

    def pixels_to_latlons(self, xy: npt.ArrayLike, level: int = 0) -> np.ndarray:
        """(N, 2) continuous pixel coordinates of `level` → (N, 2) lat/lon."""
        points = np.asarray(xy, np.float64).reshape(-1, 2)
        mapped = self.pixel_to_map(level) @ np.vstack([points.T, np.ones(len(points))])
        lon, lat = _to_wgs84(self.crs).transform(mapped[0], mapped[1])
        return np.stack([np.asarray(lat, np.float64), np.asarray(lon, np.float64)], axis=1)

    def footprint_latlon(self) -> np.ndarray:
        """(4, 2) lat/lon of the raster's corners, clockwise from top-left."""
        w, h = self.width, self.height
        return self.pixels_to_latlons([(0, 0), (w, 0), (w, h), (0, h)])

    def read(self, level: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Decode `level`: (H, W, 3) uint8 BGR and the (H, W) bool mask of pixels that hold data."""
        if not 0 <= level < len(self.levels):
            raise OrthoError(f"{self.path}: level {level} does not exist (it has {len(self.levels)})")
        width, height = self.levels[level]
        if not self._holdable(level):
            raise OrthoError(
                f"{self.path}: level {level} is {width}x{height} pixels, more than {MAX_PIXELS:,} to hold in memory; "
                "add overviews (gdaladdo) or choose a coarser level"
            )
        try:
            with tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                page = series.levels[level].keyframe
                data = series.levels[level].asarray()
                nodata = page.tags.get(_GDAL_NODATA)
                separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
        except (OSError, ValueError, tifffile.TiffFileError, IndexError, KeyError) as e:
            raise OrthoError(f"{self.path}: level {level} cannot be decoded: {e}") from e
        if data.ndim == 3 and separate:
            data = np.moveaxis(data, 0, -1)
        if data.ndim == 2:
            data = data[:, :, None]
        if data.shape[:2] != (height, width):
            raise OrthoError(f"{self.path}: level {level} decoded as {data.shape}, not {height}x{width}")
        if data.dtype == np.uint16:
            samples = (data >> 8).astype(np.uint8)
        elif data.dtype == np.uint8:
            samples = data
        else:  # pragma: no cover - refused when the file is opened
            raise OrthoError(f"{self.path}: samples are {data.dtype}, not 8 or 16 bit")
        colour = samples[:, :, :3] if samples.shape[2] >= 3 else np.repeat(samples[:, :, :1], 3, axis=2)
        valid = np.ones((height, width), bool)
        if samples.shape[2] in (2, 4):  # grey + alpha, RGB + alpha
            valid &= samples[:, :, -1] > 0
        if nodata is not None:
            try:
                value = float(str(nodata.value).strip("\0 "))
            except ValueError:
                value = math.nan
            if math.isfinite(value):
                bands = data[:, :, : colour.shape[2] if data.shape[2] >= 3 else 1]
                valid &= ~np.all(bands == value, axis=2)
        bgr = np.ascontiguousarray(colour[:, :, ::-1])
        return bgr, valid


@functools.cache
def _from_wgs84(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


@functools.cache
def _to_wgs84(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def _geokeys(tags: Any, path: Path) -> dict[int, int]:
    tag = tags.get(_GEO_KEYS)
    if tag is None:
        raise OrthoError(f"{path} has no GeoTIFF georeferencing (no GeoKeyDirectory): export it as a GeoTIFF")
    values = [int(v) for v in tag.value]
    keys: dict[int, int] = {}
    for k in range(4, 4 + 4 * values[3], 4):
        key, location, _count, offset = values[k : k + 4]
        if location == 0:  # short values stand in the directory itself
            keys[key] = offset
    return keys


def _crs(keys: dict[int, int], path: Path) -> str:
    model = keys.get(1024)
    code = {1: keys.get(3072), 2: keys.get(2048)}.get(model or 0)
    if model not in (1, 2):
        raise OrthoError(f"{path}: GeoTIFF model type {model} is neither projected nor geographic")
    if code is None or code == _USER_DEFINED:
        raise OrthoError(
            f"{path}: its coordinate reference system is user-defined or missing; reproject it to an EPSG "
            "CRS (e.g. gdalwarp -t_srs EPSG:32651)"
        )
    try:
        CRS.from_epsg(code)
    except CRSError as e:
        raise OrthoError(f"{path}: EPSG:{code} is not a known coordinate reference system: {e}") from e
    return f"EPSG:{code}"


def _transform(tags: Any, keys: dict[int, int], path: Path) -> Affine:
    matrix = tags.get(_MODEL_TRANSFORMATION)
    if matrix is not None:
        m = [float(v) for v in matrix.value]
        t = (m[3], m[0], m[1], m[7], m[4], m[5])
    else:
        tie, scale = tags.get(_MODEL_TIEPOINT), tags.get(_MODEL_PIXEL_SCALE)
        if tie is None or scale is None:
            raise OrthoError(f"{path}: neither ModelTransformation nor ModelTiepoint + ModelPixelScale is given")
        tp = [float(v) for v in tie.value]
        if len(tp) > 6:
            raise OrthoError(
                f"{path} is tied to the map by {len(tp) // 6} tie points (GCPs), not a grid: warp it first (gdalwarp)"
            )
        sx, sy = float(scale.value[0]), float(scale.value[1])
        i, j, x, y = tp[0], tp[1], tp[3], tp[4]
        t = (x - i * sx, sx, 0.0, y + j * sy, 0.0, -sy)
    if keys.get(1025) == 2:  # RasterPixelIsPoint: the transform names pixel centres, as GDAL reads it
        t = (t[0] - 0.5 * (t[1] + t[2]), t[1], t[2], t[3] - 0.5 * (t[4] + t[5]), t[4], t[5])
    if not all(math.isfinite(v) for v in t) or abs(t[1] * t[5] - t[2] * t[4]) < 1e-300:
        raise OrthoError(f"{path}: its pixel-to-map transform {t} is degenerate")
    return t


def _ground_gsd_m(crs: str, t: Affine, width: int, height: int) -> float:
    """Metres on the ground of one pixel step along each axis at the centre, averaged."""
    cx, cy = width / 2, height / 2
    points = [(cx, cy), (cx + 1, cy), (cx, cy + 1)]
    x = [t[0] + c * t[1] + r * t[2] for c, r in points]
    y = [t[3] + c * t[4] + r * t[5] for c, r in points]
    lon, lat = _to_wgs84(crs).transform(x, y)
    _, _, across = _WGS84.inv(lon[0], lat[0], lon[1], lat[1])
    _, _, down = _WGS84.inv(lon[0], lat[0], lon[2], lat[2])
    return float(math.sqrt(abs(across * down)))


def _file_time(tags: Any) -> datetime | None:
    """TIFF DateTime: when the file was made (for ODM, the processing run), not when the flight was."""
    tag = tags.get(306)  # "YYYY:MM:DD HH:MM:SS"
    if tag is None:
        return None
    try:
        return datetime.strptime(str(tag.value).strip("\0 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def read_orthomosaic(path: str | os.PathLike[str]) -> Orthomosaic:
    """Read an orthomosaic's georeferencing and pyramid (no pixels). Raises `OrthoError`."""
    p = Path(path)
    if not p.is_file():
        raise OrthoError(f"{p} is not a file")
    try:
        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            page = series.keyframe
            tags = page.tags
            keys = _geokeys(tags, p)
            crs = _crs(keys, p)
            transform = _transform(tags, keys, p)
            shape = {ax: n for ax, n in zip(series.axes, series.shape, strict=True)}
            bands = shape.get("S", 1)
            levels = []
            for level in series.levels:
                dims = {ax: n for ax, n in zip(level.axes, level.shape, strict=True)}
                levels.append((int(dims["X"]), int(dims["Y"])))
            dtype = series.dtype
            photometric = page.photometric
            # JPEG tiles are stored as YCbCr (gdal_translate -co COMPRESS=JPEG -co PHOTOMETRIC=YCBCR, and
            # tifffile's writer); the decoder hands them back as RGB
            if photometric == tifffile.PHOTOMETRIC.YCBCR and page.compression == tifffile.COMPRESSION.JPEG:
                photometric = tifffile.PHOTOMETRIC.RGB
            file_time = _file_time(tags)
    except OrthoError:
        raise
    except (tifffile.TiffFileError, ValueError, KeyError, IndexError, struct.error) as e:
        raise OrthoError(f"{p} is not a readable TIFF: {e}") from e
    if set(shape) - {"Y", "X", "S"}:
        raise OrthoError(f"{p}: a raster with axes {series.axes} is not an orthomosaic (one image, Y, X, samples)")
    if dtype not in (np.uint8, np.uint16):
        raise OrthoError(f"{p}: samples are {dtype}, not 8 or 16 bit unsigned integers (a DSM is not an orthomosaic)")
    if bands not in (1, 2, 3, 4) or (bands >= 3 and photometric != tifffile.PHOTOMETRIC.RGB):
        kind = getattr(photometric, "name", photometric)
        raise OrthoError(f"{p}: {bands} bands with photometric {kind}: an orthomosaic is grey, RGB or RGBA")
    width, height = levels[0]
    return Orthomosaic(p, crs, transform, tuple(levels), _ground_gsd_m(crs, transform, width, height), bands, file_time)


def view_homography(
    ortho: Orthomosaic, level: int, image_size: tuple[int, int], pixels_to_latlon: Any, *, grid: int = 9
) -> np.ndarray:
    """The 3×3 homography from an image's OpenCV pixels to the orthomosaic's OpenCV pixels at `level`.

    `pixels_to_latlon` maps (N, 2) continuous image pixel coordinates to (N, 2) lat/lon
    (e.g. `GroundProjector.pixels_to_latlon`); it is sampled on a `grid` × `grid` lattice
    over the image and the homography fitted to it by least squares (a flat-ground
    projection is one exactly; the map projection bends it by far less than a pixel
    over one image). Raises `OrthoError` when the image's corners do not reach the ground.
    """
    width, height = image_size
    u, v = np.meshgrid(np.linspace(0, width, grid), np.linspace(0, height, grid))
    image = np.stack([u.ravel(), v.ravel()], axis=1)
    latlon = np.asarray(pixels_to_latlon(image), np.float64)
    keep = np.isfinite(latlon).all(axis=1)
    if keep.sum() < 4:
        raise OrthoError("the image sees too little ground to be placed on the orthomosaic")
    on_ortho = ortho.latlons_to_pixels(latlon[keep], level)
    h, _ = cv2.findHomography(image[keep] - 0.5, on_ortho - 0.5, 0)
    if h is None:
        raise OrthoError("no homography fits the image's ground points on the orthomosaic")
    return np.asarray(h, np.float64)


def render_view(
    pixels: np.ndarray, valid: np.ndarray, homography: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The orthomosaic resampled onto an image's grid (`size` = width, height), and where it holds data.

    `homography` maps the image's OpenCV pixels to the orthomosaic's (`view_homography`).
    The mask leaves out a one-pixel rim around missing data, where bilinear resampling
    blends data with what is not.
    """
    flags = cv2.WARP_INVERSE_MAP
    view = cv2.warpPerspective(pixels, homography, size, flags=cv2.INTER_LINEAR | flags, borderValue=0)
    covered = cv2.warpPerspective(valid.astype(np.uint8) * 255, homography, size, flags=cv2.INTER_NEAREST | flags)
    mask = cv2.erode(covered, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return view, mask


def write_geotiff(
    path: str | os.PathLike[str],
    bgr: np.ndarray,
    *,
    crs: str,
    transform: Affine,
    valid: np.ndarray | None = None,
    overviews: int = 0,
    file_time: datetime | None = None,
) -> Path:
    """Write an 8-bit RGB(A) GeoTIFF as ODM does: tiled, deflate, alpha where `valid` is given.

    The transform is written as ModelTiepoint + ModelPixelScale when it is north-up, and
    as ModelTransformation when it rotates. `overviews` halvings are written as
    sub-IFDs (a cloud-optimised layout). `crs` must be "EPSG:<code>".
    """
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ValueError(f"bgr must be (H, W, 3) uint8, but got {bgr.shape} {bgr.dtype}")
    code = int(crs.removeprefix("EPSG:"))
    geographic = CRS.from_epsg(code).is_geographic
    keys = [1, 1, 0, 3, 1024, 0, 1, 2 if geographic else 1, 1025, 0, 1, 1, 2048 if geographic else 3072, 0, 1, code]
    georef: list[Any]
    if transform[2] == 0.0 and transform[4] == 0.0:
        georef = [
            (_MODEL_PIXEL_SCALE, "d", 3, (transform[1], -transform[5], 0.0)),
            (_MODEL_TIEPOINT, "d", 6, (0.0, 0.0, 0.0, transform[0], transform[3], 0.0)),
        ]
    else:
        t = transform
        matrix = (t[1], t[2], 0.0, t[0], t[4], t[5], 0.0, t[3], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
        georef = [(_MODEL_TRANSFORMATION, "d", 16, matrix)]
    rgb = bgr[:, :, ::-1]
    if valid is not None:
        alpha = np.where(valid, 255, 0).astype(np.uint8)
        rgb = np.dstack([rgb * valid[:, :, None], alpha])
    options: dict[str, Any] = {"photometric": "rgb", "compression": "zlib", "tile": (256, 256)}
    if valid is not None:
        options["extrasamples"] = ["unassalpha"]
    first: dict[str, Any] = {"subifds": overviews, "extratags": [*georef, (_GEO_KEYS, "H", len(keys), keys)]}
    if file_time is not None:
        first["datetime"] = file_time.strftime("%Y:%m:%d %H:%M:%S")
    out = Path(path)
    with tifffile.TiffWriter(out) as tif:
        tif.write(rgb, **first, **options)
        level = rgb
        for _ in range(overviews):
            level = cv2.resize(level, (max(1, level.shape[1] // 2), max(1, level.shape[0] // 2)),
                               interpolation=cv2.INTER_AREA)  # fmt: skip
            tif.write(level, subfiletype=1, **options)
    return out
