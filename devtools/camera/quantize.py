"""``loaxa model quantize``: an INT8 copy of a user-supplied YOLO ONNX helmet model.

The fp32 model (78 MB of weights for YOLOv12m) makes onnxruntime hold ≈ 250–300 MB; the INT8
copy is 20 MB and, with ``helmet.lean_memory``, takes a camera worker process from ≈ 270 to
≈ 190 MB here.  Weights are quantised to 7 bits (``--reduce-range``, the default): with full
8-bit weights the copy loses a sixth of its Without Helmet F1 on an x86 CPU without VNNI
(0.636 against fp32's 0.757 on this AVX2-only machine; the same command had scored
0.743–0.749 on earlier machines, the first of them with VNNI, the likely reason the figures
moved between sessions); with 7-bit weights the pair sums cannot saturate and the copy scores
0.753 here (``docs/camera.md``, "Memory on a Pi").

Static quantisation (the default) calibrates activation ranges on frames of street videos —
whole frames and square crops, letterboxed exactly as the detector does — so pass
clips from the kind of camera the node will watch, never the images you evaluate on.  The
decoding tail of the graph (box distribution, class sigmoid, concatenation of boxes in
pixels with scores in 0–1) and the convolutions feeding it stay fp32: quantising them would
put 320-pixel coordinates and 0–1 scores on one 8-bit scale.  ``--dynamic`` needs no
calibration (weights only, activations quantised on the fly); it was not measured.

Mounted by ``loaxa_cli`` as ``loaxa model`` (with ``train-recheck`` from
``recheck_train.py``); needs the ``onnx`` package (the ``quantize`` extra).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import cv2
import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from edge.camera.helmet import letterbox, to_blob

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)
model_app = typer.Typer(
    help="Prepare helmet models (INT8 quantisation, second-stage training).", no_args_is_help=True
)
_err = Console(stderr=True)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".ts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
#: Ops walked through (kept fp32) from the graph outputs back to the last trained layers.
_STOP_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
MIN_OPSET = 13


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


class Method(StrEnum):
    minmax = "minmax"
    percentile = "percentile"
    entropy = "entropy"


class Format(StrEnum):
    qdq = "qdq"
    qoperator = "qoperator"


@dataclass(slots=True, frozen=True)
class QuantizeResult:
    """What :func:`quantize_model` wrote."""

    output: Path
    input_mb: float
    output_mb: float
    calibration_frames: int
    excluded_nodes: int
    seconds: float


def calibration_files(sources: Sequence[Path]) -> list[Path]:
    """Videos and images named, or found (sorted, not recursive) in the folders named."""
    files: list[Path] = []
    for src in sources:
        if src.is_dir():
            files += sorted(
                p for p in src.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES
            )
        elif src.is_file():
            files.append(src)
        else:
            raise FileNotFoundError(f"calibration: no such file or folder {src}")
    if not files:
        names = ", ".join(map(str, sources))
        raise ValueError(f"calibration: no videos or images found in {names}")
    return files


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread evenly over a video (seeking, so long clips stay cheap)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"calibration: cannot open {path}")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames: list[np.ndarray] = []
    try:
        if total <= 0:  # unknown length: read from the start
            while len(frames) < count:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            return frames
        for index in np.linspace(0, total - 1, num=min(count, total)).round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = cap.read()
            if ok:
                frames.append(frame)
    finally:
        cap.release()
    return frames


def calibration_frames(files: Sequence[Path], count: int) -> Iterator[np.ndarray]:
    """About ``count`` BGR frames shared evenly between the files (images count one each)."""
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    videos = [f for f in files if f not in images]
    left = max(count - len(images), 0)
    for i, video in enumerate(videos):
        share = left // (len(videos) - i)
        frames = _video_frames(video, share)
        left -= len(frames)
        yield from frames
    for image in images[:count]:
        frame = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if frame is not None:
            yield frame


def model_inputs(frame: np.ndarray, size: int, index: int) -> np.ndarray:
    """The blob the detector would build: even ``index`` the whole frame, odd a crop.

    The camera pipeline runs the model on a crop around motion whenever it fits, so half the
    calibration blobs are square crops (side 1–1.7 × the input, position varying with
    ``index``) to cover the larger objects those crops show.
    """
    h, w = frame.shape[:2]
    if index % 2 and min(h, w) > size:
        rng = np.random.default_rng(index)
        side = int(min(h, w, size * rng.uniform(1.0, 1.7)))
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        frame = frame[y : y + side, x : x + side]
    padded, _ = letterbox(frame, size)
    return to_blob(padded)


def input_side(model: onnx.ModelProto) -> tuple[str, int]:
    """Name and fixed side of the model's (square image) input."""
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[-1] <= 0:
        raise ValueError(f"expected a fixed NCHW image input, got {inp.name} {dims}")
    return inp.name, dims[-1]


