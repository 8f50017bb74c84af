"""Box-level evaluation of a detector on a YOLO-format dataset: mAP50, mAP50-95, P and R per class.

The figures follow the conventions of ultralytics' `val` (and COCO): a prediction is a true
positive at an IoU threshold when it is the best unmatched match of a ground-truth box of
its class; AP is the area under the precision envelope sampled at 101 recall points, the
envelope interpolated linearly between its points and closed at recall 1 with precision 0
(ultralytics' convention: a perfect class scores 0.995, and a curve that stops at recall r
gains a triangle past r that COCO's step interpolation would not give);
mAP50-95 averages AP over IoU 0.50, 0.55 ... 0.95; precision and recall are reported at the
confidence that maximises the mean F1 over classes. The detector runs through the
detection core (ONNX Runtime), so evaluation needs no torch.

A dataset is a YOLO `data.yaml` (its `val` split unless another is named) or a folder that
holds `images/` and `labels/`. Class ids of the labels map to evaluation classes by the
dataset's names, or by `label_map` when the set names them differently (the real smoke sets
label wildfire and urban smoke apart; both are `smoke` here). Model classes map to
evaluation classes by name, or by `model_map` (a model's `stall` and `umbrella` are both the
aerial vendor set's `vendedor_ambulante`); predictions of other classes are dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from models.errors import ModelsError
from vision.detectors import Detector

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclass(frozen=True)
class LabelledImage:
    """One evaluation image and its true boxes (pixels, evaluation class ids)."""

    path: Path
    boxes: np.ndarray  # (N, 4) float xyxy
    classes: np.ndarray  # (N,) int


@dataclass(frozen=True)
class EvalSet:
    """A labelled image set in evaluation classes."""

    name: str
    classes: tuple[str, ...]
    images: tuple[LabelledImage, ...]

    @property
    def instances(self) -> int:
        return sum(len(i.classes) for i in self.images)


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    images: int
    instances: int
    precision: float
    recall: float
    ap50: float
    ap50_95: float


@dataclass(frozen=True)
class DetectionReport:
    """What `evaluate_detector` measured; `to_json` is what model cards carry."""

    dataset: str
    model: str
    images: int
    instances: int
    precision: float
    recall: float
    map50: float
    map50_95: float
    per_class: tuple[ClassMetrics, ...]
    seconds_per_image: float
    conf_at_best_f1: float
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "images": self.images,
            "instances": self.instances,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "mAP50": round(self.map50, 4),
            "mAP50-95": round(self.map50_95, 4),
            "conf_at_best_f1": round(self.conf_at_best_f1, 3),
            "seconds_per_image": round(self.seconds_per_image, 4),
            "per_class": {
                c.name: {
                    "images": c.images,
                    "instances": c.instances,
                    "precision": round(c.precision, 4),
                    "recall": round(c.recall, 4),
                    "mAP50": round(c.ap50, 4),
                    "mAP50-95": round(c.ap50_95, 4),
                }
                for c in self.per_class
            },
            **({"notes": list(self.notes)} if self.notes else {}),
        }

    def table(self) -> str:
        rows = [f"{'class':<22}{'images':>8}{'boxes':>8}{'P':>8}{'R':>8}{'mAP50':>8}{'mAP50-95':>10}"]
        for c in (*self.per_class, None):
            if c is None:
                name, n_img, n_box = "all", self.images, self.instances
                p, r, a50, a = self.precision, self.recall, self.map50, self.map50_95
            else:
                name, n_img, n_box, p, r, a50, a = (
                    c.name,
                    c.images,
                    c.instances,
                    c.precision,
                    c.recall,
                    c.ap50,
                    c.ap50_95,
                )
            rows.append(f"{name:<22}{n_img:>8}{n_box:>8}{p:>8.3f}{r:>8.3f}{a50:>8.3f}{a:>10.3f}")
        return "\n".join(rows)


# -- datasets ------------------------------------------------------------------------------


def _names(value: Any, where: Path) -> list[str]:
    if isinstance(value, dict):
        return [str(value[k]) for k in sorted(value, key=int)]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise ModelsError(f"{where}: 'names' must be a list or a mapping of class id to name, but got {value!r}")


def _split_images(data_yaml: Path, split: str) -> tuple[Path, list[str]]:
    try:
        doc = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ModelsError(f"cannot read the dataset file {data_yaml}: {e}") from e
    if not isinstance(doc, dict) or "names" not in doc:
        raise ModelsError(f"{data_yaml} is not a YOLO data.yaml (it needs 'names' and split folders)")
    names = _names(doc["names"], data_yaml)
    root = Path(doc.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    entry = doc.get(split)
    if entry is None:
        raise ModelsError(f"{data_yaml} has no '{split}' split")
    images = (root / str(entry)).resolve()
    if not images.is_dir():
        # Roboflow exports name splits relative to a folder that is not there; their images sit beside
        fallback = data_yaml.parent / "images"
        if not fallback.is_dir():
            raise ModelsError(f"{data_yaml}: the '{split}' images folder {images} does not exist")
        images = fallback
    return images, names


def _labels_dir(images_dir: Path) -> Path:
    parts = list(images_dir.parts)
    for i in range(len(parts) - 1, -1, -1):  # ultralytics' rule: the last 'images' becomes 'labels'
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return images_dir.parent / "labels"


def _parse_map(mapping: Mapping[str, str | Sequence[str]] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in (mapping or {}).items():
        out[str(key)] = [value] if isinstance(value, str) else [str(v) for v in value]
    return out


def load_eval_set(
    source: Path,
    *,
    split: str = "val",
    label_map: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> EvalSet:
    """The labelled images of `source` (a data.yaml, or a folder with images/ and labels/).

    `label_map` maps label class ids (as strings) to evaluation class names; without it the
    dataset's own names are the evaluation classes. A label line that is not `class cx cy w h`
    with coordinates in [0, 1] is an error naming the file and line.
    """
    source = Path(source)
    if source.is_file():
        images_dir, names = _split_images(source, split)
    elif (source / "data.yaml").is_file() and not label_map:
        images_dir, names = _split_images(source / "data.yaml", split)
    elif (source / "images").is_dir():
        images_dir, names = source / "images", []
    else:
        raise ModelsError(f"{source} is neither a YOLO data.yaml nor a folder with images/ and labels/")
    if label_map:
        by_id = {str(k): str(v) for k, v in label_map.items()}
    elif names:
        by_id = {str(i): n for i, n in enumerate(names)}
    else:
        raise ModelsError(f"{source} names no classes: give a label map (label id -> class name)")
    classes = tuple(dict.fromkeys(by_id.values()))
    class_index = {n: i for i, n in enumerate(classes)}
    labels_dir = _labels_dir(images_dir)
    paths = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ModelsError(f"no images in {images_dir}")
    if limit is not None:
        paths = paths[:limit]
    images = []
    for path in paths:
        label = labels_dir / path.relative_to(images_dir).with_suffix(".txt")
        hw = _image_hw(path)
        boxes, ids = _read_labels(label, hw, by_id, class_index)
        images.append(LabelledImage(path, boxes, ids))
    return EvalSet(source.name if source.is_dir() else source.parent.name, classes, tuple(images))


def _image_hw(path: Path) -> tuple[int, int]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ModelsError(f"{path} is not a readable image")
    return int(image.shape[0]), int(image.shape[1])


def _read_labels(
    path: Path, hw: tuple[int, int], by_id: Mapping[str, str], class_index: Mapping[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        return np.zeros((0, 4)), np.zeros(0, dtype=int)  # an image without labels shows nothing
    h, w = hw
    boxes, ids = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:  # segment polygons are not box labels
            raise ModelsError(f"{path}:{number}: expected 5 fields 'class cx cy w h', got {len(fields)}")
        try:
            cls, cx, cy, bw, bh = fields[0], *(float(v) for v in fields[1:5])
        except ValueError as e:
            raise ModelsError(f"{path}:{number}: expected 'class cx cy w h', got {line!r}") from e
        if not all(-0.01 <= v <= 1.01 for v in (cx, cy, bw, bh)):
            raise ModelsError(f"{path}:{number}: coordinates must be normalised to [0, 1], got {line!r}")
        if cls not in by_id:
            raise ModelsError(f"{path}:{number}: class id {cls} is not in the label map {dict(by_id)}")
        boxes.append(((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
        ids.append(class_index[by_id[cls]])
    return np.asarray(boxes, dtype=float).reshape(-1, 4), np.asarray(ids, dtype=int)


# -- metrics -------------------------------------------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (N, 4) against every box of `b` (M, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_predictions(
    pred_boxes: np.ndarray, pred_classes: np.ndarray, true_boxes: np.ndarray, true_classes: np.ndarray
) -> np.ndarray:
    """(P, 10) bool: whether each prediction is a true positive at each IoU threshold.

    At each threshold, candidate pairs of the same class with IoU above it are taken best
    IoU first, each prediction and each true box at most once (as ultralytics does).
    """
    correct = np.zeros((len(pred_boxes), len(IOU_THRESHOLDS)), dtype=bool)
    if len(pred_boxes) == 0 or len(true_boxes) == 0:
        return correct
    iou = box_iou(true_boxes, pred_boxes) * (true_classes[:, None] == pred_classes[None, :])
    for t, threshold in enumerate(IOU_THRESHOLDS):
        ti, pi = np.nonzero(iou >= threshold)
        if not len(ti):
            continue
        order = np.argsort(-iou[ti, pi], kind="stable")
        ti, pi = ti[order], pi[order]
        best_of_pred = np.sort(np.unique(pi, return_index=True)[1])  # still best IoU first
        ti, pi = ti[best_of_pred], pi[best_of_pred]
        _, first_true = np.unique(ti, return_index=True)
        correct[pi[first_true], t] = True
    return correct


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """COCO's 101-point interpolated AP of one precision/recall curve (ordered by falling confidence)."""
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([1.0], precision, [0.0]))
    p = np.flip(np.maximum.accumulate(np.flip(p)))  # the precision envelope
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, r, p), x))


