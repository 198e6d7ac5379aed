"""Tests of ``embedding_geometry`` against hand-computed distances of points at 0°, 45°, 90° and 180°."""

from __future__ import annotations

import math

import pytest
import torch

from hf_add.geometry import embedding_geometry

# Cosine distances d = 1 - cos of the four points (z1 = (1, 1) is at 45°, so its cosines are ±1/√2):
# d01 = 1 - 1/√2, d02 = 1, d03 = 2, d12 = 1 - 1/√2, d13 = 1 + 1/√2, d23 = 1.
FOUR_POINTS = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
R = 1 / math.sqrt(2)


def test_two_classes_by_hand():
    geometry = embedding_geometry(FOUR_POINTS, torch.tensor([0, 0, 1, 1]))
    # Within class 0: the ordered pairs (0,1), (1,0) are one distance, d = 1 - 1/√2, so no CV; class 1: d23 = 1.
    # Between the classes: d02 = 1, d03 = 2, d12 = 1 - 1/√2, d13 = 1 + 1/√2, mean 5/4; deviations
    # -1/4, 3/4, -1/4 - 1/√2, -1/4 + 1/√2, squares summing to 1/16 + 9/16 + 1/16 + 1/16 + 1/2 + 1/2 = 7/4,
    # sample variance 7/12.
    inter_cv = math.sqrt(7 / 12) / (5 / 4)
    expected_mean = torch.tensor([[1 - R, 5 / 4], [5 / 4, 1.0]])
    expected_cv = torch.tensor([[math.nan, inter_cv], [inter_cv, math.nan]])
    torch.testing.assert_close(geometry.mean_distance, expected_mean)
    torch.testing.assert_close(geometry.cv_distance, expected_cv, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert geometry.pair_counts.tolist() == [[2, 4], [4, 2]]
    assert geometry.intra_class_mean_distance == pytest.approx((1 - R + 1) / 2, rel=1e-6)
    assert math.isnan(geometry.intra_class_cv)  # no class has two distinct intra-class distances
    assert geometry.inter_class_mean_distance == pytest.approx(5 / 4, rel=1e-6)
    assert geometry.inter_class_pair_cv == pytest.approx(inter_cv, rel=1e-5)
    assert math.isnan(geometry.inter_class_cv)  # one class pair: no spread of means


def test_single_sample_classes_give_nan_cells_but_finite_summaries():
    geometry = embedding_geometry(FOUR_POINTS, torch.tensor([0, 0, 1, 2]))
    # Class pair means: (0,1) = (d02 + d12)/2 = 1 - a, (0,2) = (d03 + d13)/2 = 3/2 + a, (1,2) = d23 = 1,
    # with a = 1/(2√2). Their mean is 7/6, deviations -1/6 - a, 1/3 + a, -1/6, squares summing to
    # 1/6 + a + 2a² = 5/12 + a; sample variance (5/12 + a)/2.
    a = 1 / (2 * math.sqrt(2))
    # Pair CVs: (0,1) {1, 1 - 1/√2}: std (1/√2)/√2 = 1/2; (0,2) {2, 1 + 1/√2}: std (1 - 1/√2)/√2;
    # (1,2) has one pair: NaN, skipped.
    cv01 = 0.5 / (1 - a)
    cv02 = (1 - R) / math.sqrt(2) / (3 / 2 + a)
    mean = geometry.mean_distance
    assert math.isnan(mean[1, 1]) and math.isnan(mean[2, 2])
    assert torch.isnan(geometry.cv_distance.diagonal()).all()
    assert geometry.intra_class_mean_distance == pytest.approx(1 - R, rel=1e-6)
    assert math.isnan(geometry.intra_class_cv)
    assert geometry.inter_class_mean_distance == pytest.approx(7 / 6, rel=1e-6)
    assert geometry.inter_class_pair_cv == pytest.approx((cv01 + cv02) / 2, rel=1e-5)
    assert geometry.inter_class_cv == pytest.approx(math.sqrt((5 / 12 + a) / 2) / (7 / 6), rel=1e-5)


def test_chunked_equals_unchunked():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(23, 6, generator=generator)
    labels = torch.randint(0, 4, (23,), generator=generator)
    whole = embedding_geometry(z, labels, chunk_size=512)
    chunked = embedding_geometry(z, labels, chunk_size=3)
    for name in ("mean_distance", "cv_distance", "pair_counts"):
        torch.testing.assert_close(
            getattr(chunked, name), getattr(whole, name), rtol=1e-6, atol=1e-7, equal_nan=True
        )
    for name, value in whole.summaries().items():
        assert getattr(chunked, name) == pytest.approx(value, rel=1e-6, nan_ok=True), name


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (torch.tensor([0, 1, 0]), {}, "expected embeddings"),
        (torch.tensor([0.0, 1.0, 0.0, 1.0]), {}, "integer class ids"),
        (torch.tensor([0, 1, 2, 3]), {"num_classes": 3}, r"class ids must lie in \[0, 3\)"),
        (torch.tensor([0, -1, 0, 1]), {}, "class ids must lie"),
    ],
    ids=["length", "float", "out-of-range", "negative"],
)
def test_geometry_rejects_bad_input(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        embedding_geometry(FOUR_POINTS, labels, **kwargs)


def test_intra_class_cv_of_a_class_of_three_by_hand():
    """Three samples of one class: distances d01 = 1 - 1/√2, d02 = 1, d12 = 1 - 1/√2, each twice (ordered)."""
    geometry = embedding_geometry(FOUR_POINTS, torch.tensor([0, 0, 0, 1]))
    values = torch.tensor([1 - R, 1.0, 1 - R] * 2, dtype=torch.float64)
    expected = (values.std() / values.mean()).item()
    assert geometry.cv_distance[0, 0].item() == pytest.approx(expected, rel=1e-5)
    assert geometry.intra_class_cv == pytest.approx(expected, rel=1e-5)  # class 1 (one sample) is skipped
