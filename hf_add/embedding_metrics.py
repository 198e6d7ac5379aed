"""What the embedding space is good for: retrieval, clustering, classification and open-set scores.

ADD shapes the space of the classification head's input (DESIGN.md section 8); these metrics measure it
directly, on evaluation embeddings, in float64 (similarity products in float32 by default, see retrieval_metrics):

- retrieval, leave one out with cosine similarity (a query is never its own neighbour): ``precision_at_1``,
  ``map_at_r`` and ``r_precision`` of Musgrave, Belongie & Lim 2020, and the cosine kNN accuracy
  (``retrieval_metrics``, one pass over row blocks of the similarity matrix, never the whole N × N);
- clustering: NMI of k-means clusters against the labels (``clustering_nmi``);
- classification from embeddings: cosine kNN and nearest class mean (``knn_accuracy``,
  ``nearest_class_mean_accuracy``);
- open set: novelty scores of clips against class means of a reference (training) set
  (``cosine_novelty``, ``mahalanobis_novelty``) and their ``auroc`` / ``fpr_at_95_tpr`` for unknown classes.

Inputs are torch tensors or numpy arrays; summaries come back as plain Python floats and ints (JSON-ready),
per-clip scores as float64 tensors.

References:
    Musgrave, Belongie & Lim, "A Metric Learning Reality Check", ECCV 2020 (precision@1, R-precision, MAP@R).
    Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting Out-of-Distribution Samples and
    Adversarial Attacks", NeurIPS 2018 (class means and one shared covariance).
"""

from __future__ import annotations

import math

import numpy as np
import torch

# The keys of ``retrieval_metrics``, in the order tables and logs show them.
RETRIEVAL_METRICS = ("precision_at_1", "map_at_r", "r_precision", "knn_accuracy")


def _embeddings(embeddings, name: str = "embeddings") -> torch.Tensor:
    z = torch.as_tensor(embeddings).detach().cpu()
    if z.dim() != 2:
        raise ValueError(f"{name} must be (N, d), got shape {tuple(z.shape)}")
    z = z.to(torch.float64)
    if not torch.isfinite(z).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return z


def _labels(labels, num_rows: int, name: str = "labels") -> torch.Tensor:
    y = torch.as_tensor(labels).detach().cpu()
    if y.dim() != 1 or y.shape[0] != num_rows:
        raise ValueError(f"{name} must be ({num_rows},) class ids, got shape {tuple(y.shape)}")
    if y.is_floating_point() or (y.numel() and int(y.min()) < 0):
        raise ValueError(f"{name} must be non-negative integer class ids")
    return y.long()