@dataclass(frozen=True)
class _Curves:
    ap: np.ndarray  # (C, 10)
    precision: np.ndarray  # (C,) at the best-F1 confidence
    recall: np.ndarray
    conf: float


def per_class_ap(
    correct: np.ndarray, conf: np.ndarray, pred_classes: np.ndarray, true_classes: np.ndarray, n_classes: int
) -> _Curves:
    """AP at each IoU threshold per class, and P/R at the confidence with the best mean F1."""
    order = np.argsort(-conf, kind="stable")
    correct, conf, pred_classes = correct[order], conf[order], pred_classes[order]
    grid = np.linspace(0, 1, 1000)
    ap = np.zeros((n_classes, correct.shape[1]))
    p_curve = np.zeros((n_classes, len(grid)))
    r_curve = np.zeros((n_classes, len(grid)))
    for c in range(n_classes):
        mine = pred_classes == c
        n_true = int((true_classes == c).sum())
        if n_true == 0 or not mine.any():
            continue
        tp = np.cumsum(correct[mine], axis=0)
        fp = np.cumsum(~correct[mine], axis=0)
        recall = tp / n_true
        precision = tp / (tp + fp)
        # P and R at IoU 0.5 as functions of the confidence threshold (confidence falls along the curve)
        r_curve[c] = np.interp(-grid, -conf[mine], recall[:, 0], left=0)
        p_curve[c] = np.interp(-grid, -conf[mine], precision[:, 0], left=1)
        for t in range(correct.shape[1]):
            ap[c, t] = average_precision(recall[:, t], precision[:, t])
    present = np.array([(true_classes == c).any() for c in range(n_classes)])
    f1 = 2 * p_curve * r_curve / np.maximum(p_curve + r_curve, 1e-16)
    best = int(np.argmax(f1[present].mean(axis=0))) if present.any() else 0
    return _Curves(ap, p_curve[:, best], r_curve[:, best], float(grid[best]))


