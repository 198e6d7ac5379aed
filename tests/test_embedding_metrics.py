"""embedding_metrics against hand computation and brute-force references (python loops, no sklearn)."""

import math

import numpy as np
import pytest
import torch

from hf_add.embedding_metrics import (
    auroc,
    clustering_nmi,
    cosine_novelty,
    embedding_metrics,
    fpr_at_95_tpr,
    kmeans,
    knn_accuracy,
    mahalanobis_novelty,
    nearest_class_mean_accuracy,
    normalized_mutual_info,
    open_set_metrics,
    retrieval_metrics,
)


def _on_circle(degrees, norms=None):
    """2-D points at these angles; within 90 degrees cosine similarity falls with the angle between them."""
    radians = np.deg2rad(np.asarray(degrees, dtype=float))
    points = np.stack([np.cos(radians), np.sin(radians)], axis=1)
    if norms is not None:
        points = points * np.asarray(norms, dtype=float)[:, None]
    return torch.tensor(points)


# a: 0° (class 0), b: 10° (class 1, alone), c: 21° (0), d: 33° (0), e: 46° (class 2, alone), f: 60° (0)
ANGLES = [0, 10, 21, 33, 46, 60]
CLASSES = [0, 1, 0, 0, 2, 0]


def test_retrieval_by_hand():
    # Class 0 queries have R = 3; b and e have no other clip of their class and are skipped.
    # a: neighbours b, c, d, e, f -> rel 0 1 1 | 0 1: P@1 0, R-prec 2/3, AP@R (1/3)(1/2 + 2/3) = 7/18
    # c: b(11°), d(12°), a(21°), e, f -> 0 1 1: same, 7/18
    # d: c(12°), e(13°), b(23°), f, a -> 1 0 0: P@1 1, R-prec 1/3, AP@R 1/3
    # f: e(14°), d(27°), c(39°), b, a -> 0 1 1: 7/18
    # (plain AP of a would be (1/2 + 2/3 + 3/5)/3: MAP@R ignores the relevant item at rank 5)
    norms = [1.0, 3.0, 0.5, 2.0, 1.0, 7.0]  # cosine, not dot product: lengths must not matter
    result = retrieval_metrics(_on_circle(ANGLES, norms), torch.tensor(CLASSES), k=3, block_size=4)
    assert result["num_skipped_queries"] == 2
    assert result["num_queries"] == 6
    assert result["precision_at_1"] == pytest.approx(1 / 4, abs=1e-12)
    assert result["r_precision"] == pytest.approx((3 * 2 / 3 + 1 / 3) / 4, abs=1e-12)
    assert result["map_at_r"] == pytest.approx((3 * 7 / 18 + 1 / 3) / 4, abs=1e-12)
    # k = 3 votes: a (b c d) 0 ✓; b (a c d) 0 ✗; c (b d a) 0 ✓; d (c e b) three-way tie, c is nearest ✓;
    # e (d f c) 0 ✗; f (e d c) 0 ✓
    assert result["knn_accuracy"] == pytest.approx(4 / 6, abs=1e-12)
    assert result["knn_k"] == 3


def test_retrieval_when_no_query_has_a_class_mate():
    result = retrieval_metrics(torch.eye(3), torch.tensor([0, 1, 2]))
    assert result["num_skipped_queries"] == 3
    assert all(math.isnan(result[name]) for name in ("precision_at_1", "map_at_r", "r_precision"))
    assert result["knn_accuracy"] == 0.0


