"""Helmet second stage: features, weights, decisions, training and the packaged weights."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from devtools.camera.evaluation import evaluate_helmet, helmet_images
from edge.camera.helmet import Detection, HelmetDetector
from edge.camera.recheck import (
    FEATURE_VERSION,
    PACKAGED_WEIGHTS,
    HeadRecheck,
    RecheckWeights,
    Verdict,
    features,
    hog,
)

from .conftest import HELMET_DEV, SHARED, need

HELMET_TRAIN = SHARED / "data" / "helmet" / "train"
#: Without Helmet F1 of the packaged weights on dev: 0.642 when trained (docs/camera.md); the
#: band allows a box or two of float drift between onnxruntime builds, not a change of features.
PACKAGED_DEV_BAND = (0.62, 0.66)
#: The same from a quarter of helmet/train (test_retraining_from_shared_data_scores_in_band):
#: 0.667 measured (766 candidates, threshold 0.30); the band covers a few boxes either way.
RETRAIN_DEV_BAND = (0.60, 0.72)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (240, 320, 3), np.uint8)


def _weights(bias: tuple[float, float, float], n: int) -> RecheckWeights:
    """Weights that ignore the features and prefer one class by its bias."""
    return RecheckWeights(
        mean=np.zeros(n, np.float32),
        scale=np.ones(n, np.float32),
        coef=np.zeros((3, n), np.float32),
        intercept=np.array(bias, np.float32),
        threshold=0.5,
        candidate_confidence=0.05,
        nms_iou=0.6,
    )


def test_features_are_finite_and_fixed_length() -> None:
    image = _image()
    a = features(image, (10, 20, 60, 80), (0.2, 0.7))
    b = features(image, (300, 200, 330, 260), (0.0, 1.0))  # partly outside: clipped
    tiny = features(image, (5, 5, 5.5, 5.5), (0.5, 0.5))  # degenerate box still gives a row
    assert a.shape == b.shape == tiny.shape and a.dtype == np.float32
    assert np.isfinite(np.stack([a, b, tiny])).all()
    assert not np.allclose(a, b)


def test_hog_sees_edges_not_flat_grey() -> None:
    flat = np.full((32, 32), 128, np.uint8)
    assert np.allclose(hog(flat), 0)
    vertical = flat.copy()
    vertical[:, 16:] = 250
    h = hog(vertical).reshape(-1, 9)
    # a vertical edge has a horizontal gradient: orientation bin 0 dominates where it is seen
    assert (h.argmax(axis=1)[h.max(axis=1) > 0] == 0).all()


def test_weights_round_trip_and_refuse_other_feature_versions(tmp_path: Path) -> None:
    n = features(_image(), (10, 10, 50, 50), (0.5, 0.5)).shape[0]
    w = _weights((0.0, 1.0, 0.0), n)
    w.save(tmp_path / "w.npz")
    back = RecheckWeights.load(tmp_path / "w.npz")
    assert back.threshold == 0.5 and back.feature_version == FEATURE_VERSION
    assert np.array_equal(back.intercept, w.intercept)
    RecheckWeights(w.mean, w.scale, w.coef, w.intercept, 0.5, 0.05, 0.6, 99).save(
        tmp_path / "old.npz"
    )
    with pytest.raises(ValueError, match="retrain"):
        RecheckWeights.load(tmp_path / "old.npz")
    probs = w.probabilities(np.zeros((4, n), np.float32))
    assert np.allclose(probs.sum(axis=1), 1) and (probs.argmax(axis=1) == 1).all()


def test_decide_relabels_and_drops() -> None:
    image = _image(1)
    n = features(image, (0, 0, 10, 10), (0.5, 0.5)).shape[0]
    cands = [Detection((10, 10, 60, 70), 0, 0.9, (0.9, 0.05))]
    flipped = HeadRecheck(_weights((0.0, 3.0, 0.0), n)).decide(image, cands)
    assert [(d.cls, d.box) for d in flipped] == [(Verdict.WITHOUT_HELMET, cands[0].box)]
    assert flipped[0].confidence > 0.5 and flipped[0].scores == cands[0].scores
    assert HeadRecheck(_weights((0.0, 0.0, 3.0), n)).decide(image, cands) == []
    assert HeadRecheck(_weights((0.0, 3.0, 0.0), n)).decide(image, []) == []


def test_candidate_labels_and_source_groups() -> None:
    from devtools.camera.recheck_train import candidate_labels, source_group

    truths = [(1, np.array([10, 10, 50, 50], np.float32))]
    dets = [Detection((12, 12, 50, 52), 0, 0.4), Detection((100, 100, 140, 140), 1, 0.3)]
    assert candidate_labels(dets, truths) == [Verdict.WITHOUT_HELMET, Verdict.NOT_A_HEAD]
    assert candidate_labels(dets, []) == [Verdict.NOT_A_HEAD] * 2
    assert source_group("BikesHelmets12_png.rf.abc123.jpg") == "BikesHelmets12"
    assert source_group("1611_lovepik_copy2.jpg") == source_group("1611_lovepik.jpg")


def test_packaged_weights_load() -> None:
    recheck = HeadRecheck.from_file(PACKAGED_WEIGHTS)
    assert 0 < recheck.candidate_confidence < 0.25
    assert PACKAGED_WEIGHTS.stat().st_size < 1_000_000


def _small_train_folder(root: Path, count: int, step: int = 7) -> Path:
    """Up to ``count`` training pictures (symlinked), every ``step``-th, with their labels."""
    src = need(HELMET_TRAIN)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    chosen = 0
    for path in list(helmet_images(src))[::step]:
        label = src / "labels" / f"{path.stem}.txt"
        if not label.exists():
            continue
        (root / "images" / path.name).symlink_to(path)
        (root / "labels" / label.name).symlink_to(label)
        chosen += 1
        if chosen == count:
            break
    return root


def test_train_recheck_command_writes_usable_weights(shared_model, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from loaxa_cli import app

    folder = _small_train_folder(tmp_path / "crops", 24)
    out = tmp_path / "w.npz"
    args = ["model", "train-recheck", str(folder), str(out), "--model", str(shared_model)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "cross-validated Without Helmet F1" in result.output
    recheck = HeadRecheck.from_file(out)
    image = cv2.imread(str(next(iter(helmet_images(folder)))))
    dets = HelmetDetector(shared_model, recheck=recheck).detect(image)
    assert all(d.cls in (0, 1) and d.confidence >= recheck.weights.threshold for d in dets)
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "exists" in again.output


@pytest.mark.slow
def test_packaged_weights_score_band(shared_model) -> None:
    """The committed weights, with today's features and detector, score what was measured."""
    detector = HelmetDetector(shared_model, recheck=HeadRecheck.from_file(PACKAGED_WEIGHTS))
    score = evaluate_helmet(need(HELMET_DEV), detector).per_class["without_helmet"]
    low, high = PACKAGED_DEV_BAND
    assert low <= score.f1 <= high, score


