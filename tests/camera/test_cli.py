"""``loaxa eval`` sub-app, mounted in a tiny Typer app as the main CLI does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import typer
from typer.testing import CliRunner

from devtools.camera.cli import eval_app

from .conftest import HELMET_DEV, need, scene, square_x

app = typer.Typer()
app.add_typer(eval_app, name="eval")
runner = CliRunner()


def make_cdnet(root: Path, n: int = 40, first: int = 21, start: int = 10) -> None:
    """A synthetic CDnet folder: a square crossing a noisy scene, exact ground truth."""
    (root / "input").mkdir(parents=True)
    (root / "groundtruth").mkdir()
    for i, frame in enumerate(scene(n, start=start), 1):
        cv2.imwrite(str(root / "input" / f"in{i:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        gt = np.zeros_like(frame)
        if i - 1 >= start:
            x = square_x(i - 1, start)
            gt[100:124, x : x + 24] = 255
        cv2.imwrite(str(root / "groundtruth" / f"gt{i:06d}.png"), gt)
    cv2.imwrite(str(root / "ROI.bmp"), np.full((240, 320), 255, np.uint8))
    (root / "temporalROI.txt").write_text(f"{first} {n}\n")


def test_eval_motion_json_and_masks(tmp_path: Path) -> None:
    make_cdnet(tmp_path / "seq")
    out = tmp_path / "masks"
    res = runner.invoke(
        app, ["eval", "motion", str(tmp_path / "seq"), "--json", "--dump-masks", str(out)]
    )
    assert res.exit_code == 0, res.output
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert last["frames"] == 40 and last["fps"] > 0
    assert last["f1"] > 0.8 and {"precision", "recall"} <= last.keys()
    masks = sorted(p.name for p in out.iterdir())
    assert masks[0] == "000021.png" and len(masks) == 20
    assert cv2.imread(str(out / "000040.png"), cv2.IMREAD_GRAYSCALE).max() == 255


def test_eval_helmet_json_and_dump(tmp_path: Path, shared_model: Path) -> None:
    src = need(HELMET_DEV)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for img in sorted((src / "images").iterdir())[:4]:
        shutil.copy(img, tmp_path / "images")
        shutil.copy(src / "labels" / f"{img.stem}.txt", tmp_path / "labels")
    dump = tmp_path / "dets.jsonl"
    res = runner.invoke(
        app,
        [
            "eval",
            "helmet",
            str(tmp_path),
            "--json",
            "--model",
            str(shared_model),
            "--imgsz",
            "320",
            "--conf",
            "0.25",
            "--dump",
            str(dump),
        ],
    )
    assert res.exit_code == 0, res.output
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert last["images"] == 4 and last["ms_per_image"] > 0
    for cls in ("with_helmet", "without_helmet"):
        assert {"precision", "recall", "f1"} <= last[cls].keys()
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(rows) == 4 and all({"image", "detections"} <= r.keys() for r in rows)
    assert any(r["detections"] for r in rows)
    d = next(r for r in rows if r["detections"])["detections"][0]
    assert d["class"] in (0, 1) and len(d["box"]) == 4


def test_eval_helmet_missing_model_is_reported(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    res = runner.invoke(
        app, ["eval", "helmet", str(tmp_path), "--model", str(tmp_path / "none.onnx")]
    )
    assert res.exit_code != 0 and "no model file" in res.output
