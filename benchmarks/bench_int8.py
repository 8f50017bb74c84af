"""Static INT8 against FP32 (issue 9): speed ratio and mAP50 loss of the same model, side by side.

The model is quantized with `models.quantize` (QDQ, per-channel INT8 weights, MinMax
calibration on `--calibration` images of the set's train split, the detection head left in
float), then both files are evaluated on the same validation images and timed in the same
run, image by image in turns (ONNX Runtime, CPU, batch 1, fixed input size), medians. The
INT8 file is kept only if it loses less than one point of mAP50, as `nonsite train
--quantize` does.

    .venv/bin/python benchmarks/bench_int8.py --model models/zoo/starter.onnx \\
        --data var/bench/int8-synthetic/data.yaml --out var/bench/int8.json

Without --data, a synthetic street dataset (200 images, seed 7) is rendered first: the figures
are then synthetic ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import subprocess
from pathlib import Path

from models.evaluate_detect import load_eval_set
from models.quantize import quantize_and_compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/zoo/starter.onnx"))
    parser.add_argument("--data", type=Path, default=None, help="YOLO data.yaml (default: render a synthetic set)")
    parser.add_argument("--labels", default=None, help="label map for real sets, e.g. 0:smoke,1:smoke")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--calibration", type=int, default=64, help="calibration images from the train split")
    parser.add_argument("--timing-images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("var/bench/int8.json"))
    args = parser.parse_args()

    data = args.data
    if data is None:
        from datasets.synthetic import write_yolo_dataset

        root = Path("var/bench/int8-synthetic")
        if not (root / "data.yaml").is_file():
            write_yolo_dataset(root, 200, 7)
        data = root / "data.yaml"
    label_map = dict(part.split(":") for part in args.labels.split(",")) if args.labels else None
    eval_set = load_eval_set(data, label_map=label_map)
    train_images = sorted((data.parent / "images" / "train").glob("*.jpg"))[: args.calibration]
    calibration = train_images or [i.path for i in eval_set.images[: args.calibration]]
    work = args.out.parent / "int8-work"
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / args.model.name
    shutil.copyfile(args.model, fp32)
    report = quantize_and_compare(
        fp32, eval_set, calibration=calibration, imgsz=args.imgsz, timing_images=args.timing_images,
        repeats=args.repeats,
    )  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "model": str(args.model),
        "data": str(data),
        "images": len(eval_set.images),
        "imgsz": args.imgsz,
        **report.to_json(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
