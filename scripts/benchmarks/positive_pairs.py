"""Positive pairs per training batch on an ESC-50-shaped label set: random batches against class-balanced
batches (``ADDTrainer(samples_per_class=K)``), for the README figure.

ADD's μp and σp need two samples of one class in a batch. With 2,000 clips of 50 classes × 40 and batches
of 32, this draws many epochs of random batches (a fresh permutation per epoch cut into batches of 32, the
last partial batch left out, as a full batch is what the statistics are about) and of class-balanced
batches for each K, counts the ordered same-class pairs (i, j), i ≠ j, of every batch, and prints a markdown
table and the exact values for random batches: a random batch of B rows from N with n per class holds
B(B − 1)(n − 1)/(N − 1) ordered positive pairs on average, and none with probability
C(50, B)·40^B / C(N, B) (all B rows of different classes).

    python scripts/benchmarks/positive_pairs.py [--epochs 1000] [--output docs/positive_pairs.png]
"""

from __future__ import annotations

import argparse
import math

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hf_add.data.samplers import ClassBalancedBatchSampler  # noqa: E402
from hf_add.files import atomic_write  # noqa: E402


def class_counts(batch_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows of each class in every batch of ``batch_labels`` (batches × batch size): batches × classes."""
    rows = np.repeat(np.arange(len(batch_labels)), batch_labels.shape[1])
    counts = np.bincount(rows * num_classes + batch_labels.ravel(), minlength=len(batch_labels) * num_classes)
    return counts.reshape(len(batch_labels), num_classes)


def random_batches(labels: np.ndarray, batch_size: int, epochs: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    full = len(labels) // batch_size * batch_size
    return np.concatenate(
        [labels[rng.permutation(len(labels))[:full]].reshape(-1, batch_size) for _ in range(epochs)]
    )


def balanced_batches(labels: np.ndarray, batch_size: int, k: int, epochs: int, seed: int) -> np.ndarray:
    sampler = ClassBalancedBatchSampler(labels, batch_size, k, seed=seed)
    batches = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        batches.extend(labels[batch] for batch in sampler)
    return np.stack(batches)


def exact_random(num_classes: int, per_class: int, batch_size: int) -> dict[str, float]:
    """Exact statistics of a uniformly random batch of ``batch_size`` distinct rows."""
    total = num_classes * per_class
    none = math.comb(num_classes, batch_size) * per_class**batch_size / math.comb(total, batch_size)
    alone = math.comb(total - per_class, batch_size - 1) / math.comb(total - 1, batch_size - 1)
    return {
        "mean": batch_size * (batch_size - 1) * (per_class - 1) / (total - 1),
        "at_least_one": 1 - none,
        "with_partner": 1 - alone,  # a row with no other row of its class in the batch
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--per_class", type=int, default=40)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--k", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="docs/positive_pairs.png")
    args = parser.parse_args()

    labels = np.repeat(np.arange(args.classes), args.per_class)
    runs = {"random": random_batches(labels, args.batch_size, args.epochs, args.seed)}
    for k in args.k:
        runs[f"K = {k}"] = balanced_batches(labels, args.batch_size, k, args.epochs, args.seed)
    counts = {name: class_counts(batches, args.classes) for name, batches in runs.items()}
    pairs = {name: (c * (c - 1)).sum(axis=1) for name, c in counts.items()}
    partnered = {name: (c * (c > 1)).sum(axis=1) / args.batch_size for name, c in counts.items()}
    ordered = args.batch_size * (args.batch_size - 1)

    print(
        f"{len(labels):,} clips, {args.classes} classes × {args.per_class}, batch {args.batch_size}, "
        f"{args.epochs} epochs ({len(pairs['random']):,} batches per row)\n"
    )
    print(
        "| batches | with ≥ 1 positive pair | ordered positive pairs per batch (of "
        f"{ordered}): mean | min | max | rows with a same-class partner |"
    )
    print("|---|---|---|---|---|---|")
    for name in runs:
        print(
            f"| {name} | {100 * np.mean(pairs[name] > 0):.3f} % | {pairs[name].mean():.2f} | {pairs[name].min()} "
            f"| {pairs[name].max()} | {100 * partnered[name].mean():.1f} % |"
        )
    exact = exact_random(args.classes, args.per_class, args.batch_size)
    print(
        f"| random, exact | {100 * exact['at_least_one']:.4f} % | {exact['mean']:.2f} | | | "
        f"{100 * exact['with_partner']:.1f} % |"
    )

    sizes = np.arange(2, 65)
    figure, (histogram, curve) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    top = max(int(c.max()) for c in pairs.values())
    share = np.bincount(pairs["random"], minlength=top + 1) / len(pairs["random"])
    histogram.bar(np.arange(top + 1), share, width=2, color="tab:gray", label="random batches")
    histogram.axvline(
        pairs["random"].mean(), color="black", linestyle="--", linewidth=1, label="random: mean"
    )
    for color, name in zip(("tab:blue", "tab:orange", "tab:green"), list(runs)[1:], strict=False):
        histogram.axvline(
            pairs[name].mean(), color=color, linewidth=2.5, label=f"{name}: always {pairs[name][0]}"
        )
    histogram.set_xlabel(f"ordered positive pairs in a batch of {args.batch_size} (of {ordered})")
    histogram.set_ylabel("fraction of batches")
    histogram.set_title(
        f"random: mean {pairs['random'].mean():.2f}, rows with a partner {100 * partnered['random'].mean():.0f} %",
        fontsize=10,
    )
    histogram.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.62, 1.0))
    at_least_one = [100 * exact_random(args.classes, args.per_class, int(b))["at_least_one"] for b in sizes]
    curve.plot(sizes, at_least_one, color="tab:gray", label="random (exact)")
    curve.axhline(100, color="tab:blue", linewidth=2.5, label="samples_per_class = K (any K ≥ 2)")
    curve.axvline(args.batch_size, color="black", linestyle=":", linewidth=1)
    curve.set_xlabel("batch size")
    curve.set_ylabel("% of batches with ≥ 1 positive pair")
    curve.set_ylim(0, 105)
    curve.legend(frameon=False, loc="lower right")
    figure.suptitle(
        f"ESC-50-shaped labels: {len(labels):,} clips, {args.classes} classes × {args.per_class}", fontsize=11
    )
    figure.tight_layout()
    with atomic_write(args.output, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