@pytest.mark.slow
def test_retraining_from_shared_data_scores_in_band(shared_model, tmp_path: Path) -> None:
    """A quarter of helmet/train, retrained from scratch, lands in the stated dev band.

    The packaged weights come from all 1,224 pictures (6 min here); a quarter keeps the test
    near a minute.  Band: RETRAIN_DEV_BAND, measured when the weights were made.
    """
    pytest.importorskip("sklearn")
    from devtools.camera.recheck_train import collect_samples, train

    folder = _small_train_folder(tmp_path / "quarter", 10_000, step=4)
    detector = HelmetDetector(shared_model, threads=2)
    samples = collect_samples(folder, detector, 0.03, 0.6)
    weights, cv_f1 = train(samples, 0.03, 0.6)
    assert 0.0 < cv_f1 < 1.0 and 0.05 <= weights.threshold <= 0.8
    detector.recheck = HeadRecheck(weights)
    score = evaluate_helmet(need(HELMET_DEV), detector).per_class["without_helmet"]
    low, high = RETRAIN_DEV_BAND
    assert low <= score.f1 <= high, score


def test_node_config_wires_the_second_stage(shared_model, tmp_path: Path) -> None:
    from edge.camera.pipeline import load_helmet_detector
    from firmware_config.camera import CameraConfig

    def config(recheck: Path | None) -> CameraConfig:
        helmet = {"model": shared_model, "recheck": recheck}
        return CameraConfig(id="gate", source="0", helmet=helmet)

    assert load_helmet_detector(config(None)).recheck is None
    wired = load_helmet_detector(config(PACKAGED_WEIGHTS))
    assert wired is not None and wired.recheck is not None
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not weights")
    alone = load_helmet_detector(config(bad))  # unusable weights: the detector decides alone
    assert alone is not None and alone.recheck is None


def test_training_maths_on_separable_rows() -> None:
    """Two kinds of head only (no 'not a head'): the binary fit still gives three verdicts."""
    pytest.importorskip("sklearn")
    from devtools.camera.recheck_train import Samples, train

    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.normal(-2, 1, (40, 5)), rng.normal(2, 1, (40, 5))])
    labels = np.array([0] * 40 + [1] * 40)
    names = [f"pic{i // 2}_copy{i % 2}.jpg" for i in range(80)]  # copies share a source
    dets = [Detection((0, 0, 10, 10), 0, 0.5)] * 80
    truths = {n: [] for n in names}
    for n, label in zip(names, labels, strict=True):
        truths[n].append((int(label), np.array([0, 0, 10, 10], np.float32)))
    weights, cv_f1 = train(Samples(rows.astype(np.float32), labels, names, dets, truths), 0.05, 0.6)
    probs = weights.probabilities(rows.astype(np.float32))
    assert (probs.argmax(axis=1) == labels).mean() > 0.95 and cv_f1 > 0.9
    assert probs[:, Verdict.NOT_A_HEAD].max() < 1e-6
