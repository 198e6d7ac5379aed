"""Figure 5-style heatmaps: mean (top) and coefficient of variation (bottom) of d between classes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hf_add.files import atomic_write  # noqa: E402


def plot_geometry_heatmaps(
    geometries: dict[str, dict],
    path: str,
    class_names: list[str] | None = None,
    max_classes: int = 10,
) -> str:
    """Write one column per run (e.g. {"CE": geometry, "ADD λ={1,1,1,1}": geometry}) to a PNG.

    Each ``geometry`` is the output of ``embedding_geometry``. Like the paper, only the first
    ``max_classes`` classes are drawn so the cells stay readable; the title carries the run name and, when
    present in the dict, its ``accuracy``. Each row (mean, CV) has one colour scale shared by all runs.
    The file is written atomically and its path returned.
    """
    names = list(geometries)
    count = min(max_classes, *(len(g["mean_distance"]) for g in geometries.values()))
    labels = (class_names or [str(i) for i in range(count)])[:count]
    quantities = [("mean_distance", "mean of d"), ("cv_distance", "CV of d")]
    figure, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names) + 0.8, 6.8), squeeze=False)
    for row, (key, label) in enumerate(quantities):
        matrices = [np.asarray(geometries[name][key], dtype=float)[:count, :count] for name in names]
        # One colour scale per row, so the runs side by side compare at a glance.
        low, high = np.nanmin(matrices), np.nanmax(matrices)
        for column, (name, matrix) in enumerate(zip(names, matrices, strict=True)):
            geometry = geometries[name]
            axis = axes[row][column]
            image = axis.imshow(matrix, cmap="viridis", vmin=low, vmax=high)
            axis.set_xticks(range(count), labels, rotation=90, fontsize=7)
            axis.set_yticks(range(count), labels, fontsize=7)
            title = (
                name if "accuracy" not in geometry else f"{name}\naccuracy {100 * geometry['accuracy']:.1f}%"
            )
            axis.set_title(title if row == 0 else label, fontsize=9)
            if column == 0:
                axis.set_ylabel(label)
        figure.colorbar(image, ax=list(axes[row]), fraction=0.046, pad=0.04)
    try:
        with atomic_write(path, "wb") as handle:
            figure.savefig(handle, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path
