"""Class-balanced (P×K) training batches, so every batch holds positive pairs for ADD's μp and σp.

With random batches the positive pairs are few or missing when a dataset has many classes (the README's
numbers for ESC-50 come from ``scripts/benchmarks/positive_pairs.py``). ``ClassBalancedBatchSampler`` makes
each batch P classes × K samples, the rows of a class next to each other.

How an epoch is drawn, from ``(seed, epoch)`` only, so every process and every resumed run draws the same:

1. Each class's rows are shuffled and cut into groups of K; the last ``n mod K`` rows sit the epoch out
   (other rows next epoch). A class with fewer than K rows gives one group, topped up by drawing its rows
   again at random (with replacement).
2. Each global batch takes Q = P × world size groups of Q distinct classes, drawn at random weighted by the
   groups each class has left, except that a class with as many groups left as there are batches left is
   always taken. That rule keeps the epoch fillable, so no group is used twice and, when the groups suffice
   (e.g. balanced classes), no row is seen twice in an epoch (the top-ups of step 1 aside). When they do not (one class holds most rows,
   or too many rows sit out), the classes with the fewest groups get a fresh shuffle of extra groups first.
3. Rank r takes groups ``r·P … (r+1)·P − 1`` of each global batch: whole classes, so the ranks' rows are
   disjoint within a batch and the global batch is (P × world size) classes × K.

An epoch has ``len(labels) // (batch_size × world size)`` batches on every rank (``len`` is exact).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence

import datasets
import numpy as np
import torch


class ClassBalancedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of ``batch_size // samples_per_class`` classes × ``samples_per_class`` rows each.

    Args:
        labels: the class id of every row of the dataset (read once; see ``class_ids``).
        batch_size: rows per batch on this process (the per-device batch size).
        samples_per_class: K, rows of each class in a batch (at least 2: one gives no positive pair).
        seed: with the epoch (``set_epoch``), fixes the batches.
        num_replicas, rank: the data-parallel world size and this process's rank. The global batch is
            ``batch_size × num_replicas`` rows of ``batch_size × num_replicas / K`` distinct classes; each rank
            gets whole classes.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        batch_size: int,
        samples_per_class: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        labels = _as_class_ids(labels)
        self.check_arguments(batch_size, samples_per_class)
        _check_int("num_replicas", num_replicas, 1, "the number of data-parallel processes")
        _check_int("seed", seed, 0, "a non-negative integer")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        self.batch_size = batch_size
        self.samples_per_class = samples_per_class
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.classes_per_batch = batch_size // samples_per_class
        classes, inverse = np.unique(labels, return_inverse=True)
        self._members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
        global_classes = self.classes_per_batch * num_replicas
        if len(classes) < global_classes:
            raise ValueError(
                f"A batch needs {global_classes} distinct classes ({self.classes_per_batch} per batch of "
                f"{batch_size} with samples_per_class {samples_per_class}, × {num_replicas} processes), but the "
                f"labels hold only {len(classes)}: lower the batch size or raise samples_per_class"
            )
        self.num_batches = len(labels) // (batch_size * num_replicas)
        if self.num_batches == 0:
            raise ValueError(
                f"The dataset has {len(labels)} rows, fewer than one global batch of {batch_size} × "
                f"{num_replicas} processes: lower the batch size"
            )

    @staticmethod
    def check_arguments(batch_size: int, samples_per_class: int) -> None:
        """Raise if ``batch_size`` cannot be cut into classes of ``samples_per_class`` rows."""
        _check_int("samples_per_class", samples_per_class, 2, "one sample per class gives no positive pair")
        _check_int("batch_size", batch_size, 1, "rows per batch")
        if batch_size % samples_per_class:
            raise ValueError(
                f"The batch size {batch_size} is not a multiple of samples_per_class {samples_per_class}: a batch "
                f"holds batch size / samples_per_class whole classes; use e.g. batch size "
                f"{max(batch_size // samples_per_class, 1) * samples_per_class}"
            )

    def set_epoch(self, epoch: int) -> None:
        """Draw the batches of ``epoch`` next (Trainer calls this before every epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        first = self.rank * self.classes_per_batch
        for groups in self.global_batches(self.epoch):
            yield np.concatenate(groups[first : first + self.classes_per_batch]).tolist()

    def global_batches(self, epoch: int) -> list[list[np.ndarray]]:
        """The epoch's global batches, each a list of P × world-size groups of K row indices (one per class)."""
        rng = np.random.default_rng([self.seed, epoch])
        batches, wanted = self.num_batches, self.classes_per_batch * self.num_replicas
        groups = [self._draw_groups(members, rng) for members in self._members]
        # The epoch can be filled iff sum(min(groups left, batches)) >= wanted × batches; until it can, give
        # a fresh shuffle to the class with the fewest groups (ties at random).
        capacity = sum(min(len(g), batches) for g in groups)
        ties = rng.permutation(len(groups))
        short = [(len(g), ties[c], c) for c, g in enumerate(groups)]
        heapq.heapify(short)
        while capacity < wanted * batches:
            count, tie, c = heapq.heappop(short)
            groups[c] += self._draw_groups(self._members[c], rng)
            capacity += min(len(groups[c]), batches) - min(count, batches)
            heapq.heappush(short, (len(groups[c]), tie, c))
        left = np.array([len(g) for g in groups])
        result = []
        for batches_left in range(batches, 0, -1):
            forced = np.flatnonzero(left >= batches_left)
            if len(forced) >= wanted:
                chosen = rng.choice(forced, size=wanted, replace=False)
            else:
                optional = np.flatnonzero((left > 0) & (left < batches_left))
                weights = left[optional] / left[optional].sum()
                picked = rng.choice(optional, size=wanted - len(forced), replace=False, p=weights)
                chosen = rng.permutation(np.concatenate([forced, picked]))
            left[chosen] -= 1
            result.append([groups[c][left[c]] for c in chosen])
        return result

    def _draw_groups(self, members: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """One shuffle of a class cut into groups of K; a class with fewer than K rows is topped up."""
        size = self.samples_per_class
        shuffled = rng.permutation(members)
        if len(shuffled) < size:
            shuffled = np.concatenate([shuffled, rng.choice(members, size=size - len(shuffled))])
        return list(shuffled[: len(shuffled) // size * size].reshape(-1, size))


def class_ids(dataset, column: str = "labels") -> np.ndarray:
    """The class id of every row of ``dataset``: a ``datasets.Dataset`` column (read without decoding any
    other column), or ``dataset[i][column]`` for each row of any other map-style dataset (which loads rows)."""
    if isinstance(dataset, datasets.Dataset):
        if column not in dataset.column_names:
            raise ValueError(
                f"samples_per_class needs the class id of every training row, but the dataset has no {column!r} "
                f"column (columns: {dataset.column_names})"
            )
        return _as_class_ids(dataset.select_columns([column]).with_format("numpy")[:][column])
    try:
        values = [dataset[i][column] for i in range(len(dataset))]
    except (KeyError, TypeError, IndexError) as error:
        raise ValueError(
            f"samples_per_class needs the class id of every training row: rows must be dicts with a {column!r} "
            f"key ({type(error).__name__}: {error})"
        ) from error
    return _as_class_ids(np.array([np.asarray(v) for v in values]))


def _as_class_ids(labels) -> np.ndarray:
    labels = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise ValueError(
            f"Class-balanced batches need one integer class id per row, got labels of shape "
            f"{labels.shape} and dtype {labels.dtype}; soft labels (mixup probabilities) are not class ids: "
            "leave samples_per_class unset for them"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(
            f"Class ids must be non-negative, got {labels.min()} (rows to ignore, e.g. -100, must be removed "
            "from the training set first)"
        )
    return labels.astype(np.int64)


def _check_int(name: str, value, minimum: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} ({meaning}), got {value!r}")
