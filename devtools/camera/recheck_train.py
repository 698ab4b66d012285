"""``loaxa model train-recheck`` / ``eval-recheck``: the helmet second stage's weights.

Training reads a YOLO-labelled folder (``images/``, ``labels/``; e.g. a commune's own camera
crops labelled with any YOLO tool, or ``shared/data/helmet/train``): the detector proposes
candidates on every image exactly as the node does with a second stage (score ≥
``candidate_confidence``, class-agnostic NMS), each candidate takes the class of the label
box it overlaps at IoU ≥ 0.5 or *not a head*, and a multinomial logistic regression
(scikit-learn, the ``train`` extra) is fitted on :func:`edge.camera.recheck.features`.  The
keep threshold is chosen on out-of-fold predictions of the training folder itself, folds
grouped by source picture (augmented copies stay in one fold), maximising Without Helmet F1:
nothing is tuned on an evaluation set.  The node loads the ``.npz`` with numpy only.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from devtools.camera.evaluation import (
    PRF,
    evaluate_helmet,
    helmet_images,
    match_class,
    read_yolo_labels,
)
from edge.camera.geometry import iou_matrix
from edge.camera.helmet import CLASS_NAMES, Detection, HelmetDetector
from edge.camera.recheck import FEATURE_VERSION, HeadRecheck, RecheckWeights, Verdict, features

_err = Console(stderr=True)
MATCH_IOU = 0.5
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.81, 0.05))
#: Copies of one source picture: "X_png.rf.HASH", "X_jpg…", "X_copy2" share the group "X".
_SOURCE = re.compile(r"_png|_jpg|\.rf\.|_copy")

Progress_ = Callable[[int, int], None]


@dataclass(slots=True)
class Samples:
    """Feature rows of every candidate, its label, and where it came from."""

    rows: np.ndarray
    labels: np.ndarray
    images: list[str]
    detections: list[Detection]
    truths: dict[str, list[tuple[int, np.ndarray]]]


def source_group(name: str) -> str:
    """The source picture an (augmented) image file was made from."""
    return _SOURCE.split(Path(name).stem)[0]


def candidate_labels(dets: Sequence[Detection], truths: list[tuple[int, np.ndarray]]) -> list[int]:
    """Each candidate's class: the label box it overlaps best at IoU ≥ 0.5, else not a head."""
    if not dets:
        return []
    if not truths:
        return [Verdict.NOT_A_HEAD] * len(dets)
    ious = iou_matrix(np.array([d.box for d in dets], np.float32), np.stack([b for _, b in truths]))
    best = ious.argmax(axis=1)
    return [
        truths[j][0] if ious[i, j] >= MATCH_IOU else Verdict.NOT_A_HEAD
        for i, j in enumerate(best)
    ]


def collect_samples(
    root: Path,
    detector: HelmetDetector,
    candidate_confidence: float,
    nms_iou: float,
    progress: Progress_ = lambda done, total: None,
) -> Samples:
    """Run the detector on every image of a YOLO folder; features and labels of candidates."""
    paths = list(helmet_images(root))
    rows: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    found: list[Detection] = []
    truths: dict[str, list[tuple[int, np.ndarray]]] = {}
    for i, path in enumerate(paths, 1):
        image = cv2.imread(str(path))
        if image is None:
            raise FileNotFoundError(f"{path.name} unreadable")
        h, w = image.shape[:2]
        gt = read_yolo_labels(Path(root) / "labels" / f"{path.stem}.txt", w, h)
        truths[path.name] = gt
        dets = detector.candidates(image, candidate_confidence, nms_iou)
        for det, label in zip(dets, candidate_labels(dets, gt), strict=True):
            rows.append(features(image, det.box, det.scores))
            labels.append(int(label))
            names.append(path.name)
            found.append(det)
        progress(i, len(paths))
    if not rows:
        raise ValueError(f"the detector found no candidates in {root}")
    return Samples(np.stack(rows), np.array(labels), names, found, truths)