# -- running a detector --------------------------------------------------------------------


def _model_to_eval(
    model_names: Sequence[str], classes: Sequence[str], model_map: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """For each model class id, the evaluation class id it counts as (-1: not evaluated)."""
    index = {n: i for i, n in enumerate(classes)}
    to_eval = np.full(len(model_names), -1, dtype=int)
    for eval_name, model_classes in model_map.items():
        if eval_name not in index:
            raise ModelsError(f"the model map names '{eval_name}', which the dataset does not have ({list(classes)})")
        for model_class in model_classes:
            if model_class not in model_names:
                raise ModelsError(
                    f"the model map names '{model_class}', which the model does not know ({list(model_names)})"
                )
            to_eval[list(model_names).index(model_class)] = index[eval_name]
    for m, name in enumerate(model_names):
        if to_eval[m] < 0 and name in index and name not in model_map:
            to_eval[m] = index[name]
    if (to_eval < 0).all():
        raise ModelsError(
            f"the model's classes {list(model_names)} share none with the dataset's {list(classes)}: give a model map"
        )
    return to_eval


def _batches(images: Sequence[LabelledImage], size: int) -> Iterator[tuple[list[LabelledImage], list[np.ndarray]]]:
    for start in range(0, len(images), size):
        chunk = list(images[start : start + size])
        pixels = []
        for item in chunk:
            image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
            if image is None:
                raise ModelsError(f"{item.path} is not a readable image")
            pixels.append(image)
        yield chunk, pixels


def evaluate_detector(
    detector: Detector,
    eval_set: EvalSet,
    *,
    model_map: Mapping[str, str | Sequence[str]] | None = None,
    batch: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> DetectionReport:
    """Run `detector` over `eval_set` and measure it (see the module docstring).

    The detector should report low-score boxes (conf about 0.001), as mAP integrates over them.
    """
    classes = eval_set.classes
    to_eval = _model_to_eval(detector.names, classes, _parse_map(model_map))
    corrects, confs, pred_cls, true_cls = [], [], [], []
    images_with = np.zeros(len(classes), dtype=int)
    seconds = 0.0
    done = 0
    for chunk, pixels in _batches(eval_set.images, batch):
        started = time.perf_counter()
        results = detector.detect(pixels)
        seconds += time.perf_counter() - started
        for item, det in zip(chunk, results, strict=True):
            mapped = to_eval[det.class_id] if len(det) else np.zeros(0, dtype=int)
            keep = mapped >= 0
            boxes, scores, cls = det.xyxy[keep].astype(float), det.score[keep].astype(float), mapped[keep]
            corrects.append(match_predictions(boxes, cls, item.boxes, item.classes))
            confs.append(scores)
            pred_cls.append(cls)
            true_cls.append(item.classes)
            for c in set(item.classes.tolist()):
                images_with[c] += 1
        done += len(chunk)
        if progress:
            progress(done, len(eval_set.images))
    correct = np.concatenate(corrects) if corrects else np.zeros((0, 10), dtype=bool)
    conf = np.concatenate(confs) if confs else np.zeros(0)
    pcls = np.concatenate(pred_cls) if pred_cls else np.zeros(0, dtype=int)
    tcls = np.concatenate(true_cls) if true_cls else np.zeros(0, dtype=int)
    curves = per_class_ap(correct, conf, pcls, tcls, len(classes))
    per_class = []
    present = []
    for c, name in enumerate(classes):
        n = int((tcls == c).sum())
        if n == 0:
            continue
        present.append(c)
        per_class.append(
            ClassMetrics(
                name,
                int(images_with[c]),
                n,
                float(curves.precision[c]),
                float(curves.recall[c]),
                float(curves.ap[c, 0]),
                float(curves.ap[c].mean()),
            )
        )
    notes = tuple(f"no true boxes of '{n}' in this set" for c, n in enumerate(classes) if c not in present)
    idx = np.asarray(present, dtype=int)
    mean = (lambda a: float(a[idx].mean())) if len(idx) else (lambda a: 0.0)
    return DetectionReport(
        dataset=eval_set.name,
        model=detector.info.path.name,
        images=len(eval_set.images),
        instances=len(tcls),
        precision=mean(curves.precision),
        recall=mean(curves.recall),
        map50=mean(curves.ap[:, 0]),
        map50_95=mean(curves.ap.mean(axis=1)),
        per_class=tuple(per_class),
        seconds_per_image=seconds / max(1, len(eval_set.images)),
        conf_at_best_f1=curves.conf,
        notes=notes,
    )


def evaluate_model(
    model: Path,
    source: Path,
    *,
    split: str = "val",
    label_map: Mapping[str, str] | None = None,
    model_map: Mapping[str, str | Sequence[str]] | None = None,
    imgsz: int | None = None,
    limit: int | None = None,
) -> DetectionReport:
    """Load the ONNX `model` with the low score threshold mAP needs and evaluate it on `source`."""
    from vision.detectors import create_detector
    from vision.detectors.onnx import sniff_backend

    if not Path(model).is_file():
        raise ModelsError(f"model file {model} does not exist")
    config: dict[str, Any] = {"type": sniff_backend(Path(model)), "path": Path(model), "conf": 0.001, "max_det": 300}
    if imgsz is not None:
        config["imgsz"] = imgsz
    try:
        detector = create_detector(config)
    except Exception as e:
        raise ModelsError(f"cannot load {model} as a detector: {e}") from e
    eval_set = load_eval_set(Path(source), split=split, label_map=label_map, limit=limit)
    return evaluate_detector(detector, eval_set, model_map=model_map)