def decoding_tail(model: onnx.ModelProto) -> list[str]:
    """Nodes between the graph outputs and the last trained layers, those layers included.

    Walking back from each output stops at Conv/Gemm/MatMul nodes (kept fp32, not passed),
    except single-output-channel convolutions, such as YOLO's DFL expectation, which are
    decoding and are walked through.
    """
    from onnx import numpy_helper

    producer = {out: node for node in model.graph.node for out in node.output}
    weights = {init.name: init for init in model.graph.initializer}
    tail: set[str] = set()
    stack = [o.name for o in model.graph.output]
    seen: set[str] = set()
    while stack:
        tensor = stack.pop()
        node = producer.get(tensor)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        tail.add(node.name)
        if node.op_type in _STOP_OPS:
            weight = weights.get(node.input[1]) if len(node.input) > 1 else None
            single = (
                node.op_type == "Conv"
                and weight is not None
                and numpy_helper.to_array(weight).shape[0] == 1
            )
            if not single:
                continue
        stack.extend(i for i in node.input if i in producer)
    return sorted(tail)


class _FrameReader:
    """``CalibrationDataReader`` over prepared blobs, reporting progress as it is consumed."""

    def __init__(
        self, name: str, blobs: list[np.ndarray], progress: Callable[[int, int], None]
    ) -> None:
        self._name = name
        self._blobs = blobs
        self._next = 0
        self._progress = progress

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._blobs):
            return None
        blob = self._blobs[self._next]
        self._next += 1
        self._progress(self._next, len(self._blobs))
        return {self._name: blob}

    def __len__(self) -> int:
        return len(self._blobs)

    def rewind(self) -> None:
        self._next = 0