Fitted = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _fit(rows: np.ndarray, labels: np.ndarray, c: float, seed: int) -> Fitted:
    """Standardisation and softmax weights over all three verdicts (absent ones never win)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(rows)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    model.fit((rows - scaler.mean_) / scale, labels)
    coef = np.zeros((len(Verdict), rows.shape[1]))
    intercept = np.full(len(Verdict), -1e9)
    classes = list(model.classes_)
    if len(classes) == 2:  # binary: sigmoid(w·x + b) is the softmax of (0, w·x + b)
        coef[classes[1]], intercept[classes[1]] = model.coef_[0], model.intercept_[0]
        intercept[classes[0]] = 0.0
    else:
        for k, cls in enumerate(classes):
            coef[cls], intercept[cls] = model.coef_[k], model.intercept_[k]
    return scaler.mean_, scale, coef, intercept


def without_f1(samples: Samples, probs: np.ndarray, threshold: float) -> PRF:
    """Without Helmet precision/recall over the images, with the candidates re-decided."""
    acc = PRF()
    per_image: dict[str, list[Detection]] = {}
    for i in range(len(samples.labels)):
        p = probs[i]
        cls = int(p[:2].argmax())
        if cls == Verdict.WITHOUT_HELMET and p[cls] >= threshold:
            per_image.setdefault(samples.images[i], []).append(
                Detection(samples.detections[i].box, cls, float(p[cls]))
            )
    for name in samples.truths:
        truth = [b for c, b in samples.truths[name] if c == Verdict.WITHOUT_HELMET]
        match_class(per_image.get(name, []), truth, acc, MATCH_IOU)
    return acc


def choose_threshold(samples: Samples, c: float, folds: int, seed: int) -> tuple[float, float]:
    """Keep threshold maximising out-of-fold Without Helmet F1 (folds grouped by source)."""
    groups = np.array([source_group(n) for n in samples.images])
    unique = np.unique(groups)
    folds = min(folds, len(unique))
    if folds < 2 or len(np.unique(samples.labels)) < 2:
        raise ValueError("too few labelled heads to train: need several pictures of both kinds")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {g: k % folds for k, g in zip(order, unique, strict=True)}
    fold = np.array([fold_of[g] for g in groups])
    probs = np.zeros((len(samples.labels), len(Verdict)))
    for k in range(folds):
        test = fold == k
        if len(np.unique(samples.labels[~test])) < 2:
            raise ValueError(f"fold {k + 1} of {folds} holds a single kind of head: add pictures")
        mean, scale, coef, intercept = _fit(samples.rows[~test], samples.labels[~test], c, seed)
        w = RecheckWeights(mean, scale, coef, intercept, 0.5, 0.0, 0.0)
        probs[test] = w.probabilities(samples.rows[test])
    scored = [(without_f1(samples, probs, t).f1, t) for t in THRESHOLDS]
    best_f1, best_t = max(scored)
    return best_t, best_f1


def train(
    samples: Samples,
    candidate_confidence: float,
    nms_iou: float,
    c: float = 0.01,
    folds: int = 5,
    seed: int = 0,
) -> tuple[RecheckWeights, float]:
    """Weights on all samples, with the cross-validated threshold; returns (weights, cv F1)."""
    threshold, cv_f1 = choose_threshold(samples, c, folds, seed)
    mean, scale, coef, intercept = _fit(samples.rows, samples.labels, c, seed)
    weights = RecheckWeights(
        mean.astype(np.float32),
        scale.astype(np.float32),
        coef.astype(np.float32),
        intercept.astype(np.float32),
        threshold,
        candidate_confidence,
        nms_iou,
        FEATURE_VERSION,
    )
    return weights, cv_f1


def _bar(label: str) -> tuple[Progress, Progress_]:
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} images"),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    )
    task = bar.add_task(label, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


ModelOpt = Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Detector ONNX model")]
FolderArg = Annotated[
    Path, typer.Argument(exists=True, file_okay=False, help="YOLO folder: images/, labels/")
]


def train_recheck_command(
    folder: FolderArg,
    output: Annotated[Path, typer.Argument(dir_okay=False, help=".npz weights to write")],
    model: ModelOpt,
    candidate_confidence: Annotated[
        float, typer.Option(min=0.001, max=0.9, help="Detector score floor for candidates.")
    ] = 0.03,
    nms_iou: Annotated[float, typer.Option(min=0.1, max=0.95, help="Candidates' NMS.")] = 0.6,
    c: Annotated[float, typer.Option("--c", min=1e-5, help="Inverse L2 strength.")] = 0.01,
    threads: Annotated[int, typer.Option(min=1, help="Detector threads.")] = 1,
    force: Annotated[bool, typer.Option(help="Overwrite OUTPUT.")] = False,
) -> None:
    """Train the helmet second stage on labelled crops; set helmet.recheck to the output."""
    if output.exists() and not force:
        raise typer.BadParameter(f"{output} exists (use --force)", param_hint="OUTPUT")
    if importlib.util.find_spec("sklearn") is None:
        raise typer.BadParameter("training needs scikit-learn: pip install 'loaxa[train]'")
    detector = HelmetDetector(model, threads=threads)
    bar, update = _bar("candidates")
    try:
        with bar:
            samples = collect_samples(folder, detector, candidate_confidence, nms_iou, update)
        weights, cv_f1 = train(samples, candidate_confidence, nms_iou, c)
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    output.parent.mkdir(parents=True, exist_ok=True)
    weights.save(output)
    counts = np.bincount(samples.labels, minlength=len(Verdict))
    typer.echo(
        f"wrote {output}: {len(samples.labels)} candidates (with {counts[0]}, without "
        f"{counts[1]}, not a head {counts[2]}); threshold {weights.threshold:.2f}, "
        f"cross-validated Without Helmet F1 {cv_f1:.3f}"
    )
    typer.echo(f"set helmet.recheck: {output.resolve()} in the node config")


def eval_recheck_command(
    folder: FolderArg,
    model: ModelOpt,
    weights: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help=".npz second-stage weights")
    ],
    threads: Annotated[int, typer.Option(min=1, help="Detector threads.")] = 1,
) -> None:
    """Score detector + second stage on a YOLO folder (as ``loaxa eval helmet`` does)."""
    detector = HelmetDetector(model, threads=threads, recheck=HeadRecheck.from_file(weights))
    bar, update = _bar("helmet")
    with bar:
        score = evaluate_helmet(folder, detector, progress=update)
    typer.echo(f"images {score.images}  ms/image {score.ms_per_image:.1f}")
    for name in CLASS_NAMES:
        prf = score.per_class[name]
        typer.echo(
            f"{name:15s} precision {prf.precision:.4f}  recall {prf.recall:.4f}  "
            f"F1 {prf.f1:.4f}  (tp {prf.tp} fp {prf.fp} fn {prf.fn})"
        )
