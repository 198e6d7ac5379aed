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
    present in the dict, its ``accuracy``. The file is written atomically and its path returned.
    """
    names = list(geometries)
    figure, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names), 6.8), squeeze=False)
    for column, name in enumerate(names):
        geometry = geometries[name]
        count = min(max_classes, len(geometry["mean_distance"]))
        labels = (class_names or [str(i) for i in range(count)])[:count]
        title = name if "accuracy" not in geometry else f"{name}\naccuracy {100 * geometry['accuracy']:.1f}%"
        for row, (key, label) in enumerate([("mean_distance", "mean of d"), ("cv_distance", "CV of d")]):
            matrix = np.asarray(geometry[key])[:count, :count]
            axis = axes[row][column]
            image = axis.imshow(matrix, cmap="viridis")
            axis.set_xticks(range(count), labels, rotation=90, fontsize=7)
            axis.set_yticks(range(count), labels, fontsize=7)
            axis.set_title(title if row == 0 else label, fontsize=9)
            if row == 0:
                axis.set_ylabel(label)
            figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    figure.tight_layout()
    try:
        with atomic_write(path, "wb") as handle:
            figure.savefig(handle, format="png", dpi=120)
    finally:
        plt.close(figure)
    return path
