"""ONNX Runtime backends: ultralytics exports and the Yolo-FastestV2 COCO detector.

ONNX Runtime is imported only when one of these is built. After loading, the session's
providers are checked against those asked for, so a CUDA request that quietly became a
CPU run is reported rather than discovered in a latency graph. Each backend runs one
warm-up inference at load and reuses one input tensor for every batch.
"""

from __future__ import annotations

import ast
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vision.detectors.base import (
    Detector,
    FastestV2Config,
    ModelInfo,
    OnnxYoloConfig,
    _OnnxConfig,
    file_sha256,
    register_backend,
)
from vision.errors import BackendUnavailableError, InferenceError, ModelLoadError, ProviderFallbackError
from vision.postprocess import decode_anchor_grid, decode_end2end, decode_yolo, finish
from vision.preprocess import PAD_VALUE, LetterboxGeometry, letterbox_into
from vision.types import Detections

logger = logging.getLogger(__name__)

#: input tensors kept for reuse, one per input shape (a rectangle per camera resolution)
_KEPT_INPUT_SHAPES = 4
_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as e:  # pragma: no cover - onnxruntime is a core dependency
        raise BackendUnavailableError(
            "the ONNX Runtime backends need onnxruntime: pip install onnxruntime (or onnxruntime-gpu for CUDA)"
        ) from e
    return onnxruntime


def _resolve_providers(requested: Sequence[str], available: Sequence[str], strict: bool) -> list[str]:
    if "auto" in requested:
        return [p for p in _PREFERENCE if p in available] or ["CPUExecutionProvider"]
    missing = [p for p in requested if p not in available]
    if missing:
        message = (
            f"execution providers {missing} are not available in this onnxruntime build (it has {list(available)})"
        )
        if strict:
            raise ProviderFallbackError(message + "; install onnxruntime-gpu or set strict_providers: false")
        logger.warning("%s; using the rest", message)
    return [p for p in requested if p in available] or ["CPUExecutionProvider"]


