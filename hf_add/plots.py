"""Figure 5-style heatmaps: mean (top) and coefficient of variation (bottom) of d between classes.

At any class count the figure says which classes it draws and why: all of them when they fit, else the
classes of the closest class pairs (the likeliest confusions), or a list the caller gives; names in natural
order (``natural_sort_key``: 1, 2, 10).
"""

from __future__ import annotations

import math
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only: no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hf_add.data.presets import natural_sort_key  # noqa: E402
from hf_add.files import atomic_write  # noqa: E402

MAX_CLASSES = 20  # drawn by default: cells stay readable, names legible


def select_classes(
    geometries: dict[str, dict],
    class_names: list[str],
    max_classes: int = MAX_CLASSES,
    classes: list[str] | None = None,
) -> tuple[list[int], str]:
    """The class ids to draw and the rule that chose them, in words (written on the figure).

    ``classes`` given: those (by name, in the order given). Else every class if there are at most
    ``max_classes``; else the classes of the closest class pairs: pairs in increasing mean d (averaged over the
    runs drawn), each adding its classes until ``max_classes`` are chosen — the pairs the embeddings are most
    likely to confuse. Chosen classes are drawn in natural order of their names.
    """
    count = len(class_names)
    if classes:
        unknown = [name for name in classes if name not in class_names]
        if unknown:
            shown = sorted(class_names, key=natural_sort_key)
            raise ValueError(
                f"heatmap classes {unknown} are not among the model's {count} classes "
                f"{shown[:10]}{'...' if count > 10 else ''}; name classes it has (comma-separated)"
            )
        chosen = list(dict.fromkeys(class_names.index(name) for name in classes))
        return chosen, f"{len(chosen)} of {count} classes, as listed"
    natural = sorted(range(count), key=lambda i: natural_sort_key(class_names[i]))
    if count <= max_classes:
        return natural, f"all {count} classes"
    mean = np.nanmean(
        [np.asarray(g["mean_distance"], dtype=float)[:count, :count] for g in geometries.values()], 0
    )
    rows, columns = np.triu_indices(count, k=1)
    distances = np.nan_to_num(mean[rows, columns], nan=np.inf)
    chosen: set[int] = set()
    for pair in np.argsort(distances, kind="stable"):
        for i in (rows[pair], columns[pair]):
            if len(chosen) < max_classes:
                chosen.add(int(i))
        if len(chosen) == max_classes:
            break
    runs = "averaged over the runs" if len(geometries) > 1 else "of this run"
    rule = f"{max_classes} of {count} classes: those of the closest class pairs (smallest mean d, {runs})"
    return [i for i in natural if i in chosen], rule


def plot_geometry_heatmaps(
    geometries: dict[str, dict],
    path: str,
    class_names: list[str] | None = None,
    max_classes: int = MAX_CLASSES,
    classes: list[str] | None = None,
) -> str:
    """Write one column per run (e.g. {"CE": geometry, "ADD λ={1,1,1,1}": geometry}) to a PNG.

    Each ``geometry`` is the output of ``embedding_geometry``. The classes drawn are chosen by
    ``select_classes`` (all up to ``max_classes``, else the closest pairs' classes, or the names in
    ``classes``), and the figure's subtitle states the rule. A panel's title carries the run name and, when
    present in the dict, its ``accuracy``. Each row (mean, CV) has one colour scale shared by all runs.
    The file is written atomically and its path returned.
    """
    figure = geometry_heatmaps_figure(geometries, class_names, max_classes, classes)
    try:
        with atomic_write(path, "wb") as handle:
            figure.savefig(handle, format="png", dpi=120)
    finally:
        plt.close(figure)
    return path


