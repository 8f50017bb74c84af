"""Geo-referencing of drone images: cameras, EXIF/XMP/SRT metadata, and ground projection.

A drone photo says where it was taken (EXIF GPS), how high above the take-off point
(DJI's XMP `RelativeAltitude`) and where the gimbal pointed (`GimbalPitchDegree`,
`GimbalYawDegree`); with the camera's focal length and sensor size that is enough to
map pixels to the ground and back, on the assumption that the ground is flat and level
with the take-off point. `read_drone_shot` reads a photo into a `DroneShot`,
`parse_srt` reads a DJI video's telemetry, and `GroundProjector` does the projection.

Conventions, used throughout:

- Pixel coordinates are continuous: (0, 0) is the top-left corner of the image, pixel
  (col, row) covers [col, col + 1) × [row, row + 1), and the principal point is the image
  centre (W / 2, H / 2). Detection boxes use the same convention. OpenCV puts pixel
  centres on integers, so subtract 0.5 before handing these coordinates to it.
- Angles are degrees. Gimbal pitch is 0 at the horizon and -90 straight down (nadir);
  yaw runs clockwise from true north; roll is positive with the right side down.
  At pitch -90 and yaw 0 the top of the image points north, as on DJI drones.
- ENU: metres east and north of a reference point (the drone, for a projector), on
  the plane of the take-off point. Lat/lon convert to ENU by a local mid-latitude
  equirectangular mapping on the WGS84 ellipsoid (`latlon_to_enu`). Against a true
  tangent-plane ENU at latitude 30° it agrees to within 5 mm at 300 m from the
  reference point, 5 cm at 1 km and 1.2 m at 5 km; at 60°, 1.3 cm, 14 cm and 3.4 m
  (tests/vision/test_geo.py checks it). A drone photo spans a few hundred metres, so
  within one shot the error stays far below the ground sample distance.
- Lens distortion is not modelled. Earth curvature is not either: the ground drops
  below the tangent plane by 8 mm at 300 m, 8 cm at 1 km.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import os
import re
import struct
import tempfile
import types
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, TiffImagePlugin, UnidentifiedImageError

from vision.errors import DroneMetadataError
from vision.types import GeoTag

logger = logging.getLogger(__name__)

WGS84_A = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
_E2 = WGS84_F * (2.0 - WGS84_F)
#: diagonal of a 36×24 mm frame, the reference for 35 mm-equivalent focal lengths
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


# --- lat/lon and local ENU -------------------------------------------------------------


def _meridian_radius(lat_rad: np.ndarray | float) -> np.ndarray | float:
    s = np.sin(lat_rad)
    return WGS84_A * (1.0 - _E2) / (1.0 - _E2 * s * s) ** 1.5


def _normal_radius(lat_rad: np.ndarray | float) -> np.ndarray | float:
    s = np.sin(lat_rad)
    return WGS84_A / np.sqrt(1.0 - _E2 * s * s)


def _as_pairs(name: str, values: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), but got shape {arr.shape}")
    return arr


def _check_origin(lat0: float, lon0: float) -> None:
    if not -89.0 <= lat0 <= 89.0:
        raise ValueError(f"lat0 must lie in [-89, 89] for a local ENU plane, but got {lat0}")
    if not -180.0 <= lon0 <= 180.0:
        raise ValueError(f"lon0 must lie in [-180, 180], but got {lon0}")


def latlon_to_enu_array(lat0: float, lon0: float, latlon: npt.ArrayLike) -> np.ndarray:
    """East and north in metres of each (lat, lon) row of `latlon`, around (lat0, lon0): (N, 2)."""
    _check_origin(lat0, lon0)
    ll = _as_pairs("latlon", latlon)
    lat, lon = ll[:, 0], ll[:, 1]
    phi0 = math.radians(lat0)
    north = _meridian_radius(phi0) * np.radians(lat - lat0)
    phim = np.radians((lat + lat0) / 2.0)
    dlon = (lon - lon0 + 180.0) % 360.0 - 180.0
    east = _normal_radius(phim) * np.cos(phim) * np.radians(dlon)
    return np.stack([east, north], axis=1)


def enu_to_latlon_array(lat0: float, lon0: float, en: npt.ArrayLike) -> np.ndarray:
    """(lat, lon) of each (east, north) row of `en`, in metres around (lat0, lon0): (N, 2).

    The exact inverse of `latlon_to_enu_array`; NaN rows stay NaN.
    """
    _check_origin(lat0, lon0)
    pts = _as_pairs("en", en)
    phi0 = math.radians(lat0)
    lat = lat0 + np.degrees(pts[:, 1] / _meridian_radius(phi0))
    phim = np.radians((lat + lat0) / 2.0)
    lon = lon0 + np.degrees(pts[:, 0] / (_normal_radius(phim) * np.cos(phim)))
    lon = (lon + 180.0) % 360.0 - 180.0
    return np.stack([lat, lon], axis=1)


def latlon_to_enu(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """(east, north) in metres of (lat, lon) around (lat0, lon0); see the module notes on accuracy."""
    east, north = latlon_to_enu_array(lat0, lon0, [[lat, lon]])[0]
    return float(east), float(north)


def enu_to_latlon(lat0: float, lon0: float, east: float, north: float) -> tuple[float, float]:
    """(lat, lon) of the point `east`, `north` metres from (lat0, lon0)."""
    lat, lon = enu_to_latlon_array(lat0, lon0, [[east, north]])[0]
    return float(lat), float(lon)


# --- cameras -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CameraIntrinsics:
    """A pinhole camera: focal length and sensor size in mm, and the image size in pixels.

    The principal point is the image centre. `fx` and `fy` are the focal length in
    pixels; they differ only when the pixels are not square.
    """

    focal_mm: float
    sensor_w_mm: float
    sensor_h_mm: float
    width_px: int
    height_px: int

    def __post_init__(self) -> None:
        for name in ("focal_mm", "sensor_w_mm", "sensor_h_mm"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of millimetres, but got {value!r}")
        for name in ("width_px", "height_px"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, but got {value!r}")
            object.__setattr__(self, name, int(value))

    @property
    def fx(self) -> float:
        return self.focal_mm * self.width_px / self.sensor_w_mm

    @property
    def fy(self) -> float:
        return self.focal_mm * self.height_px / self.sensor_h_mm

    @property
    def cx(self) -> float:
        return self.width_px / 2.0

    @property
    def cy(self) -> float:
        return self.height_px / 2.0

    @property
    def matrix(self) -> np.ndarray:
        """The 3×3 camera matrix K in this module's continuous pixel coordinates."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def for_image_size(self, width_px: int, height_px: int) -> CameraIntrinsics:
        """These intrinsics for the camera's images resized (and perhaps cropped) to width × height.

        Same aspect ratio: the whole sensor, more or fewer pixels. Another aspect ratio (a
        16:9 photo from a 3:2 sensor): the largest centred crop of the sensor with that
        aspect, as cameras do, so the pixels stay square.
        """
        if (width_px, height_px) == (self.width_px, self.height_px):
            return self
        if width_px < 1 or height_px < 1:
            raise ValueError(f"image size must be positive, but got {width_px}x{height_px}")
        mm_per_px = min(self.sensor_w_mm / width_px, self.sensor_h_mm / height_px)
        if abs(width_px / height_px - self.width_px / self.height_px) < 0.005 * width_px / height_px:
            sensor_w, sensor_h = self.sensor_w_mm, self.sensor_h_mm
        else:
            sensor_w, sensor_h = mm_per_px * width_px, mm_per_px * height_px
        return CameraIntrinsics(self.focal_mm, sensor_w, sensor_h, int(width_px), int(height_px))


