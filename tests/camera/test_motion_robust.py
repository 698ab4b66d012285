"""Motion under bad light, and the evaluator on any CDnet-layout folder."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from devtools.camera.cli import eval_app
from devtools.camera.evaluation import CdnetSequence, evaluate_motion
from devtools.camera.perturb import LIGHTING, PERTURBATIONS
from edge.camera.geometry import boxes_mask
from edge.camera.motion import MotionDetector

from .conftest import CDNET, SHARED, need

NUISANCE = SHARED / "data" / "nuisance"


def test_evaluator_reads_subsets_starting_above_1() -> None:
    root = need(NUISANCE / "camerajitter-traffic")
    seq = CdnetSequence.open(root)
    assert seq.numbers[0] == 950 and (seq.first, seq.last) == (970, 1050)
    score = evaluate_motion(root)
    assert score.frames == 101 and score.pixel.tp > 0


def test_cli_reads_a_subset_and_errors_are_one_line(tmp_path) -> None:
    runner = CliRunner()
    ok = runner.invoke(eval_app, ["motion", str(need(NUISANCE / "ucsd-rain")), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output.strip().splitlines()[-1])["frames"] == 14
    (tmp_path / "input").mkdir()
    for args in (["motion", str(tmp_path)], ["objects", str(tmp_path)]):
        bad = runner.invoke(eval_app, args)
        assert bad.exit_code == 2
        lines = [line for line in bad.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in bad.output, bad.output


def test_lighting_faults_do_not_fire_across_the_frame() -> None:
    """Drift and a sudden dimming to 65 % (and back) over the highway: no frame is covered
    by motion boxes over half its area, and cars are found again within a second."""
    seq = CdnetSequence.open(need(CDNET))
    rng = np.random.default_rng(0)
    frames = [seq.frame(n) for n in range(500, 960)]
    for name in LIGHTING:
        detector = MotionDetector()
        covered, found_after = [], []
        for n, image in zip(range(500, 960), frames, strict=True):
            result = detector.detect(PERTURBATIONS[name](image, n, rng), n / 30)
            h, w = image.shape
            covered.append(np.count_nonzero(boxes_mask(result.boxes, w, h)) / (h * w))
            if n in range(715, 760) or n in range(890, 935):  # after the light returns, in the dark
                found_after.append(result.active)
        assert max(covered) < 0.5, (name, max(covered))
        assert any(found_after), name
