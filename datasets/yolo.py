"""YOLO-format datasets put together from others: class subsets and merges by class name.

A specialist model (smoke only; street occupation; construction) is trained on the images of
one or more generated datasets with their labels renamed into its own class list; labels of
other classes are dropped, and images left with none stay in as background.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from datasets.errors import DatasetError

SPLITS = ("train", "val")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class MergedDataset:
    data_yaml: Path
    images: dict[str, int]  # split -> images
    boxes: dict[str, dict[str, int]]  # split -> class -> boxes
    sources: tuple[str, ...]


def dataset_names(data_yaml: Path) -> list[str]:
    """The class names a data.yaml declares, in class-id order."""
    try:
        doc = yaml.safe_load(Path(data_yaml).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DatasetError(f"cannot read {data_yaml}: {e}") from e
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise DatasetError(f"{data_yaml} declares no class names")


def write_data_yaml(root: Path, classes: Sequence[str]) -> Path:
    """Write `root`/data.yaml naming its train and val image folders and its classes in id order."""
    data = {"path": str(Path(root).resolve()), "train": "images/train", "val": "images/val",
            "names": dict(enumerate(classes))}  # fmt: skip
    path = Path(root) / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def merge_yolo_datasets(sources: Sequence[Path], out_dir: Path, classes: Sequence[str]) -> MergedDataset:
    """Write `out_dir` with the train and val images of every source dataset (each a folder with
    data.yaml, images/{train,val}, labels/{train,val}), labels renamed into `classes` by name."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir} already holds files")
    index = {name: i for i, name in enumerate(classes)}
    images: Counter[str] = Counter()
    boxes: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    for split in SPLITS:
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
    for source in map(Path, sources):
        names = dataset_names(source / "data.yaml")
        mapping = {str(i): index[n] for i, n in enumerate(names) if n in index}
        if not mapping:
            raise DatasetError(f"{source} has none of the classes {list(classes)} (it has {names})")
        for split in SPLITS:
            folder = source / "images" / split
            if not folder.is_dir():
                raise DatasetError(f"{source} has no images/{split}")
            for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                stem = f"{source.name}-{image.stem}"
                shutil.copyfile(image, out_dir / "images" / split / f"{stem}{image.suffix}")
                label = source / "labels" / split / f"{image.stem}.txt"
                lines = []
                for line in label.read_text(encoding="utf-8").splitlines() if label.is_file() else []:
                    fields = line.split()
                    if fields and fields[0] in mapping:
                        lines.append(" ".join([str(mapping[fields[0]]), *fields[1:]]))
                        boxes[split][classes[mapping[fields[0]]]] += 1
                (out_dir / "labels" / split / f"{stem}.txt").write_text(
                    "\n".join(lines) + ("\n" if lines else ""), encoding="utf-8"
                )
                images[split] += 1
    data_yaml = write_data_yaml(out_dir, classes)
    return MergedDataset(
        data_yaml,
        dict(images),
        {split: dict(sorted(c.items())) for split, c in boxes.items()},
        tuple(str(s) for s in sources),
    )