def _cam(focal: float, sw: float, sh: float, w: int, h: int) -> CameraIntrinsics:
    return CameraIntrinsics(focal, sw, sh, w, h)


#: Main (visual) camera of common drones, keyed by the EXIF `Model` they write. Focal
#: lengths are the real ones in mm; a photo's own EXIF FocalLength wins where it has one
#: (zoom and interchangeable lenses).
DRONE_CAMERAS: Mapping[str, CameraIntrinsics] = types.MappingProxyType(
    {
        "FC6310": _cam(8.8, 13.2, 8.8, 5472, 3648),  # Phantom 4 Pro, 1"
        "FC6310S": _cam(8.8, 13.2, 8.8, 5472, 3648),  # Phantom 4 Pro V2.0
        "FC6310R": _cam(8.8, 13.2, 8.8, 5472, 3648),  # Phantom 4 RTK
        "FC330": _cam(3.61, 6.17, 4.55, 4000, 3000),  # Phantom 4, 1/2.3"
        "FC220": _cam(4.73, 6.17, 4.55, 4000, 3000),  # Mavic Pro, 1/2.3"
        "FC3170": _cam(4.5, 6.4, 4.8, 8000, 6000),  # Mavic Air 2, 1/2" 48 MP (12 MP photos: 4000x3000)
        "FC3411": _cam(8.38, 13.2, 8.8, 5472, 3648),  # Air 2S, 1"
        "L1D-20c": _cam(10.26, 13.2, 8.8, 5472, 3648),  # Mavic 2 Pro (Hasselblad), 1"
        "L2D-20c": _cam(12.29, 17.3, 13.0, 5280, 3956),  # Mavic 3 (Hasselblad), 4/3
        "FC7303": _cam(4.49, 6.17, 4.55, 4000, 3000),  # Mini 2, 1/2.3"
        "FC3582": _cam(6.72, 9.6, 7.2, 8064, 6048),  # Mini 3 Pro, 1/1.3" 48 MP (12 MP: 4032x3024)
        "M3E": _cam(12.29, 17.3, 13.0, 5280, 3956),  # Mavic 3 Enterprise wide camera, 4/3
        "M3T": _cam(4.4, 6.4, 4.8, 8000, 6000),  # Mavic 3 Thermal wide camera, 1/2" 48 MP
        "FC6510": _cam(8.8, 13.2, 8.8, 5472, 3648),  # Zenmuse X4S, 1"
        "FC6520": _cam(15.0, 17.3, 13.0, 5280, 3956),  # Zenmuse X5S, M4/3 (DJI 15 mm lens)
        "ZH20T": _cam(4.5, 6.17, 4.55, 4056, 3040),  # Zenmuse H20T wide camera, 1/2.3"
    }
)

#: Further lenses of multi-camera payloads, which write the same EXIF Model for each
_OTHER_LENSES: dict[str, tuple[CameraIntrinsics, ...]] = {
    "ZH20T": (
        _cam(6.83, 7.53, 5.64, 5184, 3888),  # zoom camera, 1/1.7" (6.83-119.9 mm)
        _cam(13.5, 7.68, 6.144, 640, 512),  # radiometric thermal, 12 µm pixels
    ),
    "M3T": (_cam(9.1, 7.68, 6.144, 640, 512),),  # thermal camera, 12 µm pixels
}
_MODEL_INDEX = {key.casefold(): key for key in DRONE_CAMERAS}


def camera_for_model(
    model: str, width_px: int, height_px: int, *, focal_mm: float | None = None
) -> CameraIntrinsics | None:
    """The `DRONE_CAMERAS` intrinsics for EXIF `model`, fitted to a width × height image.

    Multi-camera payloads pick the lens whose native size matches, else one of the same
    aspect ratio (the nearest in focal length when `focal_mm` is given). `focal_mm`, the
    photo's own EXIF FocalLength, replaces the table's. None for a model not in the table.
    """
    key = _MODEL_INDEX.get(model.strip().strip("\x00").casefold())
    if key is None:
        return None
    lenses = (DRONE_CAMERAS[key], *_OTHER_LENSES.get(key, ()))
    exact = [c for c in lenses if (c.width_px, c.height_px) == (width_px, height_px)]
    aspect = width_px / height_px
    same_aspect = [c for c in lenses if abs(c.width_px / c.height_px - aspect) < 0.005 * aspect]
    if exact:
        chosen = exact[0]
    elif same_aspect and focal_mm is not None:
        chosen = min(same_aspect, key=lambda c: abs(c.focal_mm - focal_mm))
    else:
        chosen = (same_aspect or [lenses[0]])[0]
    if focal_mm is not None:
        chosen = replace(chosen, focal_mm=float(focal_mm))
    return chosen.for_image_size(width_px, height_px)