def _retrieval_reference(x, y, k):
    """Full N×N, one query at a time, straight from the definitions."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    p1, map_r, r_prec, knn = [], [], [], 0
    for i in range(len(x)):
        others = [j for j in range(len(x)) if j != i]
        ranked = sorted(others, key=lambda j: -float(x[i] @ x[j]))
        rel = [int(y[j] == y[i]) for j in ranked]
        r = sum(rel)
        if r:
            p1.append(rel[0])
            r_prec.append(sum(rel[:r]) / r)
            map_r.append(sum(sum(rel[: n + 1]) / (n + 1) * rel[n] for n in range(r)) / r)
        votes, summed = {}, {}
        for j in ranked[:k]:
            votes[y[j]] = votes.get(y[j], 0) + 1
            summed[y[j]] = summed.get(y[j], 0.0) + float(x[i] @ x[j])
        best = max(votes, key=lambda c: (votes[c], summed[c]))
        knn += int(best == y[i])
    return np.mean(p1), np.mean(map_r), np.mean(r_prec), knn / len(x), len(x) - len(p1)


@pytest.mark.parametrize("seed", [0, 1])
def test_blocked_retrieval_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 5))
    y = rng.integers(0, 4, size=60)
    y[7] = 4  # a class of one: skipped
    x[y == 1] += 1.5  # some structure, so the metrics are not all near chance
    p1, map_r, r_prec, knn, skipped = _retrieval_reference(x, y, k=5)
    result = retrieval_metrics(torch.tensor(x), torch.tensor(y), k=5, block_size=7)
    assert result["precision_at_1"] == pytest.approx(p1, abs=1e-12)
    assert result["map_at_r"] == pytest.approx(map_r, abs=1e-12)
    assert result["r_precision"] == pytest.approx(r_prec, abs=1e-12)
    assert result["knn_accuracy"] == pytest.approx(knn, abs=1e-12)
    assert result["num_skipped_queries"] == skipped == 1
    assert knn_accuracy(torch.tensor(x), y, k=5, block_size=11) == pytest.approx(knn, abs=1e-12)
    # float32 products: the same rankings here (no two similarities within 1e-6)
    single = retrieval_metrics(
        torch.tensor(x), torch.tensor(y), k=5, block_size=16, similarity_dtype=torch.float32
    )
    assert single["map_at_r"] == pytest.approx(map_r, abs=1e-12)
    assert single["knn_accuracy"] == pytest.approx(knn, abs=1e-12)


def test_knn_vote_tie_goes_to_the_more_similar_class():
    # the query's two neighbours: class 1 at 10°, class 0 at 20°; one vote each, class 1 is closer
    reference, reference_labels = _on_circle([10, 20, 80]), [1, 0, 0]
    assert knn_accuracy(_on_circle([0]), [1], reference, reference_labels, k=2) == 1.0
    assert knn_accuracy(_on_circle([0]), [0], reference, reference_labels, k=3) == 1.0  # 2 votes to 1


def _ncm_reference(x, y):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    correct = 0
    for i in range(len(x)):
        best, best_cos = None, -np.inf
        for c in sorted(set(y.tolist())):
            members = [j for j in range(len(x)) if y[j] == c and j != i]
            if not members:
                continue
            mean = x[members].mean(axis=0)
            cos = float(x[i] @ mean / np.linalg.norm(mean))
            if cos > best_cos:
                best, best_cos = c, cos
        correct += int(best == y[i])
    return correct / len(x)


def test_nearest_class_mean_leave_one_out_matches_brute_force():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, size=40)
    y[5] = 3  # alone: its class has no mean without it, so it counts as wrong
    x[y == 0] += 1.0
    expected = _ncm_reference(x, y)
    assert nearest_class_mean_accuracy(torch.tensor(x), torch.tensor(y)) == pytest.approx(expected, abs=1e-12)
    # in-sample means would differ: the clip would pull its own mean towards itself
    assert 0.0 < expected < 1.0


def test_nearest_class_mean_with_a_reference():
    reference, reference_labels = _on_circle([0, 40, 80, 90]), [0, 0, 1, 1]  # means at 20° and 85°
    # 50° is 30° from class 0's mean, 35° from class 1's: class 0 ✓; 55° is nearer class 1's (30° vs 35°) ✗;
    # 10° ✓
    queries = _on_circle([50, 55, 10])
    assert nearest_class_mean_accuracy(queries, [0, 0, 0], reference, reference_labels) == pytest.approx(
        2 / 3
    )


# ---- clustering ----


def test_nmi_by_hand():
    # table [[2, 0], [1, 1]] / 4: I = ½ln(4/3) + ¼ln(2/3) + ¼ln 2; H(Y) = ln 2; H(K) = -(¾ln¾ + ¼ln¼)
    mutual = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    entropy_k = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    expected = mutual / ((math.log(2) + entropy_k) / 2)
    assert normalized_mutual_info([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(expected, abs=1e-12)
    assert normalized_mutual_info([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert normalized_mutual_info([0, 0, 1, 2], [5, 5, 9, 7]) == pytest.approx(1.0)  # renaming
    assert normalized_mutual_info([0, 0], [3, 3]) == 1.0


def test_kmeans_finds_separated_blobs():
    generator = torch.Generator().manual_seed(0)
    centres = torch.eye(8)[:4] * 10
    labels = torch.arange(100) % 4
    points = centres[labels] + 0.1 * torch.randn(100, 8, generator=generator)
    assignments, found = kmeans(points, 4, seed=1)
    assert normalized_mutual_info(labels, assignments) == pytest.approx(1.0)
    assert torch.equal(kmeans(points, 4, seed=1)[0], assignments)  # deterministic from the seed
    assert found.dtype == torch.float64
    assert clustering_nmi(points, labels) == pytest.approx(1.0)
    # labels unrelated to the blobs: NMI near 0
    assert clustering_nmi(points, torch.randperm(100, generator=generator) % 4) < 0.2


def test_embedding_metrics_bundle():
    result = embedding_metrics(_on_circle(ANGLES), CLASSES, k=3, block_size=2)
    assert result["map_at_r"] == pytest.approx(3 / 8, abs=1e-12)
    assert set(result) >= {"nearest_class_mean_accuracy", "nmi", "precision_at_1", "knn_accuracy"}


# ---- open set ----


def test_cosine_novelty_by_hand():
    reference, reference_labels = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]]), [0, 0, 1]
    novelty = cosine_novelty(torch.tensor([[3.0, 0.0], [0.0, -1.0]]), reference, reference_labels)
    # class 0's mean points at 45°; class 1's at 180°
    assert novelty.tolist() == pytest.approx([1 - 1 / math.sqrt(2), 1.0], abs=1e-12)


def test_mahalanobis_novelty_by_hand():
    # class 0 centred at the origin: (±1, 0), (0, ±2) -> shared covariance diag(2/4, 8/4); class 1 far away
    reference = torch.tensor(
        [[1.0, 0], [-1, 0], [0, 2], [0, -2], [101, 100], [99, 100], [100, 102], [100, 98]]
    )
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    query = torch.tensor([[1.0, 1.0]])
    assert mahalanobis_novelty(query, reference, labels).item() == pytest.approx(1 / 0.5 + 1 / 2.0, abs=1e-9)
    # full shrinkage: (tr Σ / d) I = 1.25 I -> squared distance / 1.25
    assert mahalanobis_novelty(query, reference, labels, shrinkage=1.0).item() == pytest.approx(2 / 1.25)


def test_mahalanobis_matches_numpy_pinv_and_survives_fewer_clips_than_dimensions():
    rng = np.random.default_rng(4)
    reference, labels = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6)), rng.integers(0, 3, size=50)
    queries = rng.normal(size=(5, 6))
    means = np.stack([reference[labels == c].mean(axis=0) for c in range(3)])
    centred = reference - means[labels]
    precision = np.linalg.pinv(centred.T @ centred / len(reference))
    expected = [min((q - m) @ precision @ (q - m) for m in means) for q in queries]
    got = mahalanobis_novelty(torch.tensor(queries), torch.tensor(reference), torch.tensor(labels))
    assert got.tolist() == pytest.approx(expected, rel=1e-9)
    few = mahalanobis_novelty(torch.tensor(queries), torch.tensor(reference[:4]), torch.tensor([0, 0, 1, 1]))
    assert torch.isfinite(few).all()


def _auroc_reference(scores, unknown):
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p in np.asarray(scores)[unknown]
        for n in np.asarray(scores)[~unknown]
    ]
    return sum(pairs) / len(pairs)


def test_auroc_by_hand_and_against_all_pairs():
    assert auroc([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == 0.875  # pairs 1, 1, ½, 1
    assert auroc([0.3, 0.3, 0.3], [True, False, False]) == 0.5
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    rng = np.random.default_rng(5)
    scores, unknown = rng.integers(0, 5, size=40).astype(float), rng.random(40) < 0.3
    assert auroc(torch.tensor(scores), unknown) == pytest.approx(_auroc_reference(scores, unknown), abs=1e-12)
    with pytest.raises(ValueError, match="both unknown"):
        auroc([0.1, 0.2], [True, True])


def _fpr_reference(scores, unknown, tpr=0.95):
    scores, unknown = np.asarray(scores), np.asarray(unknown)
    for threshold in sorted(set(scores.tolist()), reverse=True):
        flagged = scores >= threshold
        if (flagged & unknown).sum() >= tpr * unknown.sum():
            return (flagged & ~unknown).sum() / (~unknown).sum()
    raise AssertionError


def test_fpr_at_95_tpr_by_hand_with_a_tie_at_the_threshold():
    unknown_scores = [0.60 + 0.02 * i for i in range(19)] + [0.1]  # 19 of 20 flagged at t = 0.60
    known_scores = [0.05, 0.2, 0.3, 0.4, 0.5, 0.55, 0.60, 0.7, 0.8, 0.97]  # 0.60 ties with an unknown
    scores = unknown_scores + known_scores
    unknown = [True] * 20 + [False] * 10
    assert fpr_at_95_tpr(scores, unknown) == pytest.approx(4 / 10)  # 0.60, 0.7, 0.8, 0.97
    assert open_set_metrics(scores, unknown)["fpr_at_95_tpr"] == pytest.approx(0.4)
    rng = np.random.default_rng(6)
    for _ in range(10):
        scores, unknown = rng.integers(0, 8, size=50).astype(float), rng.random(50) < 0.4
        unknown[:2] = [True, False]
        assert fpr_at_95_tpr(scores, unknown) == pytest.approx(_fpr_reference(scores, unknown), abs=1e-12)
