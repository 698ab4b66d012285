"""``loaxa eval``: score the motion detector (CDnet) and the helmet detector (YOLO labels).

Mounted by the main CLI as a sub-app; results go to stdout, the progress bar to stderr, and
with ``--json`` the last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from devtools.camera.evaluation import (
    EvaluationError,
    Mog2Boxes,
    MotionScore,
    evaluate_helmet,
    evaluate_motion,
    evaluate_objects,
)
from devtools.camera.perturb import write_perturbed
from edge.camera.helmet import Detection, HelmetDetector
from edge.camera.motion import MotionDetector
from firmware_config.camera import HelmetSettings, MotionSettings

eval_app = typer.Typer(help="Evaluate the camera pipeline on labelled data.", no_args_is_help=True)
_err = Console(stderr=True)
DEFAULT_MODEL_NAME = "helmet-yolov12m-320.onnx"


def default_model_path() -> Path:
    """The shared development model: ``$LOAXA_SHARED_DIR`` or ``../shared`` next to the cwd."""
    shared = Path(os.environ.get("LOAXA_SHARED_DIR", Path.cwd().parent / "shared"))
    return shared / "models" / DEFAULT_MODEL_NAME


def _progress(label: str) -> tuple[Progress, Callable[[int, int], None]]:
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


def _fail(message: str) -> typer.Exit:
    """Evaluation errors are one line on stderr (exit 2), never a traceback."""
    _err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _motion_row(score: MotionScore) -> dict[str, object]:
    p = score.pixel
    return {
        "frames": score.frames,
        "fps": round(score.fps, 1),
        "precision": round(p.precision, 4),
        "recall": round(p.recall, 4),
        "f1": round(p.f1, 4),
        "frame_level": score.frame.as_dict(),
    }


@eval_app.command("motion")
def eval_motion(
    directories: Annotated[list[Path], typer.Argument(help="CDnet folders")],
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
    dump_masks: Annotated[
        Path | None, typer.Option(help="Write NNNNNN.png box-filled masks of scored frames.")
    ] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of the sequence (for durations).")] = 30,
    compare_mog2: Annotated[
        bool, typer.Option("--compare-mog2", help="Also score OpenCV MOG2 on the same frames.")
    ] = False,
) -> None:
    """Pixel precision/recall/F1 of box-filled motion masks, CDnet rules, and frames/s.

    With one folder the JSON line holds its figures; with several, one entry per folder
    under ``sequences`` (and ``mog2`` beside ours with ``--compare-mog2``).
    """
    results: dict[str, dict[str, object]] = {}
    try:
        for directory in directories:
            if not directory.is_dir():
                raise EvaluationError(f"{directory}: not a folder")
            dump = dump_masks
            if dump is not None and len(directories) > 1:
                dump = dump / directory.name
            bar, update = _progress(f"motion {directory.name}")
            with bar:
                score = evaluate_motion(
                    directory, MotionDetector(MotionSettings()), fps, dump, update
                )
            row = _motion_row(score)
            p, fl = score.pixel, score.frame
            typer.echo(f"{directory.name}: frames {score.frames}  fps {score.fps:.0f}")
            typer.echo(
                f"  pixel  precision {p.precision:.4f}  recall {p.recall:.4f}  F1 {p.f1:.4f}"
            )
            typer.echo(
                f"  frame  precision {fl.precision:.4f}  recall {fl.recall:.4f}  F1 {fl.f1:.4f}"
            )
            if compare_mog2:
                base = evaluate_motion(directory, Mog2Boxes(), fps)
                row["mog2"] = _motion_row(base)
                typer.echo(f"  MOG2   F1 {base.pixel.f1:.4f}  (ours {p.f1:.4f})")
            results[directory.name] = row
    except (EvaluationError, OSError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        out = next(iter(results.values())) if len(results) == 1 else {"sequences": results}
        typer.echo(json.dumps(out))


@eval_app.command("objects")
def eval_objects(
    directories: Annotated[list[Path], typer.Argument(help="Folders with labels.json")],
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
    dump: Annotated[
        Path | None, typer.Option(help="Write one JSON line per detection.")
    ] = None,
    dwell_s: Annotated[float, typer.Option("--dwell-s", min=0.1, help="Dwell time")] = 3.0,
) -> None:
    """Left objects (dumping): detections per folder, precision, recall, median delay."""
    bar, update = _progress("objects")
    try:
        with bar:
            score = evaluate_objects(directories, dwell_s, progress=update)
    except (EvaluationError, OSError) as exc:
        raise _fail(str(exc)) from None
    for name, prf in score.per_sequence.items():
        found = [d for d in score.detections if d.sequence == name]
        typer.echo(f"{name}: tp {prf.tp} fp {prf.fp} fn {prf.fn}")
        for det in found:
            tag = f"object, {det.delay_s:.1f} s after placed" if det.matched else "false alert"
            typer.echo(f"  frame {det.frame}  box {list(det.box)}  {tag}")
    prf, delay = score.prf, score.median_delay_s
    delay_text = f"{delay:.2f} s" if delay is not None else "-"
    typer.echo(
        f"objects {score.objects}  detections {len(score.detections)}  precision "
        f"{prf.precision:.4f}  recall {prf.recall:.4f}  median delay {delay_text}"
    )
    if dump is not None:
        with dump.open("w", encoding="utf-8") as handle:
            for det in score.detections:
                handle.write(json.dumps(det.as_dict()) + "\n")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "objects": score.objects,
                    "detections": len(score.detections),
                    "precision": round(prf.precision, 4),
                    "recall": round(prf.recall, 4),
                    "median_delay_s": None if delay is None else round(delay, 3),
                    "dwell_s": dwell_s,
                    "per_sequence": {k: v.as_dict() for k, v in score.per_sequence.items()},
                }
            )
        )


@eval_app.command("perturb")
def eval_perturb(
    source: Annotated[Path, typer.Argument(help="CDnet folder to copy")],
    out: Annotated[Path, typer.Argument(help="Output folder (untracked, e.g. .run/perturbed)")],
) -> None:
    """Write perturbed copies (drift, dimming, noise, jpeg) for ``loaxa eval motion``."""
    try:
        folders = write_perturbed(source, out)
    except (EvaluationError, OSError) as exc:
        raise _fail(str(exc)) from None
    for folder in folders:
        typer.echo(str(folder))


def _jsonl_writer(path: Path | None) -> tuple[Callable[[str, list[Detection]], None], Callable]:
    if path is None:
        return (lambda name, dets: None), (lambda: None)
    handle = path.open("w", encoding="utf-8")

    def write(name: str, dets: list[Detection]) -> None:
        row = {
            "image": name,
            "detections": [
                {
                    "class": d.cls,
                    "confidence": round(d.confidence, 4),
                    "box": [round(v, 1) for v in d.box],
                }
                for d in dets
            ],
        }
        handle.write(json.dumps(row) + "\n")

    return write, handle.close


@eval_app.command("helmet")
def eval_helmet(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="YOLO folder")],
    model: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="ONNX model [default: $LOAXA_SHARED_DIR/models/…]"),
    ] = None,
    imgsz: Annotated[int, typer.Option(help="Model input size")] = 320,
    conf: Annotated[float, typer.Option(help="Confidence floor")] = 0.25,
    iou: Annotated[float, typer.Option(help="NMS IoU")] = 0.7,
    agnostic: Annotated[bool, typer.Option(help="Class-agnostic NMS")] = (
        HelmetSettings().class_agnostic_nms
    ),
    runtime: Annotated[str, typer.Option(help="onnxruntime or opencv")] = "onnxruntime",
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
    dump: Annotated[Path | None, typer.Option(help="Write detections as JSON lines.")] = None,
) -> None:
    """Per-class precision/recall/F1 at IoU ≥ 0.5 on whole images, and ms per image."""
    if runtime not in {"onnxruntime", "opencv"}:
        raise typer.BadParameter("runtime must be onnxruntime or opencv", param_hint="--runtime")
    model = model or default_model_path()
    if not model.is_file():
        raise typer.BadParameter(f"no model file at {model}", param_hint="--model")
    detector = HelmetDetector(
        model, imgsz, runtime, confidence=conf, nms_iou=iou, class_agnostic=agnostic
    )
    write, close = _jsonl_writer(dump)
    bar, update = _progress("helmet")
    try:
        with bar:
            score = evaluate_helmet(directory, detector, on_image=write, progress=update)
    finally:
        close()
    typer.echo(f"images {score.images}  ms/image {score.ms_per_image:.1f}")
    for name, prf in score.per_class.items():
        typer.echo(
            f"{name:15s} precision {prf.precision:.4f}  recall {prf.recall:.4f}  "
            f"F1 {prf.f1:.4f}  (tp {prf.tp} fp {prf.fp} fn {prf.fn})"
        )
    if as_json:
        out: dict[str, object] = {
            "images": score.images,
            "ms_per_image": round(score.ms_per_image, 1),
        }
        out.update({name: prf.as_dict() for name, prf in score.per_class.items()})
        typer.echo(json.dumps(out))
