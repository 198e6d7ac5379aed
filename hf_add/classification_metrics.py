"""Classification metrics from class ids or scores: per-class accuracy, confusion matrix, F1, mAP.

Pure functions: torch tensors, numpy arrays or lists in; plain Python floats, ints, lists and dicts out, so
results go to JSON as they are. Single-label inputs are class ids (N,); multi-label inputs are multi-hot
targets (N, C) with scores or logits (N, C). The definitions follow scikit-learn's (named in each docstring) so
numbers can be compared with papers that used it; sklearn itself is not a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _class_ids(labels, predictions) -> tuple[np.ndarray, np.ndarray]:
    labels, predictions = _as_numpy(labels), _as_numpy(predictions)
    if labels.ndim != 1 or labels.shape != predictions.shape:
        raise ValueError(
            f"expected class ids of shape (N,) for labels and predictions, got {labels.shape} and "
            f"{predictions.shape}"
        )
    for name, ids in (("labels", labels), ("predictions", predictions)):
        if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0):
            raise ValueError(f"{name} must be non-negative integer class ids, got dtype {ids.dtype}")
    return labels.astype(np.int64), predictions.astype(np.int64)


def confusion_matrix(labels, predictions, num_classes: int | None = None) -> list[list[int]]:
    """Counts of (true class, predicted class): ``matrix[a][b]`` = #{i : y_i = a, ŷ_i = b}.

    Rows are true classes and columns predicted classes, both in class-id order (sklearn's convention), so the
    diagonal holds the correct predictions and row a sums to the support of class a.

    Args:
        labels: (N,) true class ids.
        predictions: (N,) predicted class ids.
        num_classes: C; defaults to 1 + the largest id in either.

    Example::

        >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1])
        [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    """
    labels, predictions = _class_ids(labels, predictions)
    if num_classes is None:
        num_classes = int(max(labels.max(initial=-1), predictions.max(initial=-1))) + 1
    largest = int(max(labels.max(initial=-1), predictions.max(initial=-1)))
    if largest >= num_classes:
        raise ValueError(f"class ids must lie in [0, {num_classes}), got id {largest}")
    counts = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).tolist()


def per_class_accuracy(labels, predictions, class_names: Sequence[str]) -> dict[str, float | None]:
    """The accuracy on each class (its recall): #{y_i = c, ŷ_i = c} / #{y_i = c}, keyed by class name.

    ``class_names[c]`` names class id c. A class without evaluation samples has no accuracy: its value is
    None (JSON null), not 0, so an absent class is not read as a failed one.

    Example::

        >>> per_class_accuracy([0, 0, 1], [0, 1, 1], ["yes", "no", "up"])
        {'yes': 0.5, 'no': 1.0, 'up': None}
    """
    matrix = np.asarray(confusion_matrix(labels, predictions, num_classes=len(class_names)))
    support = matrix.sum(axis=1)
    return {
        str(name): (float(matrix[c, c] / support[c]) if support[c] else None)
        for c, name in enumerate(class_names)
    }


def _f1_per_class(true_positives, false_positives, false_negatives) -> np.ndarray:
    # F1 = 2TP / (2TP + FP + FN); 0 where the denominator is 0 (sklearn's zero_division=0).
    denominator = 2 * true_positives + false_positives + false_negatives
    return np.divide(
        2.0 * true_positives,
        denominator,
        out=np.zeros(np.shape(denominator), dtype=np.float64),
        where=denominator > 0,
    )


def macro_f1(labels, predictions) -> float:
    """The unweighted mean over classes of F1 = 2·TP / (2·TP + FP + FN) (sklearn ``f1_score(average="macro")``).

    The mean runs over the classes that occur among the labels or the predictions (sklearn's default
    ``labels=None``): a class predicted but never true has TP = 0 and counts as F1 = 0 (sklearn's
    ``zero_division=0``); a class neither true nor predicted in this evaluation is left out, so the result
    does not depend on classes the evaluation data does not contain.

    Example::

        >>> macro_f1([0, 0, 1, 1], [0, 1, 1, 1])  # class 0: 2/3, class 1: 4/5
        0.7333333333333334
    """
    labels, predictions = _class_ids(labels, predictions)
    if labels.size == 0:
        return float("nan")
    matrix = np.asarray(confusion_matrix(labels, predictions))
    true_positives = np.diag(matrix)
    f1 = _f1_per_class(
        true_positives, matrix.sum(axis=0) - true_positives, matrix.sum(axis=1) - true_positives
    )
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    return float(f1[present].mean())


def classification_metrics(labels, predictions, class_names: Sequence[str]) -> dict:
    """Accuracy, macro F1, per-class accuracy and the confusion matrix of single-label predictions.

    Returns {"accuracy", "macro_f1", "per_class_accuracy": {name: value | None}, "confusion_matrix":
    [[int]] (rows true, columns predicted, class-id order), "class_names"}.
    """
    labels, predictions = _class_ids(labels, predictions)
    return {
        "accuracy": float((labels == predictions).mean()) if labels.size else float("nan"),
        "macro_f1": macro_f1(labels, predictions),
        "per_class_accuracy": per_class_accuracy(labels, predictions, class_names),
        "confusion_matrix": confusion_matrix(labels, predictions, num_classes=len(class_names)),
        "class_names": [str(name) for name in class_names],
    }


# ---- multi-label ----


def _multi_label(targets, scores) -> tuple[np.ndarray, np.ndarray]:
    targets, scores = _as_numpy(targets), _as_numpy(scores).astype(np.float64)
    if targets.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(
            f"expected multi-hot targets and scores of the same shape (N, C), got {targets.shape} and "
            f"{scores.shape}"
        )
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("targets must be multi-hot: every entry 0 or 1")
    return targets.astype(bool), scores


def average_precision(targets, scores) -> float:
    """Average precision of one class: AP = Σ_n (R_n − R_{n−1}) · P_n (sklearn ``average_precision_score``).

    The sum runs over the distinct score values t_n in decreasing order; P_n and R_n are the precision and
    recall of predicting "positive" for every score ≥ t_n, and R_0 = 0. It is the step-wise area under the
    precision-recall curve, with no interpolation. Ties: items with equal scores enter together at one
    threshold, so AP does not depend on their order (a positive tied with a negative gets the precision
    of the pair, not of either order). NaN when there is no positive.

    Example::

        >>> average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])  # (1/2)·1 + (1/2)·(2/3)
        0.8333333333333333
    """
    targets, scores = _as_numpy(targets).astype(bool).ravel(), _as_numpy(scores).astype(np.float64).ravel()
    if targets.shape != scores.shape:
        raise ValueError(f"targets and scores differ in length: {targets.shape} and {scores.shape}")
    num_positives = int(targets.sum())
    if num_positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_targets = scores[order], targets[order]
    # the last position of each run of equal scores: one threshold per distinct value
    ends = np.flatnonzero(np.append(np.diff(sorted_scores) != 0, True))
    true_positives = np.cumsum(sorted_targets)[ends]
    precision = true_positives / (ends + 1)
    recall = true_positives / num_positives
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def mean_average_precision(targets, scores) -> dict:
    """mAP: the mean over classes of ``average_precision`` (the AudioSet metric; sklearn's macro average).

    Classes without a positive among the targets have no AP; they are skipped, not counted as 0, and their
    number is returned. Scores may be logits or probabilities (AP depends only on their order; logits avoid
    the ties a saturated sigmoid makes).

    Returns {"map", "num_classes_without_positives"}; "map" is NaN when no class has a positive.
    """
    targets, scores = _multi_label(targets, scores)
    per_class = [average_precision(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    defined = [value for value in per_class if not np.isnan(value)]
    return {
        "map": float(np.mean(defined)) if defined else float("nan"),
        "num_classes_without_positives": len(per_class) - len(defined),
    }


def multi_label_f1(targets, probabilities, threshold: float = 0.5) -> dict:
    """Micro and macro F1 of multi-label predictions ŷ_ic = [p_ic > threshold] (sklearn ``f1_score``).

    micro F1 = 2·ΣTP / (2·ΣTP + ΣFP + ΣFN), summed over all classes and clips; macro F1 = the mean over all C
    classes of each class's 2·TP / (2·TP + FP + FN), 0 where that denominator is 0 (a class never true and
    never predicted: sklearn's ``zero_division=0``, which scores such columns 0 rather than dropping them).
    The comparison is strict: a probability of exactly ``threshold`` is not a prediction.

    Returns {"micro_f1", "macro_f1"}.
    """
    targets, probabilities = _multi_label(targets, probabilities)
    predicted = probabilities > threshold
    true_positives = (predicted & targets).sum(axis=0)
    false_positives = (predicted & ~targets).sum(axis=0)
    false_negatives = (~predicted & targets).sum(axis=0)
    micro = _f1_per_class(true_positives.sum(), false_positives.sum(), false_negatives.sum())
    macro = _f1_per_class(true_positives, false_positives, false_negatives)
    return {"micro_f1": float(micro), "macro_f1": float(macro.mean()) if macro.size else float("nan")}


def multi_label_metrics(targets, logits, threshold: float = 0.5) -> dict:
    """mAP on the logits and micro / macro F1 at ``threshold`` on sigmoid(logits) (DESIGN.md section 7).

    Returns {"map", "num_classes_without_positives", "micro_f1", "macro_f1"}.
    """
    logits = _as_numpy(logits).astype(np.float64)
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    return {**mean_average_precision(targets, logits), **multi_label_f1(targets, probabilities, threshold)}