def quantize_model(
    source: Path,
    output: Path,
    calibration: Sequence[Path] = (),
    frames: int = 64,
    dynamic: bool = False,
    per_channel: bool = True,
    fmt: Format = Format.qdq,
    method: Method = Method.minmax,
    keep_tail: bool = True,
    exclude: Sequence[str] = (),
    keep_ops: Sequence[str] = (),
    op_types: Sequence[str] | None = None,
    reduce_range: bool = True,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> QuantizeResult:
    """Write an INT8 copy of ``source`` to ``output`` (static unless ``dynamic``).

    ``reduce_range`` (the default) quantises weights to 7 bits: an x86 CPU without VNNI
    (AVX2 only, like this project's CI machines) multiplies uint8 activations by int8
    weights with ``vpmaddubsw``, whose 16-bit pair sums saturate on full 8-bit weights;
    with 7-bit weights they cannot.  Measured on such a CPU: Without Helmet F1 0.636 full
    range, 0.753 reduced (fp32 0.757); on a VNNI CPU full range had scored 0.743–0.749.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    start = time.perf_counter()
    source, output = Path(source), Path(output)
    if source.resolve() == output.resolve():
        raise ValueError("the output must not overwrite the input model")
    model = onnx.load(str(source))
    name, side = input_side(model)
    excluded = sorted(
        set(decoding_tail(model) if keep_tail else [])
        | set(exclude)
        | {n.name for n in model.graph.node if n.op_type in set(keep_ops)}
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    used = 0
    with tempfile.TemporaryDirectory(prefix="loaxa-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        if _opset(model) < MIN_OPSET:  # per-channel DequantizeLinear needs opset 13
            from onnx import version_converter

            model = version_converter.convert_version(model, MIN_OPSET)
        onnx.save(model, str(prepared))
        del model
        # Shape inference and constant folding, as onnxruntime recommends before quantising.
        quant_pre_process(str(prepared), str(prepared), skip_symbolic_shape=True)
        if dynamic:
            quantize_dynamic(
                str(prepared),
                str(output),
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
            )
        else:
            if not calibration:
                raise ValueError("static quantisation needs --calibration videos or images")
            found = calibration_frames(calibration_files(calibration), frames)
            blobs = [model_inputs(frame, side, i) for i, frame in enumerate(found)]
            if not blobs:
                raise ValueError("calibration: no frames could be read")
            used = len(blobs)
            reader = _FrameReader(name, blobs, progress)
            quantize_static(
                str(prepared),
                str(output),
                reader,
                quant_format=QuantFormat.QDQ if fmt is Format.qdq else QuantFormat.QOperator,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                op_types_to_quantize=list(op_types) if op_types else None,
                calibrate_method={
                    Method.minmax: CalibrationMethod.MinMax,
                    Method.percentile: CalibrationMethod.Percentile,
                    Method.entropy: CalibrationMethod.Entropy,
                }[method],
                extra_options={"CalibTensorRangeSymmetric": False},
            )
    written = onnx.load(str(output))
    entry = written.metadata_props.add()
    entry.key = "loaxa_quantized"
    kind = "dynamic" if dynamic else f"static {fmt.value} {method.value} {used} frames"
    entry.value = f"{kind}{', 7-bit weights' if reduce_range else ''}"
    onnx.save(written, str(output))
    return QuantizeResult(
        output=output,
        input_mb=source.stat().st_size / 2**20,
        output_mb=output.stat().st_size / 2**20,
        calibration_frames=used,
        excluded_nodes=len(excluded),
        seconds=time.perf_counter() - start,
    )


@model_app.command("quantize")
def quantize_command(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="fp32 ONNX model")],
    output: Annotated[Path, typer.Argument(dir_okay=False, help="INT8 ONNX file to write")],
    calibration: Annotated[
        list[Path] | None,
        typer.Option(
            "--calibration",
            "-c",
            exists=True,
            help="Video, image or folder of them (repeatable); street scenes like the camera's.",
        ),
    ] = None,
    frames: Annotated[int, typer.Option(min=1, help="Calibration frames in total.")] = 64,
    dynamic: Annotated[
        bool, typer.Option(help="Dynamic quantisation: no calibration, weights only.")
    ] = False,
    per_channel: Annotated[bool, typer.Option(help="Per-channel weight scales.")] = True,
    fmt: Annotated[
        Format, typer.Option("--format", help="qdq (onnxruntime's choice) or qoperator.")
    ] = Format.qdq,
    method: Annotated[Method, typer.Option(help="Calibration of activation ranges.")] = (
        Method.minmax
    ),
    keep_tail: Annotated[
        bool, typer.Option(help="Keep the decoding tail and last convolutions fp32.")
    ] = True,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Node name to keep fp32 (repeatable).")
    ] = None,
    keep_op: Annotated[
        list[str] | None,
        typer.Option(help="Op type to keep fp32, e.g. MatMul, Softmax (attention; repeatable)."),
    ] = None,
    reduce_range: Annotated[
        bool,
        typer.Option(
            help="7-bit weights: exact on x86 CPUs without VNNI, where 8-bit ones saturate."
        ),
    ] = True,
    force: Annotated[bool, typer.Option(help="Overwrite OUTPUT.")] = False,
) -> None:
    """Write an INT8 copy of a helmet model; point helmet.model in the node config at it."""
    if output.exists() and not force:
        raise typer.BadParameter(f"{output} exists (use --force)", param_hint="OUTPUT")
    if not dynamic and not calibration:
        raise typer.BadParameter(
            "static quantisation needs --calibration (or use --dynamic)", param_hint="--calibration"
        )
    bar = Progress(
        TextColumn("calibration"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} frames"),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    )
    task = bar.add_task("calibration", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    try:
        with bar:
            result = quantize_model(
                source,
                output,
                calibration or [],
                frames=frames,
                dynamic=dynamic,
                per_channel=per_channel,
                fmt=fmt,
                method=method,
                keep_tail=keep_tail,
                exclude=exclude or [],
                keep_ops=keep_op or [],
                reduce_range=reduce_range,
                progress=update,
            )
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(
        f"wrote {result.output} ({result.output_mb:.1f} MB from {result.input_mb:.1f} MB; "
        f"{result.calibration_frames} calibration frames, {result.excluded_nodes} nodes kept "
        f"fp32, {result.seconds:.0f} s)"
    )
    typer.echo(f"set helmet.model: {result.output.resolve()} in the node config")