def _unit(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    # A zero vector stays zero: cosine 0 with everything.
    return z / torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp_min(eps)


def _top_neighbours(query_unit, reference_unit, depth: int, query_rows: torch.Tensor | None):
    """Similarities (B, depth) and reference indices of each query's ``depth`` nearest, most similar first.

    With ``query_rows`` (the queries' own indices in the reference) a query is never its own neighbour.
    Equal similarities come in torch.topk's order, which is unspecified.
    """
    similarity = query_unit @ reference_unit.T
    if query_rows is not None:
        similarity[torch.arange(len(query_rows)), query_rows] = -math.inf
    return similarity.topk(depth, dim=1, largest=True, sorted=True)


def _vote(similarities, neighbour_labels, num_classes: int) -> torch.Tensor:
    """Majority class among the neighbours; a tie in votes goes to the class with the larger summed similarity."""
    votes = torch.zeros(len(neighbour_labels), num_classes, dtype=torch.int64)
    votes.scatter_add_(1, neighbour_labels, torch.ones_like(neighbour_labels))
    summed = torch.zeros(len(neighbour_labels), num_classes, dtype=torch.float64)
    summed.scatter_add_(1, neighbour_labels, similarities.to(torch.float64))
    summed[votes < votes.max(dim=1, keepdim=True).values] = -math.inf
    return summed.argmax(dim=1)


@torch.no_grad()
def retrieval_metrics(
    embeddings,
    labels,
    *,
    k: int = 10,
    block_size: int = 1024,
    similarity_dtype: torch.dtype = torch.float32,
) -> dict:
    """Leave-one-out retrieval on cosine similarity: precision@1, MAP@R, R-precision and kNN accuracy.

    Every clip i is a query against all others. With its neighbours ranked by cosine similarity (most similar
    first, the query itself excluded), rel(j) = 1 when the j-th neighbour has the query's class, and
    R = the number of OTHER clips of the query's class. Following Musgrave et al. 2020:

    - ``precision_at_1`` = mean over queries of rel(1);
    - ``r_precision`` = mean over queries of (1/R) Σ_{j≤R} rel(j);
    - ``map_at_r`` = mean over queries of (1/R) Σ_{j≤R} P(j)·rel(j), with P(j) = (1/j) Σ_{j'≤j} rel(j').
      Unlike plain MAP it only credits the R nearest, so it rewards a class that is compact, not merely
      ranked above the rest somewhere.

    Queries whose class has no other clip (R = 0) have no relevant item: they are left out of these three
    means and counted in ``num_skipped_queries``. ``knn_accuracy`` counts every query: the majority class
    of its k nearest neighbours (k = min(k, N − 1); a tie in votes goes to the class with the larger summed
    similarity) against its label. Equal similarities are ranked in torch.topk's order, which is unspecified;
    for continuous embeddings only duplicated clips tie.

    Cost: one pass over row blocks of the N × N similarity, O(N·d) memory plus, per block of ``block_size``
    queries, the (block_size, N) similarities and the (block_size, max R) nearest. Queries are processed
    grouped by class, so a block's depth is its own classes' R, not the largest in the set. The products
    take most of the time, so they run in float32 by default (a third of float64's time on CPU); rankings
    may then differ only where two similarities differ by less than ~1e-6, and every average is float64.
    ``similarity_dtype=torch.float64`` ranks in float64.

    Args:
        embeddings: (N, d) evaluation embeddings (the classification head's input).
        labels: (N,) class ids.
        k: neighbours of the kNN vote (default 10).
        block_size: queries per block.
        similarity_dtype: dtype of the similarity products (float32 by default).

    Returns:
        {"precision_at_1", "map_at_r", "r_precision", "knn_accuracy", "knn_k", "num_queries",
        "num_skipped_queries"}; the first four are floats in [0, 1] (NaN when no query qualifies).

    Example::

        >>> embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 1.0]])
        >>> retrieval_metrics(embeddings, torch.tensor([0, 0, 1, 1]))["map_at_r"]
        1.0
    """
    if k < 1 or block_size < 1:
        raise ValueError(f"k and block_size must be positive, got k={k}, block_size={block_size}")
    unit = _unit(_embeddings(embeddings)).to(similarity_dtype)
    labels = _labels(labels, unit.shape[0])
    num_queries = unit.shape[0]
    result = {name: float("nan") for name in RETRIEVAL_METRICS}
    result.update(knn_k=min(k, max(num_queries - 1, 0)), num_queries=num_queries, num_skipped_queries=0)
    if num_queries < 2:
        result["num_skipped_queries"] = num_queries
        return result
    num_classes = int(labels.max()) + 1
    others_of_class = torch.bincount(labels, minlength=num_classes)[labels] - 1  # R of every query
    knn_k = result["knn_k"]

    sums = torch.zeros(3, dtype=torch.float64)  # precision@1, MAP@R, R-precision over scored queries
    knn_correct = 0
    by_class = torch.argsort(labels, stable=True)
    for start in range(0, num_queries, block_size):
        rows = by_class[start : start + block_size]
        r = others_of_class[rows]
        depth = max(knn_k, int(r.max()))
        similarities, neighbours = _top_neighbours(unit[rows], unit, depth, rows)
        neighbour_labels = labels[neighbours]
        predictions = _vote(similarities[:, :knn_k], neighbour_labels[:, :knn_k], num_classes)
        knn_correct += int((predictions == labels[rows]).sum())

        scored = r > 0
        relevant = neighbour_labels[scored] == labels[rows][scored].unsqueeze(1)
        r = r[scored].unsqueeze(1).to(torch.float64)
        rank = torch.arange(1, depth + 1, dtype=torch.float64)
        hit = relevant & (rank <= r)  # rel(j) for j ≤ R
        precision = hit.cumsum(dim=1) / rank  # P(j) for j ≤ R
        sums[0] += relevant[:, 0].sum()
        sums[1] += ((precision * hit).sum(dim=1) / r.squeeze(1)).sum()
        sums[2] += (hit.sum(dim=1) / r.squeeze(1)).sum()

    num_scored = int((others_of_class > 0).sum())
    if num_scored:
        for name, value in zip(("precision_at_1", "map_at_r", "r_precision"), sums / num_scored, strict=True):
            result[name] = float(value)
    result["knn_accuracy"] = knn_correct / num_queries
    result["num_skipped_queries"] = num_queries - num_scored
    return result


@torch.no_grad()
def knn_accuracy(
    embeddings,
    labels,
    reference=None,
    reference_labels=None,
    *,
    k: int = 10,
    block_size: int = 1024,
) -> float:
    """Accuracy of the cosine kNN classifier: the majority class of a clip's k most similar reference clips.

    A tie in votes goes to the class with the larger summed similarity. Without ``reference`` the evaluation
    set is its own reference, leave one out (as ``retrieval_metrics`` "knn_accuracy"); with it (e.g. the
    training embeddings) every reference clip may vote. k defaults to 10 and is capped at the number of
    reference clips available.

    Example::

        >>> reference = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> knn_accuracy(torch.tensor([[2.0, 0.1]]), [0], reference, [0, 1], k=1)
        1.0
    """
    if k < 1 or block_size < 1:
        raise ValueError(f"k and block_size must be positive, got k={k}, block_size={block_size}")
    queries = _unit(_embeddings(embeddings))
    labels = _labels(labels, queries.shape[0])
    if reference is None:
        reference_unit, reference_labels, leave_one_out = queries, labels, True
    else:
        reference_unit = _unit(_embeddings(reference, "reference"))
        reference_labels = _labels(reference_labels, reference_unit.shape[0], "reference_labels")
        leave_one_out = False
    k = min(k, reference_unit.shape[0] - int(leave_one_out))
    if queries.shape[0] == 0 or k < 1:
        return float("nan")
    num_classes = int(max(labels.max(), reference_labels.max())) + 1
    correct = 0
    for start in range(0, queries.shape[0], block_size):
        rows = torch.arange(start, min(start + block_size, queries.shape[0]))
        similarities, neighbours = _top_neighbours(
            queries[rows], reference_unit, k, rows if leave_one_out else None
        )
        correct += int((_vote(similarities, reference_labels[neighbours], num_classes) == labels[rows]).sum())
    return correct / queries.shape[0]


def _class_sums(unit: torch.Tensor, labels: torch.Tensor, num_classes: int):
    sums = torch.zeros(num_classes, unit.shape[1], dtype=torch.float64).index_add_(0, labels, unit)
    return sums, torch.bincount(labels, minlength=num_classes)


def _cosine_to_means(unit: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    # cos(u, mean) = u · sum / ‖sum‖: the mean's length does not matter; classes without clips score -inf.
    cosine = unit @ _unit(sums).T
    return cosine.masked_fill(counts.unsqueeze(0) == 0, -math.inf)


@torch.no_grad()
def nearest_class_mean_accuracy(embeddings, labels, reference=None, reference_labels=None) -> float:
    """Accuracy of predicting argmax_c cos(u_i, m_c), m_c the mean of the unit vectors of class c.

    With ``reference`` (e.g. the training embeddings) the means are the reference's. Without it they come
    from the evaluation set, leave one out: the clip's own class mean excludes the clip, so
    cos(u_i, m_{y_i}) = (u_i · S − 1) / ‖S − u_i‖ with S the sum of the class's unit vectors. A clip whose
    class has no other clip then has no mean to be right about: it counts as wrong. Ties go to the lower id.
    """
    unit = _unit(_embeddings(embeddings))
    labels = _labels(labels, unit.shape[0])
    if unit.shape[0] == 0:
        return float("nan")
    if reference is not None:
        reference_unit = _unit(_embeddings(reference, "reference"))
        reference_labels = _labels(reference_labels, reference_unit.shape[0], "reference_labels")
        num_classes = int(max(labels.max(), reference_labels.max())) + 1
        sums, counts = _class_sums(reference_unit, reference_labels, num_classes)
        predictions = _cosine_to_means(unit, sums, counts).argmax(dim=1)
        return float((predictions == labels).double().mean())

    num_classes = int(labels.max()) + 1
    sums, counts = _class_sums(unit, labels, num_classes)
    cosine = _cosine_to_means(unit, sums, counts)
    own_sum = sums[labels] - unit
    own = ((unit * own_sum).sum(dim=1)) / torch.linalg.vector_norm(own_sum, dim=1).clamp_min(1e-12)
    own[counts[labels] < 2] = -math.inf
    cosine[torch.arange(unit.shape[0]), labels] = own
    predictions = cosine.argmax(dim=1)
    return float(((predictions == labels) & (counts[labels] >= 2)).double().mean())


# ---- clustering ----


@torch.no_grad()
def kmeans(
    points, num_clusters: int, *, seed: int = 0, max_iter: int = 300, tol: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means in float64 with k-means++ seeding (Arthur & Vassilvitskii 2007); deterministic from seed.

    Seeding (greedy k-means++, as sklearn's): the first centre is a uniformly drawn point; for each next one,
    2 + ⌊ln k⌋ candidates are drawn with probability proportional to their squared distance to the nearest
    centre so far, and the candidate that most lowers the sum of those distances is kept. Lloyd iterations then alternate
    assignment to the nearest centre (squared Euclidean) and centre = mean of its points, until the
    assignment no longer changes, the centres move less than ``tol`` × the mean per-feature variance of the
    points (sum of squared shifts; sklearn's rule and default), or ``max_iter``. A cluster left empty takes
    the point farthest from its centre. One initialisation, as sklearn's ``n_init="auto"`` for k-means++.

    Returns (assignments (N,) int64, centres (num_clusters, d) float64).
    """
    x = _embeddings(points, "points")
    n = x.shape[0]
    if not 1 <= num_clusters <= n:
        raise ValueError(f"num_clusters must lie in [1, {n}] (the number of points), got {num_clusters}")
    generator = torch.Generator().manual_seed(seed)
    squared_norms = x.square().sum(dim=1)

    def squared_distances(indices):  # (len(indices), N), by a product: no (N, d) temporaries
        return (squared_norms[indices].unsqueeze(1) - 2.0 * x[indices] @ x.T + squared_norms).clamp_min(0.0)

    trials = 2 + int(math.log(num_clusters))
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    nearest = squared_distances(torch.tensor(chosen))[0]
    for _ in range(1, num_clusters):
        if float(nearest.sum()) > 0:
            candidates = torch.multinomial(nearest, trials, replacement=True, generator=generator)
        else:  # fewer distinct points than clusters
            candidates = torch.randint(n, (trials,), generator=generator)
        potentials = torch.minimum(nearest, squared_distances(candidates))
        best = int(potentials.sum(dim=1).argmin())
        chosen.append(int(candidates[best]))
        nearest = potentials[best]
    centres = x[chosen].clone()

    def nearest_centre(centres):
        distances = squared_norms.unsqueeze(1) - 2.0 * x @ centres.T + centres.square().sum(dim=1)
        return distances.argmin(dim=1), distances

    tolerance = tol * float(x.var(dim=0, unbiased=False).mean())
    assignments = None
    for _ in range(max_iter):
        new_assignments, distances = nearest_centre(centres)
        if assignments is not None and torch.equal(new_assignments, assignments):
            break
        assignments = new_assignments
        sums = torch.zeros_like(centres).index_add_(0, assignments, x)
        counts = torch.bincount(assignments, minlength=num_clusters)
        empty = counts == 0
        if empty.any():
            own_distance = distances.gather(1, assignments.unsqueeze(1)).squeeze(1)
            farthest = own_distance.topk(int(empty.sum())).indices
            sums[empty], counts[empty] = x[farthest], 1
        shift = float((sums / counts.unsqueeze(1) - centres).square().sum())
        centres = sums / counts.unsqueeze(1)
        if shift <= tolerance:
            assignments, _ = nearest_centre(centres)
            break
    return assignments, centres


def normalized_mutual_info(labels, clusters) -> float:
    """NMI = I(Y; K) / ((H(Y) + H(K)) / 2): mutual information over the arithmetic mean of the entropies.

    The arithmetic mean is sklearn's default ``average_method``. It is symmetric and in [0, 1]; 1 when the
    two partitions are the same up to renaming. Both partitions a single group: 1 (as sklearn).

    Example::

        >>> round(normalized_mutual_info([0, 0, 1, 1], [0, 0, 0, 1]), 4)
        0.3437
    """
    a, b = _as_ids(labels), _as_ids(clusters)
    if a.shape != b.shape:
        raise ValueError(f"labels and clusters differ in length: {a.shape} and {b.shape}")
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    n = a.size
    if n == 0:
        return float("nan")
    table = np.bincount(a * (b.max() + 1) + b, minlength=(a.max() + 1) * (b.max() + 1))
    table = table.reshape(a.max() + 1, b.max() + 1).astype(np.float64)
    p_ab = table / n
    p_a, p_b = p_ab.sum(axis=1), p_ab.sum(axis=0)
    h_a, h_b = -np.sum(p_a * np.log(p_a)), -np.sum(p_b * np.log(p_b))
    if h_a + h_b == 0:
        return 1.0
    nonzero = p_ab > 0
    mutual = np.sum(p_ab[nonzero] * np.log(p_ab[nonzero] / np.outer(p_a, p_b)[nonzero]))
    return float(min(max(mutual / ((h_a + h_b) / 2), 0.0), 1.0))


def _as_ids(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values).ravel()


@torch.no_grad()
def clustering_nmi(embeddings, labels, *, seed: int = 0) -> float:
    """NMI between the labels and k-means clusters of the unit embeddings, k = the number of classes present.

    k-means runs on the unit vectors (the cosine geometry the other metrics use), seeded by ``seed``; see
    ``kmeans`` and ``normalized_mutual_info``.
    """
    unit = _unit(_embeddings(embeddings))
    labels = _labels(labels, unit.shape[0])
    if unit.shape[0] == 0:
        return float("nan")
    clusters, _ = kmeans(unit, int(torch.unique(labels).numel()), seed=seed)
    return normalized_mutual_info(labels, clusters)


@torch.no_grad()
def embedding_metrics(
    embeddings,
    labels,
    *,
    k: int = 10,
    block_size: int = 1024,
    seed: int = 0,
    similarity_dtype: torch.dtype = torch.float32,
) -> dict:
    """All label-only metrics of an evaluation set: ``retrieval_metrics`` plus "nearest_class_mean_accuracy"
    (leave one out) and "nmi" (``clustering_nmi``)."""
    return {
        **retrieval_metrics(
            embeddings, labels, k=k, block_size=block_size, similarity_dtype=similarity_dtype
        ),
        "nearest_class_mean_accuracy": nearest_class_mean_accuracy(embeddings, labels),
        "nmi": clustering_nmi(embeddings, labels, seed=seed),
    }


REPORTED_METRICS = (
    "precision_at_1", "map_at_r", "r_precision", "knn_accuracy", "nearest_class_mean_accuracy", "nmi",
)  # fmt: skip


def reported_embedding_metrics(embeddings, labels, *, seed: int = 0) -> dict[str, float]:
    """The ``embedding_metrics`` that evaluation reports beside the head's accuracy (no counts)."""
    metrics = embedding_metrics(embeddings, labels, seed=seed)
    return {name: metrics[name] for name in REPORTED_METRICS}


# ---- open set ----


@torch.no_grad()
def cosine_novelty(embeddings, reference, reference_labels) -> torch.Tensor:
    """Novelty of each clip: 1 − max_c cos(u, m_c), m_c the mean of the reference's unit vectors of class c.

    The reference is the set the classes are known from (the training embeddings); a clip far from every
    known class mean is likely of an unknown class. In [0, 2]; returns (N,) float64.
    """
    unit = _unit(_embeddings(embeddings))
    reference_unit = _unit(_embeddings(reference, "reference"))
    reference_labels = _labels(reference_labels, reference_unit.shape[0], "reference_labels")
    sums, counts = _class_sums(reference_unit, reference_labels, int(reference_labels.max()) + 1)
    return 1.0 - _cosine_to_means(unit, sums, counts).max(dim=1).values


@torch.no_grad()
def mahalanobis_novelty(embeddings, reference, reference_labels, *, shrinkage: float = 0.0) -> torch.Tensor:
    """Novelty of each clip: min_c (x − μ_c)ᵀ Σ⁺ (x − μ_c), Lee et al. 2018's class-conditional Gaussian score.

    μ_c are the class means of the raw reference embeddings (the training set) and Σ their one shared
    covariance, Σ = (1/M) Σ_i (x_i − μ_{y_i})(x_i − μ_{y_i})ᵀ over the M reference clips (maximum likelihood,
    as sklearn's ``EmpiricalCovariance`` in the post-processors that use this score). Σ⁺ is its pseudo-inverse:
    eigenvalues below d·ε·λ_max are dropped (scipy ``pinvh``'s cut-off), so a reference with fewer clips than
    dimensions still gives finite scores. ``shrinkage`` s ∈ [0, 1] uses (1 − s)·Σ + s·(tr Σ / d)·I instead
    (ridge towards the average variance; 0 = no shrinkage, the default), which helps when M is not ≫ d.
    Returns (N,) float64 squared distances.
    """
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must lie in [0, 1], got {shrinkage}")
    x = _embeddings(embeddings)
    reference = _embeddings(reference, "reference")
    reference_labels = _labels(reference_labels, reference.shape[0], "reference_labels")
    if x.shape[1] != reference.shape[1]:
        raise ValueError(f"embeddings have {x.shape[1]} dimensions, the reference {reference.shape[1]}")
    sums, counts = _class_sums(reference, reference_labels, int(reference_labels.max()) + 1)
    present = counts > 0
    means = sums[present] / counts[present].unsqueeze(1)
    means_of_rows = sums[reference_labels] / counts[reference_labels].unsqueeze(1)
    centred = reference - means_of_rows
    covariance = centred.T @ centred / reference.shape[0]
    dimension = covariance.shape[0]
    if shrinkage:
        average_variance = covariance.diagonal().sum() / dimension
        covariance = (1.0 - shrinkage) * covariance + shrinkage * average_variance * torch.eye(
            dimension, dtype=torch.float64
        )
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    keep = eigenvalues > dimension * torch.finfo(torch.float64).eps * eigenvalues.abs().max()
    whiten = eigenvectors[:, keep] / eigenvalues[keep].sqrt()  # ‖(x − μ) W‖² = (x − μ)ᵀ Σ⁺ (x − μ)
    x_white, means_white = x @ whiten, means @ whiten
    squared = (
        x_white.square().sum(dim=1, keepdim=True)
        - 2.0 * x_white @ means_white.T
        + means_white.square().sum(dim=1)
    )
    return squared.min(dim=1).values.clamp_min(0.0)


def _scores_and_flags(scores, is_unknown) -> tuple[np.ndarray, np.ndarray]:
    scores = _as_ids(scores).astype(np.float64)
    flags = _as_ids(is_unknown).astype(bool)
    if scores.shape != flags.shape:
        raise ValueError(f"scores and is_unknown differ in length: {scores.shape} and {flags.shape}")
    if flags.all() or not flags.any():
        raise ValueError("is_unknown must contain both unknown (True) and known (False) clips")
    return scores, flags


def auroc(scores, is_unknown) -> float:
    """Area under the ROC curve for telling unknown clips (positives) from known ones by score (higher = novel).

    AUROC = P(s⁺ > s⁻) + ½·P(s⁺ = s⁻) over pairs of an unknown and a known clip: the Mann-Whitney statistic,
    computed from average ranks, so a tie counts half. 0.5 is chance, 1 a perfect separation.

    Example::

        >>> auroc([0.9, 0.5, 0.5, 0.1], [True, True, False, False])  # pairs: 1, 1, ½, 1 → 3.5 / 4
        0.875
    """
    scores, flags = _scores_and_flags(scores, is_unknown)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.insert(np.diff(sorted_scores) != 0, 0, True))
    ends = np.append(starts[1:], scores.size) - 1
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat((starts + ends) / 2.0 + 1.0, ends - starts + 1)
    positives, negatives = int(flags.sum()), int((~flags).sum())
    return float((ranks[flags].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def fpr_at_95_tpr(scores, is_unknown, tpr: float = 0.95) -> float:
    """The share of known clips flagged as novel when the threshold flags at least 95 % of the unknown ones.

    Clips with score ≥ t are flagged. t is the largest score value at which the true-positive rate (share of
    unknown clips flagged) reaches ``tpr``; the result is the false-positive rate (share of known clips
    flagged) there. Tied scores are flagged together. Lower is better.

    Example::

        >>> fpr_at_95_tpr([0.9, 0.8, 0.7, 0.6], [True, False, True, False])  # t = 0.7 flags 1 of 2 known
        0.5
    """
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must lie in (0, 1], got {tpr}")
    scores, flags = _scores_and_flags(scores, is_unknown)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_flags = scores[order], flags[order]
    ends = np.flatnonzero(np.append(np.diff(sorted_scores) != 0, True))
    true_positives = np.cumsum(sorted_flags)[ends]
    false_positives = (ends + 1) - true_positives
    needed = math.ceil(tpr * flags.sum() - 1e-9)  # unknown clips to flag (1e-9: 0.7 · 10 = 7.000…01)
    reached = np.flatnonzero(true_positives >= needed)[0]
    return float(false_positives[reached] / (~flags).sum())


def open_set_metrics(scores, is_unknown) -> dict:
    """{"auroc", "fpr_at_95_tpr"} of novelty scores, unknown clips as positives (see ``auroc``)."""
    return {"auroc": auroc(scores, is_unknown), "fpr_at_95_tpr": fpr_at_95_tpr(scores, is_unknown)}
