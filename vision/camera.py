"""Per-camera configuration: where frames come from, its zones and its motion gate.

Cameras are described in YAML under a top-level `cameras:` list. Loading is strict, as
Frigate's is: a mistyped or unknown key is an error, and every error names the file, the
key path (`cameras.0.zones.1.polygon`) and the line, so it can be fixed without reading
the source. Credentials in a source URL are masked wherever a configuration is printed.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from vision.errors import VisionError
from vision.motion import MotionConfig
from vision.rules import RulesConfig
from vision.tamper import TamperConfig
from vision.tracking import TrackerConfig
from vision.zones import Schedule, Window, ZoneConfig

logger = logging.getLogger(__name__)

#: query parameters whose values are secrets (HTTP snapshot URLs of many cameras carry them)
_SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "pass", "token", "access_token", "key", "secret"})


class CameraConfigError(VisionError, ValueError):
    """A camera configuration file cannot be used; the message lists every problem."""

    def __init__(self, message: str, *, path: Path | None = None, problems: tuple[ConfigProblem, ...] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong in a configuration file."""

    key_path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.key_path} (line {self.line})" if self.line is not None else self.key_path
        return f"{where}: {self.message}"


def mask_credentials(url: str) -> str:
    """`url` with its password and secret query parameters replaced by `***`.

    rtsp://user:pass@host/stream becomes rtsp://user:***@host/stream; a path is returned
    as it is.
    """
    start, at = url.find("://"), url.rfind("@")
    if start > 0 and at > start and ":" in url[start + 3 : at]:
        # everything up to the last @ is user info, whatever a careless password holds (/ # ? @)
        url = f"{url[: start + 3]}{url[start + 3 : at].split(':', 1)[0]}:***{url[at:]}"
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FrameSize(_Strict):
    """A frame size in pixels."""

    width: int = Field(title="Width", ge=16, le=16384, description="Width in pixels.")
    height: int = Field(title="Height", ge=16, le=16384, description="Height in pixels.")