# --- shots -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DroneShot:
    """Where a drone photo (or video frame) was taken and where its camera pointed.

    `rel_alt_m` is the height above the take-off point, which the projection takes as
    the ground; `abs_alt_m` the altitude above sea level, when known. `taken_at` is
    timezone-aware when the file said which zone its clock was in, naive otherwise (the
    drone's local clock).
    """

    lat: float
    lon: float
    abs_alt_m: float | None
    rel_alt_m: float
    gimbal_pitch_deg: float
    gimbal_yaw_deg: float
    flight_yaw_deg: float | None
    taken_at: datetime | None
    make: str
    model: str
    intrinsics: CameraIntrinsics
    gimbal_roll_deg: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"lat must lie in [-90, 90], but got {self.lat}")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"lon must lie in [-180, 180], but got {self.lon}")
        for name in ("rel_alt_m", "gimbal_pitch_deg", "gimbal_yaw_deg", "gimbal_roll_deg"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, but got {getattr(self, name)}")
        for name in ("abs_alt_m", "flight_yaw_deg"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be finite or None, but got {value}")
        if not isinstance(self.intrinsics, CameraIntrinsics):
            raise TypeError(f"intrinsics must be CameraIntrinsics, but got {type(self.intrinsics).__name__}")

    def to_geotag(self) -> GeoTag:
        """The `GeoTag` a `Frame` carries: position, height above take-off, gimbal yaw and pitch."""
        return GeoTag(
            lat=self.lat,
            lon=self.lon,
            altitude_m=self.rel_alt_m,
            yaw_deg=self.gimbal_yaw_deg,
            pitch_deg=self.gimbal_pitch_deg,
        )


# --- reading EXIF and XMP ----------------------------------------------------------------

_DJI_NS = "http://www.dji.com/drone-dji/1.0/"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_EXIF_HEADER = b"Exif\x00\x00"
_XMP_OPEN, _XMP_CLOSE = b"<x:xmpmeta", b"</x:xmpmeta>"
_XMP_SCAN_BYTES = 1 << 19  # the XMP packet sits in the first APP segments; read the rest only if not found

_GPS = ExifTags.GPS
_TAG_MAKE, _TAG_MODEL = 0x010F, 0x0110
_TAG_DATETIME_ORIGINAL, _TAG_OFFSET_TIME_ORIGINAL, _TAG_SUBSEC_ORIGINAL = 0x9003, 0x9011, 0x9291
_TAG_FOCAL, _TAG_FOCAL_35 = 0x920A, 0xA405
_TAG_FP_XRES, _TAG_FP_YRES, _TAG_FP_UNIT = 0xA20E, 0xA20F, 0xA210
_TAG_EXIF_WIDTH, _TAG_EXIF_HEIGHT = 0xA002, 0xA003
_FOCAL_PLANE_UNIT_MM = {1: 25.4, 2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # 1 is "no unit", read as inches (common)


def _number(value: Any) -> float | None:
    """A finite float from an EXIF value (rational, int, float, numeric text), else None."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        value = value[0] / value[1] if value[1] else math.nan
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip().strip("\x00").strip() if value is not None else ""


def _dms(value: Any) -> float | None:
    parts = value if isinstance(value, tuple) else (value,)
    degrees = 0.0
    for part, scale in zip(parts[:3], (1.0, 60.0, 3600.0), strict=False):
        number = _number(part)
        if number is None:
            return None
        degrees += number / scale
    return degrees if parts else None


def _find_xmp(path: Path) -> bytes | None:
    with path.open("rb") as f:
        data = f.read(_XMP_SCAN_BYTES)
        start = data.find(_XMP_OPEN)
        if start < 0 or data.find(_XMP_CLOSE, start) < 0:
            data += f.read()
    start = data.find(_XMP_OPEN)
    if start < 0:
        return None
    end = data.find(_XMP_CLOSE, start)
    if end < 0:
        return None
    return data[start : end + len(_XMP_CLOSE)]


def _dji_properties(packet: bytes, name: str) -> dict[str, str]:
    """DJI's `drone-dji:` properties in an XMP packet, written as attributes or as elements."""
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise DroneMetadataError(f"{name}: the XMP packet declares a DOCTYPE or entities; refusing to parse it")
    try:
        root = ET.fromstring(packet)
    except ET.ParseError as e:
        raise DroneMetadataError(f"{name}: the XMP packet is not well-formed XML ({e})") from e
    found: dict[str, str] = {}
    for element in root.iter():
        for key, value in element.attrib.items():
            if key.startswith("{") and "drone-dji" in key[1 : key.find("}")]:
                found[key[key.find("}") + 1 :]] = value.strip()
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag.startswith("{") and "drone-dji" in tag[1 : tag.find("}")] and element.text is not None:
            found[tag[tag.find("}") + 1 :]] = element.text.strip()
    return found


def _xmp_float(props: dict[str, str], key: str, name: str) -> float | None:
    raw = props.get(key)
    if raw is None or raw == "":
        return None
    number = _number(raw)
    if number is None:
        raise DroneMetadataError(f"{name}: drone-dji:{key} is {raw!r}, not a number")
    return number


def _xmp_required(props: dict[str, str], key: str, name: str, has_xmp: bool) -> float:
    number = _xmp_float(props, key, name)
    if number is None:
        where = "in the XMP packet" if has_xmp else "(the file has no XMP packet)"
        raise DroneMetadataError(f"{name}: missing drone-dji:{key} {where}")
    return number


def _taken_at(exif_ifd: Mapping[int, Any], name: str) -> datetime | None:
    raw = _text(exif_ifd.get(_TAG_DATETIME_ORIGINAL))
    if not raw or set(raw) <= set("0: "):  # blanks or zeros: "unknown" in the EXIF standard
        return None
    try:
        taken = datetime.strptime(raw, "%Y:%m:%d %H:%M:%S")
    except ValueError as e:
        raise DroneMetadataError(f"{name}: EXIF DateTimeOriginal is {raw!r}, not 'YYYY:MM:DD HH:MM:SS'") from e
    subsec = _text(exif_ifd.get(_TAG_SUBSEC_ORIGINAL))
    if subsec.isdigit():
        taken += timedelta(microseconds=round(int(subsec) / 10 ** len(subsec) * 1e6))
    offset = _text(exif_ifd.get(_TAG_OFFSET_TIME_ORIGINAL))
    if offset:
        match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", offset)
        if match is None:
            raise DroneMetadataError(f"{name}: EXIF OffsetTimeOriginal is {offset!r}, not '+HH:MM'")
        sign = 1 if match.group(1) == "+" else -1
        taken = taken.replace(tzinfo=timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))))
    return taken


