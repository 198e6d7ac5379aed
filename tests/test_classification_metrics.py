"""classification_metrics against hand computation and brute-force references (no sklearn)."""

import math

import numpy as np
import pytest
import torch

from hf_add.classification_metrics import (
    average_precision,
    classification_metrics,
    confusion_matrix,
    macro_f1,
    mean_average_precision,
    multi_label_f1,
    multi_label_metrics,
    per_class_accuracy,
)

# 3 classes; worked by hand below.
LABELS = [0, 0, 0, 1, 1, 2, 2, 2, 2]
PREDICTIONS = [0, 1, 0, 1, 2, 2, 2, 0, 1]


def test_confusion_matrix_rows_are_true_classes():
    assert confusion_matrix(LABELS, PREDICTIONS) == [[2, 1, 0], [0, 1, 1], [1, 1, 2]]
    # torch in, same answer; num_classes adds an empty class
    assert confusion_matrix(torch.tensor(LABELS), torch.tensor(PREDICTIONS), num_classes=4)[3] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="class ids must lie in"):
        confusion_matrix(LABELS, PREDICTIONS, num_classes=2)


def test_per_class_accuracy_by_name_and_none_for_absent_class():
    accuracy = per_class_accuracy(LABELS, PREDICTIONS, ["yes", "no", "up", "down"])
    assert accuracy == {"yes": 2 / 3, "no": 1 / 2, "up": 2 / 4, "down": None}


def test_macro_f1_by_hand():
    # class 0: TP 2, FP 1, FN 1 -> 4/6; class 1: TP 1, FP 2, FN 1 -> 2/5; class 2: TP 2, FP 1, FN 2 -> 4/7
    assert macro_f1(LABELS, PREDICTIONS) == pytest.approx((4 / 6 + 2 / 5 + 4 / 7) / 3, abs=1e-12)


def test_macro_f1_counts_predicted_only_classes_as_zero_and_skips_absent_ones():
    # classes seen: 0 (F1 2/3), 1 (F1 1), 3 (predicted, never true: F1 0); class 2 neither: left out
    assert macro_f1([0, 0, 1], [0, 3, 1]) == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-12)


def test_classification_metrics_bundle():
    result = classification_metrics(np.array(LABELS), np.array(PREDICTIONS), ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(5 / 9)
    assert result["confusion_matrix"][2] == [1, 1, 2]
    assert result["per_class_accuracy"]["b"] == 0.5
    with pytest.raises(ValueError, match="integer class ids"):
        classification_metrics([0.0, 1.0], [0, 1], ["a", "b"])


# ---- average precision ----


def _ap_reference(targets, scores):
    """The definition looped over thresholds: Σ (R_n - R_{n-1}) P_n, positive = score >= t."""
    targets, scores = np.asarray(targets, bool), np.asarray(scores, float)
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        flagged = scores >= threshold
        precision = (flagged & targets).sum() / flagged.sum()
        recall = (flagged & targets).sum() / targets.sum()
        total += (recall - previous_recall) * precision
        previous_recall = recall
    return total


def test_average_precision_by_hand_with_a_tie():
    # thresholds .9: P 1, R 1/3; .8 (one positive tied with one negative): P 2/3, R 2/3; .3: no recall gain;
    # .1: P 3/5, R 1  ->  1/3 + (1/3)(2/3) + (1/3)(3/5) = 34/45
    expected = 34 / 45
    assert average_precision([1, 0, 1, 0, 1], [0.9, 0.8, 0.8, 0.3, 0.1]) == pytest.approx(expected, abs=1e-12)
    # the order of the tied items does not matter (positive-first would give 13/15, negative-first 34/45)
    assert average_precision([1, 1, 0, 0, 1], [0.9, 0.8, 0.8, 0.3, 0.1]) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(average_precision([0, 0], [0.1, 0.2]))


def test_average_precision_matches_the_threshold_loop_on_random_tied_scores():
    rng = np.random.default_rng(0)
    for _ in range(20):
        targets = rng.integers(0, 2, size=30)
        targets[0] = 1
        scores = rng.integers(0, 6, size=30) / 5.0  # many ties
        assert average_precision(targets, scores) == pytest.approx(_ap_reference(targets, scores), abs=1e-12)


def test_map_skips_and_counts_classes_without_positives():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.5], [0.8, 0.3, 0.5], [0.3, 0.4, 0.5], [0.1, 0.5, 0.5]])
    # class 0: 34/45 (above); class 1: its positive ranks 4th -> 1/4; class 2: no positive, skipped
    result = mean_average_precision(targets, scores)
    assert result["map"] == pytest.approx((34 / 45 + 1 / 4) / 2, abs=1e-12)
    assert result["num_classes_without_positives"] == 1


# ---- multi-label F1 ----

TARGETS = [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
PROBABILITIES = [[0.9, 0.6, 0.1], [0.4, 0.7, 0.2], [0.5, 0.2, 0.3]]


def test_multi_label_f1_by_hand():
    # predicted (p > 0.5; 0.5 itself is not): [[1,1,0],[0,1,0],[0,0,0]]
    # class 0: TP 1, FN 1 -> 2/3; class 1: TP 1, FP 1 -> 2/3; class 2: nothing -> 0 (zero_division=0)
    # micro: TP 2, FP 1, FN 1 -> 4/6
    result = multi_label_f1(TARGETS, PROBABILITIES)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3, abs=1e-12)
    assert result["micro_f1"] == pytest.approx(4 / 6, abs=1e-12)


def test_multi_label_metrics_from_logits():
    logits = np.log(np.array(PROBABILITIES) / (1 - np.array(PROBABILITIES)))
    result = multi_label_metrics(torch.tensor(TARGETS), torch.tensor(logits))
    assert result["micro_f1"] == pytest.approx(4 / 6, abs=1e-12)
    assert result["num_classes_without_positives"] == 1
    # class 0: positives at .9 and .4 among .9, .4, .5 -> 1/2 + (1/2)(2/3); class 1: one positive on top -> 1
    assert result["map"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 2, abs=1e-12)
    with pytest.raises(ValueError, match="multi-hot"):
        multi_label_f1([[2, 0]], [[0.1, 0.2]])