def open_session(config: _OnnxConfig) -> Any:
    """An ONNX Runtime session for `config.path`, with providers checked after loading."""
    ort = _onnxruntime()
    path = Path(config.path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    providers = _resolve_providers(config.providers, ort.get_available_providers(), config.strict_providers)
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not config.spin_threads:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as e:  # onnxruntime raises its own untyped errors for every kind of bad file
        raise ModelLoadError(f"{path} is not a loadable ONNX model: {str(e).strip().splitlines()[0]}") from e
    loaded = session.get_providers()
    fell_back = [p for p in providers if p not in loaded]
    if fell_back:
        message = f"ONNX Runtime fell back from {fell_back} to {loaded} for {path.name}"
        if config.strict_providers and "auto" not in config.providers:
            raise ProviderFallbackError(message)
        logger.warning(message)
    logger.info("loaded %s on %s", path.name, loaded[0])
    return session


def _hw(image: np.ndarray) -> tuple[int, int]:
    return int(image.shape[0]), int(image.shape[1])


def _literal(metadata: dict[str, str], key: str) -> Any:
    if key not in metadata:
        return None
    try:
        return ast.literal_eval(metadata[key])
    except (ValueError, SyntaxError):
        return metadata[key]


class _OnnxDetector(Detector):
    """What both ONNX backends share: the session, the input tensor, batching, errors."""

    rgb = True

    def __init__(self, config: _OnnxConfig) -> None:
        self.config = config
        self._session = open_session(config)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [tuple(i.shape) for i in inputs]
            raise ModelLoadError(
                f"{config.path} is not an image detector: expected one (B, 3, H, W) input, got {shapes}"
            )
        self._input_name = inputs[0].name
        self._dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        batch_dim = inputs[0].shape[0]
        self._dynamic_batch = not isinstance(batch_dim, int)
        if not self._dynamic_batch and batch_dim != 1:
            raise ModelLoadError(f"{config.path} takes a fixed batch of {batch_dim}; export it with batch=1 or dynamic")
        self._batch = config.max_batch if self._dynamic_batch else 1
        self._metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self._dynamic_hw = not all(isinstance(d, int) for d in inputs[0].shape[2:])
        # input tensors are reused between calls, one set per thread: several cameras of one
        # worker share a detector, and ONNX Runtime runs them in parallel
        self._local = threading.local()
        self._input_hw: tuple[int, int] = (0, 0)  # set by the backend once it knows the model's size

    def _tensor(self, input_hw: tuple[int, int]) -> np.ndarray:
        """This thread's reusable input tensor for inputs of `input_hw`; a few shapes are kept."""
        tensors: dict[tuple[int, int], np.ndarray] = self._local.__dict__.setdefault("tensors", {})
        tensor = tensors.pop(input_hw, None)
        if tensor is None:
            tensor = np.empty((self._batch, 3, *input_hw), np.float32)
            if len(tensors) >= _KEPT_INPUT_SHAPES:
                tensors.pop(next(iter(tensors)))
        tensors[input_hw] = tensor  # most recently used last
        return tensor

    def _run(self, feed: np.ndarray) -> np.ndarray:
        if self._dtype == np.float16:
            feed = feed.astype(np.float16)
        try:
            out = self._session.run(None, {self._input_name: feed})[0]
        except Exception as e:
            raise InferenceError(f"ONNX Runtime failed on {Path(self.config.path).name}: {e}") from e
        return np.asarray(out, dtype=np.float32)

    def _warm_up(self) -> np.ndarray:
        tensor = self._tensor(self._input_hw)[:1]
        tensor.fill(PAD_VALUE / 255)
        return self._run(tensor)

    def _geometries(self, images: Sequence[np.ndarray]) -> list[LetterboxGeometry]:
        return [LetterboxGeometry.letterbox(_hw(image), self._input_hw) for image in images]

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        results: list[Detections] = []
        for start in range(0, len(images), self._batch):
            chunk = images[start : start + self._batch]
            geometries = self._geometries(chunk)
            tensor = self._tensor((geometries[0].dst_h, geometries[0].dst_w))
            for k, (image, geometry) in enumerate(zip(chunk, geometries, strict=True)):
                letterbox_into(image, tensor[k], geometry, rgb=self.rgb, threads=self.config.preprocess_threads)
            raw = self._run(tensor[: len(chunk)])
            results.extend(self._decode(raw, k, g) for k, g in enumerate(geometries))
        return results

    def _decode(self, raw: np.ndarray, k: int, geometry: LetterboxGeometry) -> Detections:
        raise NotImplementedError


@register_backend("onnx_yolo")
class OnnxYoloDetector(_OnnxDetector):
    """Any ultralytics detection export: `(B, 4 + nc, N)` heads and end-to-end `(B, N, 6)` heads."""

    def __init__(self, config: OnnxYoloConfig) -> None:
        super().__init__(config)
        meta = self._metadata
        task = meta.get("task")
        if task is not None and task != "detect":
            raise ModelLoadError(f"{config.path} is a {task!r} model; nonsite needs a 'detect' model")
        names = _literal(meta, "names")
        if isinstance(names, dict):
            names = tuple(str(names[k]) for k in sorted(names))
        elif config.names is not None:
            names = config.names
        else:
            raise ModelLoadError(
                f"{config.path} carries no class names in its metadata and none were given: pass names"
            )
        imgsz = _literal(meta, "imgsz")
        shape = self._session.get_inputs()[0].shape
        if isinstance(imgsz, list) and len(imgsz) == 2:
            input_hw = (int(imgsz[0]), int(imgsz[1]))
        elif isinstance(shape[2], int) and isinstance(shape[3], int):
            input_hw = (shape[2], shape[3])
        else:
            raise ModelLoadError(f"{config.path} has a dynamic input size and no 'imgsz' in its metadata")
        stride = _literal(meta, "stride")
        self._stride = int(stride) if isinstance(stride, int) and stride > 0 else 32
        if config.imgsz is not None:
            if not self._dynamic_hw:
                raise ModelLoadError(
                    f"{config.path} has a fixed {shape[2]}x{shape[3]} input, so imgsz {config.imgsz} cannot apply: "
                    "leave imgsz out, or export the model with a dynamic input size"
                )
            if config.imgsz % self._stride:
                raise ModelLoadError(
                    f"imgsz must be a multiple of the model's stride {self._stride}, but got {config.imgsz}"
                )
            input_hw = (config.imgsz, config.imgsz)
        self._input_hw = input_hw
        self._rect = config.rect and self._dynamic_hw
        raw = self._warm_up()
        nc = len(names)
        end2end = _literal(meta, "end2end") is True
        if raw.ndim == 3 and raw.shape[1] == 4 + nc and not end2end:
            head = "yolo"
        elif raw.ndim == 3 and raw.shape[2] == 6:
            head = "end2end"
        else:
            raise ModelLoadError(
                f"{config.path} has output shape {raw.shape}: expected a detection head (B, 4 + {nc}, N) "
                f"for its {nc} classes, or an end-to-end head (B, N, 6)"
            )
        self._head = head
        self.info = ModelInfo(
            path=Path(config.path),
            sha256=file_sha256(Path(config.path)),
            names=tuple(names),
            input_hw=input_hw,
            head=head,
            dynamic_batch=self._dynamic_batch,
            providers=tuple(self._session.get_providers()),
            metadata=meta,
        )

    def _geometries(self, images: Sequence[np.ndarray]) -> list[LetterboxGeometry]:
        shapes = {_hw(image) for image in images}
        if not self._rect or len(shapes) != 1:
            return super()._geometries(images)
        # a batch of one size fits the smallest stride-multiple rectangle, as ultralytics' predict does
        geometry = LetterboxGeometry.letterbox(shapes.pop(), self._input_hw, stride=self._stride)
        return [geometry] * len(images)

    def _decode(self, raw: np.ndarray, k: int, geometry: LetterboxGeometry) -> Detections:
        c = self.config
        if self._head == "yolo":
            xyxy, score, cls = decode_yolo(raw[k], c.conf)
            return finish(xyxy, score, cls, geometry, iou=c.iou, max_det=c.max_det)
        xyxy, score, cls = decode_end2end(raw[k], c.conf)
        return finish(xyxy, score, cls, geometry, iou=None, max_det=c.max_det)


#: Yolo-FastestV2's COCO anchors (w, h in input pixels) per stride, from its reference code
FASTESTV2_STRIDES = np.array([16, 32], np.int64)
FASTESTV2_ANCHORS = np.array(
    [[[12.64, 19.39], [37.88, 51.48], [55.71, 138.31]], [[126.91, 78.23], [131.57, 214.55], [279.92, 258.87]]],
    np.float32,
)


@register_backend("yolo_fastestv2")
class FastestV2Detector(_OnnxDetector):
    """Yolo-FastestV2 (COCO-80): stretched BGR input, `(cells, 95)` anchor-grid output."""

    rgb = False

    def __init__(self, config: FastestV2Config) -> None:
        super().__init__(config)
        names_file = config.names_file or Path(config.path).with_name("coco.names")
        if not names_file.is_file():
            raise ModelLoadError(f"{config.path} needs class names: {names_file} does not exist (set names_file)")
        names = tuple(line.strip() for line in names_file.read_text().splitlines() if line.strip())
        shape = self._session.get_inputs()[0].shape
        if not (isinstance(shape[2], int) and isinstance(shape[3], int)):
            raise ModelLoadError(f"{config.path} has a dynamic input size; Yolo-FastestV2 exports are fixed")
        self._input_hw = (shape[2], shape[3])
        raw = self._warm_up()
        expected_width = 5 * FASTESTV2_ANCHORS.shape[1] + len(names)
        if raw.ndim != 2 or raw.shape[1] != expected_width:
            raise ModelLoadError(
                f"{config.path} has output shape {raw.shape}: expected (cells, {expected_width}) for "
                f"{len(names)} classes and {FASTESTV2_ANCHORS.shape[1]} anchors"
            )
        self.info = ModelInfo(
            path=Path(config.path),
            sha256=file_sha256(Path(config.path)),
            names=names,
            input_hw=self._input_hw,
            head="anchor_grid",
            dynamic_batch=self._dynamic_batch,
            providers=tuple(self._session.get_providers()),
            metadata=self._metadata,
        )

    def _geometries(self, images: Sequence[np.ndarray]) -> list[LetterboxGeometry]:
        return [LetterboxGeometry.stretch(_hw(image), self._input_hw) for image in images]

    def _decode(self, raw: np.ndarray, k: int, geometry: LetterboxGeometry) -> Detections:
        c = self.config
        pred = raw if raw.ndim == 2 else raw[k]
        xyxy, score, cls = decode_anchor_grid(
            pred, strides=FASTESTV2_STRIDES, anchors=FASTESTV2_ANCHORS, input_hw=self._input_hw, conf=c.conf
        )
        return finish(xyxy, score, cls, geometry, iou=c.iou, max_det=c.max_det)


def sniff_backend(path: Path) -> str:
    """Guess which backend a model file needs: ultralytics metadata means `onnx_yolo`.

    Models without it whose output is a flat anchor-grid table are taken for Yolo-FastestV2.
    """
    ort = _onnxruntime()
    if not Path(path).is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelLoadError(f"{path} is not a loadable ONNX model: {str(e).strip().splitlines()[0]}") from e
    meta = session.get_modelmeta().custom_metadata_map
    if "names" in meta:
        return "onnx_yolo"
    if len(session.get_outputs()[0].shape) == 2:
        return "yolo_fastestv2"
    return "onnx_yolo"