class Location(_Strict):
    """Where a camera is, for evidence and for officers who go there."""

    lat: float | None = Field(
        default=None, title="Latitude", ge=-90.0, le=90.0, description="WGS-84 latitude in degrees."
    )
    lon: float | None = Field(
        default=None, title="Longitude", ge=-180.0, le=180.0, description="WGS-84 longitude in degrees."
    )
    address: str | None = Field(
        default=None,
        title="Address",
        min_length=1,
        max_length=512,
        description="Street address or landmark, free text.",
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> Location:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class CameraConfig(_Strict):
    """One camera: its source, decode rate, zones, motion gate, place and detector."""

    id: str = Field(
        title="Id",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Stable identifier used in evidence and cases (letters, digits, _ . -).",
    )
    name: str = Field(title="Name", min_length=1, max_length=128, description="Name shown to officers.")
    source: str = Field(
        title="Source",
        min_length=1,
        max_length=2048,
        description="Stream URL (rtsp://, http://...) or path of a file or image folder; credentials in it are "
        "masked when the configuration is printed.",
    )
    evidence_source: str | None = Field(
        default=None,
        title="Evidence source",
        min_length=1,
        max_length=2048,
        description="The camera's full-resolution stream, for evidence clips and keyframes, where `source` is its "
        "low-resolution detect stream (a substream); frames are matched by capture time. Masked like `source`.",
    )
    fps: float = Field(
        default=5.0, title="Decode rate", gt=0.0, le=120.0, description="Frames per second decoded from the source."
    )
    detect_fps: float | None = Field(
        default=None,
        title="Detect rate",
        gt=0.0,
        le=120.0,
        description="Frames per second the engine (motion gate, detector, rules) looks at; every decoded frame "
        "still goes into the evidence clip. The decode rate when omitted; at most the decode rate.",
    )
    detect_size: FrameSize | None = Field(
        default=None,
        title="Detect size",
        description="Size frames are resized to for motion, detection and zones; the source's own size when "
        "omitted. Zone polygons are in these pixels.",
    )
    zones: tuple[ZoneConfig, ...] = Field(
        default=(),
        title="Zones",
        max_length=64,
        description="Zones watched in this camera's view; names must be unique.",
    )
    motion: MotionConfig = Field(default=MotionConfig(), title="Motion", description="Motion gate settings.")
    location: Location | None = Field(default=None, title="Location", description="Where the camera is.")
    tracker: TrackerConfig = Field(
        default_factory=TrackerConfig,
        title="Tracker",
        description="Tracker settings; lower its thresholds for a detector whose scores run low.",
    )
    rules: RulesConfig = Field(
        default_factory=RulesConfig, title="Rules", description="Parameters of the zone rules beyond each zone's own."
    )
    tamper: TamperConfig = Field(
        default_factory=TamperConfig,
        title="Tampering",
        description="Checks for a covered lens, lost focus or a camera moved off its scene, reported as health.",
    )
    detector: dict[str, Any] | None = Field(
        default=None,
        title="Detector",
        description="Detector configuration for this camera (validated by the detector registry); the "
        "deployment's default when omitted.",
    )

    @field_validator("detect_fps")
    @classmethod
    def _detect_within_decode(cls, detect_fps: float | None, info: ValidationInfo) -> float | None:
        fps = info.data.get("fps")
        if detect_fps is not None and isinstance(fps, float) and detect_fps > fps:
            raise ValueError(f"detect_fps {detect_fps:g} exceeds the decode rate fps {fps:g}")
        return detect_fps

    @field_validator("zones")
    @classmethod
    def _zones_fit(cls, zones: tuple[ZoneConfig, ...], info: ValidationInfo) -> tuple[ZoneConfig, ...]:
        seen: set[str] = set()
        for z in zones:
            if z.name in seen:
                raise ValueError(f"zone names must be unique, but {z.name!r} appears twice")
            seen.add(z.name)
        size = info.data.get("detect_size")
        if isinstance(size, FrameSize):
            for i, z in enumerate(zones):
                for polygon in (z.polygon, *z.exclusions):
                    for x, y in polygon:
                        if x > size.width or y > size.height:
                            raise ValueError(
                                f"zone {i} ({z.name!r}) has point [{x:g}, {y:g}] outside the "
                                f"{size.width}x{size.height} detect size"
                            )
        return zones

    @property
    def masked_source(self) -> str:
        """`source` with any password replaced by `***`, for logs and screens."""
        return mask_credentials(self.source)

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield key, (mask_credentials(value) if key in ("source", "evidence_source") and value else value)


class CamerasFile(_Strict):
    """A camera configuration file: a `cameras:` list."""

    cameras: tuple[CameraConfig, ...] = Field(
        title="Cameras", min_length=1, max_length=4096, description="The cameras, each with a unique id."
    )

    @field_validator("cameras")
    @classmethod
    def _unique_ids(cls, cameras: tuple[CameraConfig, ...]) -> tuple[CameraConfig, ...]:
        seen: set[str] = set()
        for c in cameras:
            if c.id in seen:
                raise ValueError(f"camera ids must be unique, but {c.id!r} appears twice")
            seen.add(c.id)
        return cameras


_CONFIG_MODELS: tuple[type[BaseModel], ...] = (
    CamerasFile,
    CameraConfig,
    FrameSize,
    Location,
    ZoneConfig,
    Schedule,
    Window,
    MotionConfig,
    TamperConfig,
)
M = TypeVar("M", bound=BaseModel)
_KNOWN_KEYS = sorted({name for model in _CONFIG_MODELS for name in model.model_fields})


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key that appears twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_camera_configs(path: str | Path) -> list[CameraConfig]:
    """Read and validate the cameras in the YAML file at `path`.

    Raises `CameraConfigError` naming the file, and for each problem its key path and line.
    """
    parsed = load_config(path, CamerasFile, what="camera configuration")
    logger.debug("loaded %d cameras from %s", len(parsed.cameras), path)
    return list(parsed.cameras)


def load_config(path: str | Path, model: type[M], *, what: str, extra_models: tuple[type[BaseModel], ...] = ()) -> M:
    """Read the YAML file at `path` strictly (no duplicate or unknown keys) into `model`.

    For configuration files that embed cameras (a deployment's run file); `extra_models`
    are the other models inside it, whose keys an unknown key is compared with.
    Raises `CameraConfigError` naming the file, and for each problem its key path and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CameraConfigError(f"{path}: cannot read {what}: {e}", path=path) from e
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: safe
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown line"
        problem = getattr(e, "problem", None) or str(e)
        raise CameraConfigError(f"{path}: malformed YAML at {where}: {problem}", path=path) from e
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise CameraConfigError(
            f"{path}: expected a mapping with a top-level 'cameras:' list, but got {got}", path=path
        )
    try:
        return model.model_validate(data)
    except ValidationError as e:
        models: tuple[type[BaseModel], ...] = (model, *extra_models)
        known = sorted({*_KNOWN_KEYS, *(name for m in models for name in m.model_fields)})
        problems = tuple(_problem(err, root, known) for err in e.errors())
        lines = "\n".join(f"  {p}" for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise CameraConfigError(f"{path}: invalid {what}, {count}:\n{lines}", path=path, problems=problems) from e


def _problem(error: Any, root: yaml.Node | None, known: list[str]) -> ConfigProblem:
    loc = tuple(error["loc"])
    key_path = ".".join(str(part) for part in loc) or "(top level)"
    kind = error["type"]
    if kind == "value_error" and "error" in error.get("ctx", {}):
        message = str(error["ctx"]["error"])
    elif kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(key, known, n=1)
        message = "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = error["msg"]
    node = _node_at(root, loc[:-1] if kind == "missing" else loc)
    line = node.start_mark.line + 1 if node is not None else None
    return ConfigProblem(key_path=key_path, message=message, line=line)


def _node_at(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node along `loc`, for its line number (a key's line for mappings)."""
    node, found = root, root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    node, found = value_node, key_node
                    break
            else:
                return found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = found = node.value[part]
        else:
            return found
    return found