def _intrinsics_from_exif(
    model: str, exif_ifd: Mapping[int, Any], width: int, height: int, name: str
) -> CameraIntrinsics:
    focal = _number(exif_ifd.get(_TAG_FOCAL))
    focal = focal if focal is not None and focal > 0 else None
    table = camera_for_model(model, width, height, focal_mm=focal)
    if table is not None:
        return table
    xres = _number(exif_ifd.get(_TAG_FP_XRES))
    if focal is not None and xres is not None and xres > 0:
        unit = _FOCAL_PLANE_UNIT_MM.get(int(_number(exif_ifd.get(_TAG_FP_UNIT)) or 2), 25.4)
        yres = _number(exif_ifd.get(_TAG_FP_YRES))
        yres = yres if yres is not None and yres > 0 else xres
        # the focal-plane resolution is per pixel of the full-size image EXIF describes
        full_w = int(_number(exif_ifd.get(_TAG_EXIF_WIDTH)) or width)
        full_h = int(_number(exif_ifd.get(_TAG_EXIF_HEIGHT)) or height)
        native = CameraIntrinsics(focal, full_w / xres * unit, full_h / yres * unit, full_w, full_h)
        return native.for_image_size(width, height)
    focal_35 = _number(exif_ifd.get(_TAG_FOCAL_35))
    if focal_35 is not None and focal_35 > 0:
        # the 35 mm equivalent scales the sensor diagonal to a full frame's (CIPA's definition)
        real = focal if focal is not None else focal_35
        diagonal = FULL_FRAME_DIAGONAL_MM * real / focal_35
        scale = diagonal / math.hypot(width, height)
        return CameraIntrinsics(real, width * scale, height * scale, width, height)
    raise DroneMetadataError(
        f"{name}: cannot tell the camera's field of view: EXIF Model {model!r} is not in DRONE_CAMERAS, and EXIF "
        "has neither FocalLength with FocalPlaneXResolution nor FocalLengthIn35mmFilm (pass intrinsics=...)"
    )


def read_drone_shot(path: str | os.PathLike[str], *, intrinsics: CameraIntrinsics | None = None) -> DroneShot:
    """Read a drone photo's position, height, gimbal angles, time and camera from its EXIF and XMP.

    Only the metadata is read; pixels are not decoded. GPS comes from EXIF (or DJI's XMP
    `GpsLatitude`/`GpsLongitude` when EXIF has none), the height above take-off and the
    gimbal angles from DJI's XMP, the camera from `DRONE_CAMERAS` by EXIF Model or else
    from EXIF focal data; `intrinsics` overrides that. A missing position, relative
    altitude or gimbal angle, or a file that is not an image, raises
    `DroneMetadataError` naming the file and the field.
    """
    p = Path(path)
    name = str(p)
    try:
        with Image.open(p) as image:
            width, height = image.size
            exif = image.getexif()
            gps = dict(exif.get_ifd(ExifTags.IFD.GPSInfo))
            exif_ifd = dict(exif.get_ifd(ExifTags.IFD.Exif))
            make, model = _text(exif.get(_TAG_MAKE)), _text(exif.get(_TAG_MODEL))
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, ImportError) as e:
        # ImportError: where ultralytics is loaded it patches Image.open to import a HEIF plugin for
        # files Pillow cannot identify, and that plugin is not installed
        raise DroneMetadataError(f"{name}: not a readable image with EXIF ({type(e).__name__}: {e})") from e

    packet = _find_xmp(p)
    props = _dji_properties(packet, name) if packet is not None else {}
    if packet is None:
        logger.debug("%s has no XMP packet", name)

    lat, lon = _dms(gps.get(_GPS.GPSLatitude)), _dms(gps.get(_GPS.GPSLongitude))
    if lat is not None and lon is not None:
        if _text(gps.get(_GPS.GPSLatitudeRef)).upper() == "S":
            lat = -lat
        if _text(gps.get(_GPS.GPSLongitudeRef)).upper() == "W":
            lon = -lon
    else:
        missing = "GPSLatitude" if lat is None else "GPSLongitude"
        lat = _xmp_float(props, "GpsLatitude", name)
        lon = _xmp_float(props, "GpsLongitude", name)
        if lon is None:  # some DJI firmware spells it so
            lon = _xmp_float(props, "GpsLongtitude", name)
        if lat is None or lon is None:
            raise DroneMetadataError(f"{name}: no GPS position: EXIF {missing} is missing or not a number")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise DroneMetadataError(f"{name}: GPS position ({lat}, {lon}) is out of range")
    if lat == 0.0 and lon == 0.0:
        raise DroneMetadataError(f"{name}: GPSLatitude and GPSLongitude are 0, 0: the drone had no GPS fix")

    rel_alt = _xmp_required(props, "RelativeAltitude", name, packet is not None)
    pitch = _xmp_required(props, "GimbalPitchDegree", name, packet is not None)
    yaw = _xmp_required(props, "GimbalYawDegree", name, packet is not None)
    roll = _xmp_float(props, "GimbalRollDegree", name)
    flight_yaw = _xmp_float(props, "FlightYawDegree", name)
    abs_alt = _xmp_float(props, "AbsoluteAltitude", name)
    if abs_alt is None:
        abs_alt = _number(gps.get(_GPS.GPSAltitude))
        if abs_alt is not None and _number(gps.get(_GPS.GPSAltitudeRef)) == 1:
            abs_alt = -abs_alt

    if intrinsics is None:
        intrinsics = _intrinsics_from_exif(model, exif_ifd, width, height, name)
    elif (intrinsics.width_px, intrinsics.height_px) != (width, height):
        raise ValueError(
            f"intrinsics describe {intrinsics.width_px}x{intrinsics.height_px} images but {name} is "
            f"{width}x{height}; pass intrinsics.for_image_size({width}, {height})"
        )
    return DroneShot(
        lat=lat,
        lon=lon,
        abs_alt_m=abs_alt,
        rel_alt_m=rel_alt,
        gimbal_pitch_deg=pitch,
        gimbal_yaw_deg=yaw,
        flight_yaw_deg=flight_yaw,
        taken_at=_taken_at(exif_ifd, name),
        make=make,
        model=model,
        intrinsics=intrinsics,
        gimbal_roll_deg=roll if roll is not None else 0.0,
    )


# --- writing EXIF and XMP ----------------------------------------------------------------


def _rational(value: float, denominator: int) -> TiffImagePlugin.IFDRational:
    return TiffImagePlugin.IFDRational(round(value * denominator), denominator)


