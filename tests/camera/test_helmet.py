"""Helmet detector: letterbox/decode/NMS maths, and accuracy on the shared dev set."""

from __future__ import annotations

import numpy as np

from devtools.camera.evaluation import evaluate_helmet
from edge.camera.helmet import HelmetDetector, Letterbox, decode, letterbox, nms

from .conftest import HELMET_DEV, need


def test_letterbox_pads_evenly() -> None:
    img = np.zeros((540, 960, 3), np.uint8)
    padded, lb = letterbox(img, 320)
    assert padded.shape == (320, 320, 3)
    assert abs(lb.r - 1 / 3) < 1e-9 and lb.left == 0 and lb.top == 70
    assert padded[0, 0, 0] == 114 and padded[160, 160, 0] == 0


def test_decode_maps_back_to_image_pixels() -> None:
    out = np.zeros((1, 6, 3), np.float32)
    # candidate 0: a 'without' head at input (100, 120) size 30x30; 1: same, weaker; 2: too weak
    out[0, :, 0] = [100, 120, 30, 30, 0.1, 0.9]
    out[0, :, 1] = [101, 121, 30, 30, 0.1, 0.6]
    out[0, :, 2] = [200, 200, 20, 20, 0.1, 0.1]
    lb = Letterbox(r=0.5, left=0, top=40)
    dets = decode(out, lb, 640, 480, conf=0.25, iou=0.7, agnostic=False)
    assert len(dets) == 1 and dets[0].cls == 1 and dets[0].label == "without_helmet"
    assert np.allclose(dets[0].box, (170, 130, 230, 190))


def test_class_agnostic_nms_merges_classes() -> None:
    out = np.zeros((1, 6, 2), np.float32)
    out[0, :, 0] = [50, 50, 20, 20, 0.8, 0.0]
    out[0, :, 1] = [50, 50, 20, 20, 0.0, 0.5]
    lb = Letterbox(1.0, 0, 0)
    assert len(decode(out, lb, 100, 100, 0.25, 0.7, agnostic=False)) == 2
    assert len(decode(out, lb, 100, 100, 0.25, 0.7, agnostic=True)) == 1


def test_nms_keeps_separate_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5)
    assert list(keep) == [0, 2]


def test_dev_set_without_helmet_f1(shared_model) -> None:
    score = evaluate_helmet(need(HELMET_DEV), HelmetDetector(shared_model))
    # the plain model (whole image, 320, conf 0.25, NMS 0.7) scores about 0.76 here
    assert score.per_class["without_helmet"].f1 >= 0.75, score.per_class
    assert score.per_class["with_helmet"].f1 >= 0.75
