"""hf_add.plots: which classes a heatmap draws, the rule written on it, and a layout without overlaps."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from hf_add.plots import geometry_heatmaps_figure, plot_geometry_heatmaps, select_classes


def geometry(n: int, close_pairs: dict[tuple[int, int], float] = (), seed: int = 0) -> dict:
    """Random inter-class distances in [0.6, 1.2], with the given pairs closer."""
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.6, 1.2, (n, n))
    mean = (mean + mean.T) / 2
    np.fill_diagonal(mean, 0.2)
    for (i, j), d in dict(close_pairs).items():
        mean[i, j] = mean[j, i] = d
    return {
        "mean_distance": mean.tolist(),
        "cv_distance": rng.uniform(0.1, 0.5, (n, n)).tolist(),
        "accuracy": 0.5,
    }


def test_every_class_in_natural_order_when_they_fit():
    names = ["10", "2", "1", "Dog", "cat"]
    chosen, rule = select_classes({"run": geometry(5)}, names, max_classes=5)
    assert [names[i] for i in chosen] == ["1", "2", "10", "cat", "Dog"] and rule == "all 5 classes"


def test_many_classes_draw_those_of_the_closest_pairs():
    names = [f"c{i}" for i in range(40)]  # text order would put c10..c19 before c2
    close = {(3, 17): 0.05, (30, 8): 0.1, (12, 3): 0.15, (25, 39): 0.2}
    chosen, rule = select_classes({"run": geometry(40, close)}, names, max_classes=5)
    assert [names[i] for i in chosen] == ["c3", "c8", "c12", "c17", "c30"]  # 4th pair: no room for both
    assert rule == "5 of 40 classes: those of the closest class pairs (smallest mean d, of this run)"
    # several runs: distances averaged, so a pair close in one run only may lose to a pair close in both
    other = geometry(40, {(25, 39): 0.05, (3, 17): 1.2}, seed=1)
    chosen, rule = select_classes({"CE": geometry(40, close), "ADD": other}, names, max_classes=2)
    assert [names[i] for i in chosen] == ["c25", "c39"] and "averaged over the runs" in rule


def test_listed_classes_are_drawn_as_listed_and_unknown_ones_named():
    names = [str(i) for i in range(1, 41)]
    chosen, rule = select_classes({"run": geometry(40)}, names, classes=["10", "2", "33"])
    assert [names[i] for i in chosen] == ["10", "2", "33"] and rule == "3 of 40 classes, as listed"
    with pytest.raises(ValueError, match=r"heatmap classes \['41'\] are not among the model's 40 classes"):
        select_classes({"run": geometry(40)}, names, classes=["2", "41"])


@pytest.mark.parametrize("count", [10, 40, 200])
def test_figure_states_its_rule_and_no_title_overlaps_tick_labels(count, tmp_path):
    names = [f"class name {i}" for i in range(count)]
    runs = {"CE": geometry(count), "ADD λ={1,1,1,1}": geometry(count, seed=1)}
    figure = geometry_heatmaps_figure(runs, names)
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        subtitle = figure.get_suptitle().replace("\n", " ")
        drawn = min(count, 20)
        assert subtitle.startswith(
            f"all {count} classes" if count <= 20 else f"20 of {count} classes: those of"
        )
        assert subtitle.endswith("names in natural order")
        axes = np.asarray(figure.axes[:4]).reshape(2, 2)  # the panels (colour bars come after)
        for column in range(2):
            assert len(axes[1][column].get_xticklabels()) == drawn
            title = axes[1][column].title.get_window_extent(renderer)
            for label in axes[0][column].get_xticklabels():
                assert not title.overlaps(label.get_window_extent(renderer)), label.get_text()
        width, _ = figure.get_size_inches() * figure.dpi
        suptitle = figure._suptitle.get_window_extent(renderer)
        assert suptitle.x0 >= 0 and suptitle.x1 <= width  # the rule is on the figure, not cut off
    finally:
        plt.close(figure)
    path = plot_geometry_heatmaps({"CE": geometry(count)}, str(tmp_path / "h.png"), names)
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