def _dms_rationals(degrees: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    degrees = abs(degrees)
    d = math.floor(degrees)
    minutes = (degrees - d) * 60.0
    m = math.floor(minutes)
    seconds = (minutes - m) * 60.0
    return (_rational(d, 1), _rational(m, 1), _rational(seconds, 1_000_000))


def _exif_bytes(shot: DroneShot) -> bytes:
    exif = Image.Exif()
    exif[_TAG_MAKE] = shot.make
    exif[_TAG_MODEL] = shot.model
    k = shot.intrinsics
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[_TAG_FOCAL] = _rational(k.focal_mm, 10_000)
    diagonal = math.hypot(k.sensor_w_mm, k.sensor_h_mm)
    ifd[_TAG_FOCAL_35] = round(k.focal_mm * FULL_FRAME_DIAGONAL_MM / diagonal)
    ifd[_TAG_FP_XRES] = _rational(k.width_px / k.sensor_w_mm * 10.0, 10_000)  # pixels per cm
    ifd[_TAG_FP_YRES] = _rational(k.height_px / k.sensor_h_mm * 10.0, 10_000)
    ifd[_TAG_FP_UNIT] = 3
    ifd[_TAG_EXIF_WIDTH] = k.width_px
    ifd[_TAG_EXIF_HEIGHT] = k.height_px
    if shot.taken_at is not None:
        ifd[_TAG_DATETIME_ORIGINAL] = shot.taken_at.strftime("%Y:%m:%d %H:%M:%S")
        ifd[_TAG_SUBSEC_ORIGINAL] = f"{shot.taken_at.microsecond:06d}"
        offset = shot.taken_at.utcoffset()
        if offset is not None:
            minutes = int(offset.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            ifd[_TAG_OFFSET_TIME_ORIGINAL] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[_GPS.GPSVersionID] = b"\x02\x03\x00\x00"
    gps[_GPS.GPSLatitudeRef] = "N" if shot.lat >= 0 else "S"
    gps[_GPS.GPSLatitude] = _dms_rationals(shot.lat)
    gps[_GPS.GPSLongitudeRef] = "E" if shot.lon >= 0 else "W"
    gps[_GPS.GPSLongitude] = _dms_rationals(shot.lon)
    if shot.abs_alt_m is not None:
        gps[_GPS.GPSAltitudeRef] = 0 if shot.abs_alt_m >= 0 else 1
        gps[_GPS.GPSAltitude] = _rational(abs(shot.abs_alt_m), 1000)
    return exif.tobytes()


def _xmp_packet(shot: DroneShot) -> bytes:
    attrs = {
        "GpsLatitude": f"{shot.lat:.9f}",
        "GpsLongitude": f"{shot.lon:.9f}",
        "RelativeAltitude": f"{shot.rel_alt_m:+.6f}",
        "GimbalRollDegree": f"{shot.gimbal_roll_deg:+.6f}",
        "GimbalYawDegree": f"{shot.gimbal_yaw_deg:+.6f}",
        "GimbalPitchDegree": f"{shot.gimbal_pitch_deg:+.6f}",
    }
    if shot.abs_alt_m is not None:
        attrs["AbsoluteAltitude"] = f"{shot.abs_alt_m:+.6f}"
    if shot.flight_yaw_deg is not None:
        attrs["FlightYawDegree"] = f"{shot.flight_yaw_deg:+.6f}"
    body = "\n".join(f'    drone-dji:{key}="{value}"' for key, value in attrs.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="DJI Meta Data"\n'
        f'    xmlns:drone-dji="{_DJI_NS}"\n'
        f"{body}/>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise ValueError(f"JPEG segment payload of {len(payload)} bytes exceeds the 65533-byte limit")
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def write_drone_metadata(jpeg: bytes | str | os.PathLike[str], shot: DroneShot) -> bytes:
    """JPEG bytes of `jpeg` carrying `shot` as EXIF (GPS, camera, time) and DJI XMP.

    Earlier EXIF and XMP segments are replaced; the image data is copied untouched (no
    re-encoding). Given a path, the file is also rewritten in place (atomically).
    `read_drone_shot` reads back what this writes.
    """
    if isinstance(jpeg, bytes):
        data, target = jpeg, None
    else:
        target = Path(jpeg)
        data = target.read_bytes()
    where = str(target) if target is not None else "jpeg"
    if data[:2] != b"\xff\xd8":
        raise ValueError(f"{where} is not a JPEG: it does not start with the SOI marker FFD8")
    kept: list[bytes] = []
    pos = 2
    insert_at = 0  # after APP0 (JFIF), where EXIF belongs
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise ValueError(f"{where} is not a well-formed JPEG: no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            rest = data[pos:]
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos : pos + 2 + length]
        if len(segment) != 2 + length:
            raise ValueError(f"{where} is not a well-formed JPEG: segment at byte {pos} runs past the end")
        payload = segment[4:]
        is_old = marker == 0xE1 and (payload.startswith(_EXIF_HEADER) or payload.startswith(_XMP_HEADER))
        if not is_old:
            kept.append(segment)
            if marker == 0xE0 and insert_at == len(kept) - 1:
                insert_at = len(kept)
        pos += 2 + length
    new = [_segment(0xE1, _exif_bytes(shot)), _segment(0xE1, _XMP_HEADER + _xmp_packet(shot))]
    out = b"\xff\xd8" + b"".join(kept[:insert_at] + new + kept[insert_at:]) + rest
    if target is not None:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(out)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return out


def encode_drone_jpeg(image: np.ndarray, shot: DroneShot, *, quality: int = 92) -> bytes:
    """Encode a BGR image as JPEG carrying `shot`'s EXIF and DJI XMP (for synthetic flights and tests)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an (H, W, 3) uint8 BGR array, but got {got}")
    if (image.shape[1], image.shape[0]) != (shot.intrinsics.width_px, shot.intrinsics.height_px):
        raise ValueError(
            f"image is {image.shape[1]}x{image.shape[0]} but shot.intrinsics describe "
            f"{shot.intrinsics.width_px}x{shot.intrinsics.height_px}"
        )
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must lie in [1, 100], but got {quality}")
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise ValueError("OpenCV could not encode the image as JPEG")
    return write_drone_metadata(buf.tobytes(), shot)


# --- DJI SRT telemetry ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SrtRecord:
    """One subtitle of a DJI video's telemetry: a time span of the video and where the drone was.

    `frame` is DJI's FrameCnt (counting from 1) where the file has it. Heights and gimbal
    angles are None where the format does not carry them: the older format has no
    gimbal angles, and its `GPS(lon, lat, alt)` altitude is the GPS's own.
    """

    index: int
    start_s: float
    end_s: float
    lat: float
    lon: float
    rel_alt_m: float | None
    abs_alt_m: float | None
    frame: int | None = None
    taken_at: datetime | None = None
    gimbal_yaw_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    gimbal_roll_deg: float | None = None

    def to_shot(
        self,
        intrinsics: CameraIntrinsics,
        *,
        make: str = "DJI",
        model: str = "",
        gimbal_pitch_deg: float | None = None,
        gimbal_yaw_deg: float | None = None,
        flight_yaw_deg: float | None = None,
    ) -> DroneShot:
        """A `DroneShot` for this record; gimbal angles given here override the record's.

        Raises `DroneMetadataError` when neither the record nor the arguments give the
        relative altitude or a gimbal angle.
        """
        pitch = gimbal_pitch_deg if gimbal_pitch_deg is not None else self.gimbal_pitch_deg
        yaw = gimbal_yaw_deg if gimbal_yaw_deg is not None else self.gimbal_yaw_deg
        where = f"SRT subtitle {self.index}"
        if self.rel_alt_m is None:
            raise DroneMetadataError(f"{where}: no rel_alt (height above take-off); this format does not carry it")
        if pitch is None:
            raise DroneMetadataError(f"{where}: no gb_pitch in the telemetry; pass gimbal_pitch_deg")
        if yaw is None:
            raise DroneMetadataError(f"{where}: no gb_yaw in the telemetry; pass gimbal_yaw_deg")
        return DroneShot(
            lat=self.lat,
            lon=self.lon,
            abs_alt_m=self.abs_alt_m,
            rel_alt_m=self.rel_alt_m,
            gimbal_pitch_deg=pitch,
            gimbal_yaw_deg=yaw,
            flight_yaw_deg=flight_yaw_deg,
            taken_at=self.taken_at,
            make=make,
            model=model,
            intrinsics=intrinsics,
            gimbal_roll_deg=self.gimbal_roll_deg or 0.0,
        )


_SRT_TIME = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*$")
_SRT_TAG = re.compile(r"<[^>]*>")
_SRT_BRACKET = re.compile(r"\[([^\]]*)\]")
_SRT_PAIR = re.compile(r"([A-Za-z_]+)\s*:\s*([^\s\],]+)")
_SRT_FRAME = re.compile(r"FrameCnt\s*:\s*(\d+)")
_SRT_DATETIME = re.compile(r"(\d{4})[-.](\d{2})[-.](\d{2})\s+(\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,6}))?")
_SRT_GPS = re.compile(r"\bGPS\s*\(([^)]*)\)")
_SRT_BARO = re.compile(r"\bBAROMETER\s*:\s*(\S+)")
_SRT_HEIGHT = re.compile(r"(?<![A-Za-z])H\s+([-+]?[\d.]+)\s*m\b")
#: bracket keys of the newer format, and the record field each fills
_SRT_KEYS = {
    "latitude": "lat",
    "longitude": "lon",
    "longtitude": "lon",  # a spelling some DJI firmware writes
    "rel_alt": "rel_alt_m",
    "abs_alt": "abs_alt_m",
    "altitude": "abs_alt_m",
    "gb_yaw": "gimbal_yaw_deg",
    "gb_pitch": "gimbal_pitch_deg",
    "gb_roll": "gimbal_roll_deg",
}


def _srt_seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


def _srt_number(value: str, source: str, line: int, field: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise DroneMetadataError(f"{source} line {line}: {field} is {value!r}, not a number")
    return number


def _parse_srt_payload(lines: list[tuple[int, str]], source: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    where: dict[str, int] = {}
    for number, raw in lines:
        text = _SRT_TAG.sub(" ", raw)
        for content in _SRT_BRACKET.findall(text):
            for key, value in _SRT_PAIR.findall(content):
                target = _SRT_KEYS.get(key.lower())
                if target is not None and target not in fields:
                    fields[target] = _srt_number(value, source, number, key)
                    where[target] = number
        if (m := _SRT_FRAME.search(text)) is not None:
            fields.setdefault("frame", int(m.group(1)))
        if "taken_at" not in fields and (m := _SRT_DATETIME.search(text)) is not None:
            y, mo, d, hh, mm, ss, frac = m.groups()
            try:
                fields["taken_at"] = datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss)) + timedelta(
                    microseconds=round(int(frac) / 10 ** len(frac) * 1e6) if frac else 0
                )
            except ValueError as e:
                raise DroneMetadataError(f"{source} line {number}: {m.group(0)!r} is not a valid date ({e})") from e
        if "lat" not in fields and (m := _SRT_GPS.search(text)) is not None:
            parts = [p.strip() for p in m.group(1).split(",")]
            if len(parts) not in (2, 3):
                raise DroneMetadataError(f"{source} line {number}: expected GPS(lon, lat, alt), got {m.group(0)!r}")
            fields["lon"] = _srt_number(parts[0], source, number, "GPS longitude")
            fields["lat"] = _srt_number(parts[1], source, number, "GPS latitude")
            where["lat"] = where["lon"] = number
            if len(parts) == 3:
                fields.setdefault("abs_alt_m", _srt_number(parts[2], source, number, "GPS altitude"))
        for pattern, field in ((_SRT_BARO, "BAROMETER"), (_SRT_HEIGHT, "H")):
            if "rel_alt_m" not in fields and (m := pattern.search(text)) is not None:
                fields["rel_alt_m"] = _srt_number(m.group(1).rstrip("m"), source, number, field)
    fields["_where"] = where
    return fields


def parse_srt(text: str, *, source: str = "<srt>") -> list[SrtRecord]:
    """Parse a DJI video's SRT telemetry into records, in the order of the file.

    Reads the newer format (`FrameCnt`, `[latitude: ..] [longitude: ..] [rel_alt: ..
    abs_alt: ..]`, and `[gb_yaw: .. gb_pitch: ..]` where the drone writes them) and the
    older one (`GPS(lon, lat, alt)`, `HOME(lon, lat)`, `BAROMETER: ..` or `H 50.0m`).
    Subtitles whose position is 0, 0 (no GPS fix yet) are left out, with a warning. A line
    that does not fit raises `DroneMetadataError` naming `source` and the line number.
    """
    lines = text.lstrip("\ufeff").splitlines()
    records: list[SrtRecord] = []
    no_fix = 0
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        index_line = i + 1
        if not lines[i].strip().isdigit():
            raise DroneMetadataError(f"{source} line {index_line}: expected a subtitle number, got {lines[i]!r}")
        index = int(lines[i].strip())
        i += 1
        time_match = _SRT_TIME.match(lines[i]) if i < len(lines) else None
        if time_match is None:
            got = lines[i] if i < len(lines) else "the end of the file"
            raise DroneMetadataError(
                f"{source} line {i + 1}: expected a time range 'HH:MM:SS,mmm --> HH:MM:SS,mmm', got {got!r}"
            )
        start = _srt_seconds(*time_match.groups()[:4])
        end = _srt_seconds(*time_match.groups()[4:])
        if end < start:
            raise DroneMetadataError(f"{source} line {i + 1}: the time range ends before it starts")
        if records and start < records[-1].start_s:
            raise DroneMetadataError(f"{source} line {i + 1}: subtitle {index} starts before the one before it")
        time_line = i + 1
        i += 1
        payload: list[tuple[int, str]] = []
        while i < len(lines) and lines[i].strip():
            payload.append((i + 1, lines[i]))
            i += 1
        fields = _parse_srt_payload(payload, source)
        where = fields.pop("_where")
        if "lat" not in fields or "lon" not in fields:
            raise DroneMetadataError(
                f"{source} line {payload[0][0] if payload else time_line}: subtitle {index} has no position "
                "(expected [latitude: ..] [longitude: ..] or GPS(lon, lat, alt))"
            )
        if not -90.0 <= fields["lat"] <= 90.0:
            raise DroneMetadataError(f"{source} line {where['lat']}: latitude {fields['lat']} is out of range")
        if not -180.0 <= fields["lon"] <= 180.0:
            raise DroneMetadataError(f"{source} line {where['lon']}: longitude {fields['lon']} is out of range")
        if fields["lat"] == 0.0 and fields["lon"] == 0.0:
            no_fix += 1
            continue
        records.append(
            SrtRecord(
                index=index,
                start_s=start,
                end_s=end,
                lat=fields["lat"],
                lon=fields["lon"],
                rel_alt_m=fields.get("rel_alt_m"),
                abs_alt_m=fields.get("abs_alt_m"),
                frame=fields.get("frame"),
                taken_at=fields.get("taken_at"),
                gimbal_yaw_deg=fields.get("gimbal_yaw_deg"),
                gimbal_pitch_deg=fields.get("gimbal_pitch_deg"),
                gimbal_roll_deg=fields.get("gimbal_roll_deg"),
            )
        )
    if no_fix:
        logger.warning("%s: left out %d subtitles without a GPS fix (position 0, 0)", source, no_fix)
    return records


def shot_at(records: Sequence[SrtRecord], t: float, *, tolerance_s: float = 0.05) -> SrtRecord | None:
    """The record whose time span holds video time `t` (seconds), for a frame's telemetry.

    Between or beyond records, the nearest one within `tolerance_s`; else None (no
    telemetry for that frame, e.g. before the GPS fix). `records` in `parse_srt` order.
    """
    if tolerance_s < 0:
        raise ValueError(f"tolerance_s must be >= 0, but got {tolerance_s}")
    if not records:
        return None
    k = bisect.bisect_right(records, t, key=lambda r: r.start_s) - 1
    if k >= 0 and records[k].start_s <= t < records[k].end_s:
        return records[k]
    candidates = [r for r in (records[k] if k >= 0 else None, records[k + 1] if k + 1 < len(records) else None) if r]
    gaps = [(max(r.start_s - t, t - r.end_s, 0.0), r) for r in candidates]
    gap, nearest = min(gaps, key=lambda g: g[0])
    return nearest if gap <= tolerance_s else None


# --- ground projection ---------------------------------------------------------------------


def camera_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """The 3×3 rotation taking camera axes (x right, y down, z forward) to ENU for gimbal angles.

    Yaw, then pitch, then roll (DJI's order): a camera at yaw 0, pitch 0 looks north with
    the image's top up; pitch -90 then turns it straight down with the top to the north.
    """
    psi, theta, phi = math.radians(yaw_deg), math.radians(pitch_deg), math.radians(roll_deg)
    level = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # x→east, y→down, z→north
    c, s = math.cos(phi), math.sin(phi)
    roll = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # about the forward (north) axis
    c, s = math.cos(theta), math.sin(theta)
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])  # about the east axis
    c, s = math.cos(-psi), math.sin(-psi)
    yaw = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # about up, clockwise seen from above
    return yaw @ pitch @ roll @ level


class GroundProjector:
    """Maps pixels of one shot to the ground and back, for flat ground at the take-off height.

    Works in the ENU plane around the drone: the camera sits at (0, 0, 0) and the ground
    is the plane z = -`rel_alt_m`. Pixels whose ray meets the ground nowhere (at or above
    the horizon) map to None (scalar methods) or NaN rows (array methods); ground points
    behind the camera map to None or NaN likewise. Points outside the image are not an
    error: they map to coordinates outside [0, W) × [0, H).
    """

    def __init__(self, shot: DroneShot) -> None:
        if not shot.rel_alt_m > 0.0:
            raise ValueError(
                f"shot.rel_alt_m must be > 0 to project onto the ground below the drone, but got {shot.rel_alt_m}"
            )
        self.shot = shot
        self.height_m = float(shot.rel_alt_m)
        #: camera axes → ENU
        self.rotation = camera_rotation(shot.gimbal_yaw_deg, shot.gimbal_pitch_deg, shot.gimbal_roll_deg)
        k = shot.intrinsics
        self._k = k.matrix
        self._ray = self.rotation @ np.linalg.inv(self._k)  # homogeneous pixel → ENU ray direction
        self._to_cam = self._k @ self.rotation.T  # ENU point → homogeneous pixel

    # -- homographies
    def ground_homography(self) -> np.ndarray:
        """3×3 H taking homogeneous pixels (x, y, 1) to ground (east, north, w); valid where w < 0.

        With `enu_homography` it lets `cv2.warpPerspective` orthorectify a shot onto an ENU
        grid (mind OpenCV's half-pixel shift, see the module notes).
        """
        return np.diag([-self.height_m, -self.height_m, 1.0]) @ self._ray

    def enu_homography(self) -> np.ndarray:
        """3×3 H taking ground points (east, north, 1) to homogeneous pixels (x·w, y·w, w); valid where w > 0."""
        return self._to_cam @ np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -self.height_m]])

    # -- arrays
    def pixels_to_enu(self, xy: npt.ArrayLike) -> np.ndarray:
        """Ground (east, north) in metres around the drone for each (x, y) pixel row: (N, 2), NaN off the ground."""
        pts = _as_pairs("xy", xy)
        rays = pts @ self._ray[:, :2].T + self._ray[:, 2]
        dz = rays[:, 2]
        hits = dz < -1e-12
        scale = np.where(hits, -self.height_m / np.where(hits, dz, -1.0), np.nan)
        return rays[:, :2] * scale[:, None]

    def pixels_to_latlon(self, xy: npt.ArrayLike) -> np.ndarray:
        """(lat, lon) on the ground for each (x, y) pixel row: (N, 2), NaN where the ray misses the ground."""
        return enu_to_latlon_array(self.shot.lat, self.shot.lon, self.pixels_to_enu(xy))

    def enu_to_pixels(self, en: npt.ArrayLike) -> np.ndarray:
        """Pixel (x, y) of each ground (east, north) row: (N, 2), NaN for points behind the camera."""
        pts = _as_pairs("en", en)
        cam = pts @ self._to_cam[:, :2].T - self.height_m * self._to_cam[:, 2]
        w = cam[:, 2]
        front = w > 1e-12
        return np.where(front[:, None], cam[:, :2] / np.where(front, w, 1.0)[:, None], np.nan)

    def latlons_to_pixels(self, latlon: npt.ArrayLike) -> np.ndarray:
        """Pixel (x, y) of each ground (lat, lon) row: (N, 2), NaN for points behind the camera."""
        return self.enu_to_pixels(latlon_to_enu_array(self.shot.lat, self.shot.lon, latlon))

    # -- scalars
    def pixel_to_enu(self, x: float, y: float) -> tuple[float, float] | None:
        """Ground (east, north) of pixel (x, y), or None when its ray is at or above the horizon."""
        east, north = self.pixels_to_enu([[x, y]])[0]
        return None if math.isnan(east) else (float(east), float(north))

    def pixel_to_latlon(self, x: float, y: float) -> tuple[float, float] | None:
        """Ground (lat, lon) of pixel (x, y), or None when its ray is at or above the horizon."""
        lat, lon = self.pixels_to_latlon([[x, y]])[0]
        return None if math.isnan(lat) else (float(lat), float(lon))

    def enu_to_pixel(self, east: float, north: float) -> tuple[float, float] | None:
        """Pixel (x, y) of the ground point `east`, `north` of the drone, or None if it is behind the camera."""
        x, y = self.enu_to_pixels([[east, north]])[0]
        return None if math.isnan(x) else (float(x), float(y))

    def latlon_to_pixel(self, lat: float, lon: float) -> tuple[float, float] | None:
        """Pixel (x, y) of the ground point (lat, lon), or None if it is behind the camera."""
        x, y = self.latlons_to_pixels([[lat, lon]])[0]
        return None if math.isnan(x) else (float(x), float(y))

    # -- what a detection means on the ground
    @property
    def gsd_m(self) -> float | None:
        """Ground sample distance at the image centre in metres per pixel (None if the centre sees sky).

        The square root of the ground area one centre pixel covers: height / focal length
        in pixels for a nadir shot; larger, and anisotropic, for an oblique one.
        """
        k = self.shot.intrinsics
        cx, cy = k.cx, k.cy
        g = self.pixels_to_enu([[cx - 0.5, cy], [cx + 0.5, cy], [cx, cy - 0.5], [cx, cy + 0.5]])
        if np.isnan(g).any():
            return None
        across = float(np.hypot(*(g[1] - g[0])))
        along = float(np.hypot(*(g[3] - g[2])))
        return math.sqrt(across * along)

    def box_size_m(self, x1: float, y1: float, x2: float, y2: float) -> tuple[float, float] | None:
        """Ground (width, height) in metres of a pixel box, through its middle; None if it reaches the sky.

        Width is measured between the middles of the left and right sides, height between
        the middles of the top and bottom: exact for a nadir shot, a fair estimate for
        objects lying on the ground in an oblique one.
        """
        xc, yc = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        g = self.pixels_to_enu([[x1, yc], [x2, yc], [xc, y1], [xc, y2]])
        if np.isnan(g).any():
            return None
        return float(np.hypot(*(g[1] - g[0]))), float(np.hypot(*(g[3] - g[2])))

    def box_latlon(self, x1: float, y1: float, x2: float, y2: float) -> tuple[float, float] | None:
        """Ground (lat, lon) of a pixel box's centre, or None if the centre sees sky."""
        return self.pixel_to_latlon((x1 + x2) / 2.0, (y1 + y2) / 2.0)

    def footprint_enu(self, max_range_m: float = 500.0) -> np.ndarray:
        """The ground under the image's corners (top-left, top-right, bottom-right, bottom-left): (4, 2) ENU.

        A corner whose ray misses the ground, or meets it farther than `max_range_m` from
        the point below the drone, is clipped to `max_range_m` in the ray's direction, so
        an oblique shot that sees the horizon still has a bounded footprint.
        """
        if not max_range_m > 0:
            raise ValueError(f"max_range_m must be > 0, but got {max_range_m}")
        k = self.shot.intrinsics
        corners = np.array([[0.0, 0.0], [k.width_px, 0.0], [k.width_px, k.height_px], [0.0, k.height_px]])
        ground = self.pixels_to_enu(corners)
        rays = corners @ self._ray[:, :2].T + self._ray[:, 2]
        out = np.empty((4, 2))
        for i in range(4):
            if not np.isnan(ground[i, 0]) and math.hypot(*ground[i]) <= max_range_m:
                out[i] = ground[i]
                continue
            horizontal = rays[i, :2]
            norm = math.hypot(*horizontal)
            out[i] = horizontal / norm * max_range_m if norm > 1e-12 else 0.0
        return out

    def footprint_latlon(self, max_range_m: float = 500.0) -> np.ndarray:
        """`footprint_enu` as (lat, lon) rows: the image corners on the ground, clockwise from top-left."""
        return enu_to_latlon_array(self.shot.lat, self.shot.lon, self.footprint_enu(max_range_m))