def geometry_heatmaps_figure(
    geometries: dict[str, dict],
    class_names: list[str] | None = None,
    max_classes: int = MAX_CLASSES,
    classes: list[str] | None = None,
):
    """The figure ``plot_geometry_heatmaps`` writes (constrained layout: no title runs into tick labels)."""
    names = list(geometries)
    count = min(len(g["mean_distance"]) for g in geometries.values())
    labels = list(class_names or [str(i) for i in range(count)])[:count]
    chosen, rule = select_classes(geometries, labels, max_classes, classes)
    shown = [labels[i] for i in chosen]
    n = len(chosen)
    # Panels grow with the classes drawn (about 0.2 in. a cell) and with the longest name (the tick labels).
    fontsize = 7 if n <= 30 else 5
    label_inches = 0.06 * fontsize / 7 * max(len(name) for name in shown)
    panel = max(2.4, 0.2 * n * fontsize / 7)
    width = len(names) * (panel + label_inches + 0.5) + 1.2
    height = 2 * (panel + label_inches + 0.6) + 0.6
    figure, axes = plt.subplots(2, len(names), figsize=(width, height), squeeze=False, layout="constrained")
    # about 14 characters an inch at 9 pt: the rule wraps rather than running off a narrow figure
    figure.suptitle(textwrap.fill(f"{rule}; names in natural order", int(width * 14)), fontsize=9)
    index = np.ix_(chosen, chosen)
    for row, (key, label) in enumerate([("mean_distance", "mean of d"), ("cv_distance", "CV of d")]):
        matrices = [np.asarray(geometries[name][key], dtype=float)[index] for name in names]
        # One colour scale per row, so the runs side by side compare at a glance.
        finite = [m[np.isfinite(m)] for m in matrices]
        values = np.concatenate(finite) if any(v.size for v in finite) else np.zeros(1)
        low, high = float(values.min()), float(values.max())
        for column, (name, matrix) in enumerate(zip(names, matrices, strict=True)):
            geometry = geometries[name]
            axis = axes[row][column]
            image = axis.imshow(matrix, cmap="viridis", vmin=low, vmax=high)
            axis.set_xticks(range(n), shown, rotation=90, fontsize=fontsize)
            axis.set_yticks(range(n), shown, fontsize=fontsize)
            accuracy = geometry.get("accuracy")
            has_accuracy = accuracy is not None and math.isfinite(accuracy)
            title = f"{name}\naccuracy {100 * accuracy:.1f}%" if has_accuracy else name
            axis.set_title(title if row == 0 else label, fontsize=9)
            if column == 0:
                axis.set_ylabel(label)
        figure.colorbar(image, ax=list(axes[row]), fraction=0.046, pad=0.02)
    return figure


def plot_confusion_matrix(matrix: list[list[int]], class_names: list[str], path: str) -> str:
    """Write the confusion matrix (rows = true class, columns = predicted, id order) to a PNG, each row as
    the share of its clips so that classes of any size read alike; counts are written in the cells while
    they fit (up to 20 classes). Readable at 50 classes: the figure grows with the class count."""
    counts = np.asarray(matrix, dtype=float)
    n = len(counts)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fontsize = 8 if n <= 20 else 6 if n <= 60 else 5
    label_inches = 0.06 * fontsize / 7 * max((len(str(name)) for name in class_names), default=1)
    side = max(3.0, 0.18 * n * fontsize / 7 * 1.6) + label_inches
    figure, axis = plt.subplots(figsize=(side + 1.2, side + 0.6), layout="constrained")
    try:
        image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        axis.set_xticks(range(n), class_names, rotation=90, fontsize=fontsize)
        axis.set_yticks(range(n), class_names, fontsize=fontsize)
        axis.set_xlabel("predicted class")
        axis.set_ylabel("true class")
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        axis.set_title(f"confusion matrix: share of each true class's clips (accuracy {100 * accuracy:.1f}%)",
                       fontsize=9)  # fmt: skip
        if n <= 20:
            for i, j in zip(*np.nonzero(counts), strict=True):
                colour = "white" if shares[i, j] > 0.5 else "black"
                axis.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=fontsize, color=colour)
        figure.colorbar(image, ax=axis, shrink=0.6)
        with atomic_write(path, "wb") as handle:
            figure.savefig(handle, format="png", dpi=120)
    finally:
        plt.close(figure)
    return path
