"""Tests of ADD, Focal and OPL against independent references: loops over pairs, hand arithmetic, torch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_add.losses import ADDLoss, FocalLoss, OrthogonalProjectionLoss, add_statistics
from hf_add.losses.normalization import row_maxima
from hf_add.losses.pair_moments import count_positive_pairs
from hf_add.losses.validation import check_shapes, check_values

HARD_KEYS = ("mu_p", "sigma_p", "mu_n", "sigma_n", "num_positive_pairs", "num_negative_pairs")


# --- brute-force reference of paper eq. 1-8, one ordered pair at a time, in Python floats ---------------


def _unit_rows(matrix, eps=1e-6):
    rows = matrix.double().tolist()
    return [[x / max(math.sqrt(sum(v * v for v in row)), eps) for x in row] for row in rows]


def _dot(u, v):
    return sum(a * b for a, b in zip(u, v, strict=True))


def _mean(values):
    return sum(values) / len(values) if values else 0.0


def _sample_std(values):
    if len(values) < 2:
        return 0.0
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def reference_statistics(embeddings, labels, eps=1e-6):
    """ADD statistics from the paper's definitions, written independently of the library."""
    z = _unit_rows(embeddings, eps)
    n = len(z)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    distance = {(i, j): 1.0 - _dot(z[i], z[j]) for i, j in pairs}
    if labels.dim() == 1:
        y = labels.tolist()
        positives = [distance[p] ** 2 for p in pairs if y[p[0]] == y[p[1]]]
        negatives = [(1.0 - distance[p]) ** 2 for p in pairs if y[p[0]] != y[p[1]]]
        return {
            "mu_p": _mean(positives),
            "sigma_p": _sample_std(positives),
            "mu_n": _mean(negatives),
            "sigma_n": _sample_std(negatives),
            "num_positive_pairs": len(positives),
            "num_negative_pairs": len(negatives),
        }
    y = _unit_rows(labels)
    pairs = [(i, j) for i, j in pairs if any(y[i]) and any(y[j])]  # a row of zeros has no label: left out
    label_distance = {(i, j): 1.0 - _dot(y[i], y[j]) for i, j in pairs}
    positives = [distance[p] ** 2 for p in pairs if label_distance[p] < 1e-3]
    return {
        "mu": _mean([(label_distance[p] - distance[p]) ** 2 for p in pairs]),
        "sigma_p": _sample_std(positives),
        "num_positive_pairs": len(positives),
        "num_pairs": len(pairs),
    }


def reference_loss(stats, lambdas):
    return sum(lambdas[name] * value for name, value in stats.items() if name in lambdas)


def hard_batch(batch_size, num_classes, dim=8, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(batch_size, dim, generator=generator, dtype=dtype)
    return z, torch.randint(0, num_classes, (batch_size,), generator=generator)


def mixup_batch(batch_size, num_classes, dim=8, dtype=torch.float64, seed=0):
    """Mixup targets: half the rows are λ·one-hot + (1-λ)·one-hot, λ ~ Beta(0.4, 0.4); the rest un-mixed,
    so that identical label vectors (soft positives) exist."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(batch_size, dim, generator=generator, dtype=dtype)
    first = F.one_hot(torch.randint(0, num_classes, (batch_size,), generator=generator), num_classes)
    second = F.one_hot(torch.randint(0, num_classes, (batch_size,), generator=generator), num_classes)
    lam = torch.distributions.Beta(0.4, 0.4).sample((batch_size, 1)).to(dtype)
    lam[batch_size // 2 :] = 1.0
    return z, lam * first.to(dtype) + (1.0 - lam) * second.to(dtype)


def assert_matches_reference(stats, expected, rtol, atol):
    assert set(stats) == set(expected)
    for name, value in expected.items():
        assert stats[name].item() == pytest.approx(value, rel=rtol, abs=atol), name


# --- ADD: correctness against the reference ---------------------------------------------------------------

BATCHES = [(2, 2), (5, 2), (16, 3), (33, 4)]
LAMBDAS = {"mu_p": 0.7, "sigma_p": 1.3, "mu_n": 2.0, "sigma_n": 0.4, "mu": 1.7}


@pytest.mark.parametrize(("batch_size", "num_classes"), BATCHES)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_add_float64_matches_reference(batch_size, num_classes, soft):
    z, labels = (mixup_batch if soft else hard_batch)(batch_size, num_classes, seed=batch_size)
    expected = reference_statistics(z, labels)
    assert_matches_reference(add_statistics(z, labels), expected, rtol=1e-6, atol=1e-12)
    loss_fn = ADDLoss(*(LAMBDAS[k] for k in ("mu_p", "sigma_p", "mu_n", "sigma_n", "mu")))
    assert loss_fn(z, labels).item() == pytest.approx(reference_loss(expected, LAMBDAS), rel=1e-6)


@pytest.mark.parametrize(("batch_size", "num_classes"), BATCHES)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_add_float32_matches_reference(batch_size, num_classes, soft):
    z, labels = (mixup_batch if soft else hard_batch)(batch_size, num_classes, dtype=torch.float32, seed=7)
    stats = add_statistics(z, labels)
    assert all(value.dtype == torch.float32 for value in stats.values())
    assert_matches_reference(stats, reference_statistics(z, labels), rtol=1e-5, atol=1e-6)


def test_soft_form_with_one_hot_labels_reduces_to_hard_means():
    """L_μ = (|Dp|·μp + |Dn|·μn) / (B(B - 1)) when the soft labels are one-hot (paper §3.4)."""
    z, ids = hard_batch(16, 3)
    hard = add_statistics(z, ids)
    soft = add_statistics(z, F.one_hot(ids, 3).double())
    expected = (hard["num_positive_pairs"] * hard["mu_p"] + hard["num_negative_pairs"] * hard["mu_n"]) / (
        16 * 15
    )
    torch.testing.assert_close(soft["mu"], expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(soft["sigma_p"], hard["sigma_p"], rtol=1e-12, atol=0)
    assert soft["num_positive_pairs"] == hard["num_positive_pairs"]


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("lambdas", [(1.0, 1.0, 1.0, 1.0, 1.0), (0.3, 2.5, 0.0, 1.7, 0.6)])
def test_add_gradcheck(soft, lambdas):
    z, labels = (mixup_batch if soft else hard_batch)(7, 2, dim=4, seed=3)
    loss_fn = ADDLoss(*lambdas)
    assert torch.autograd.gradcheck(lambda x: loss_fn(x, labels), (z.requires_grad_(),))


def multi_hot_batch(batch_size, num_classes, dim=8, seed=0):
    """Multi-label rows: one to three classes per clip, some rows repeated (identical label sets, the
    positives) and two rows of zeros (clips with no label)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(batch_size, dim, generator=generator, dtype=torch.float64)
    labels = (torch.rand(batch_size, num_classes, generator=generator) < 0.3).double()
    labels[torch.arange(batch_size), torch.randint(0, num_classes, (batch_size,), generator=generator)] = 1.0
    labels[1::4] = labels[0::4][: len(labels[1::4])]
    labels[2] = labels[5] = 0.0
    return z, labels


def test_multi_hot_labels_match_the_pair_by_pair_reference_with_unlabelled_rows_left_out():
    """Multi-label extension (DESIGN §7): eq. 7's d^y on multi-hot vectors, σp over identical label sets,
    rows of zeros in no pair."""
    z, labels = multi_hot_batch(12, 5)
    stats = add_statistics(z, labels)
    expected = reference_statistics(z, labels)
    assert expected["num_pairs"] == 10 * 9 and expected["num_positive_pairs"] > 0
    assert_matches_reference(stats, expected, rtol=1e-6, atol=1e-12)
    loss_fn = ADDLoss()
    assert torch.autograd.gradcheck(lambda x: loss_fn(x, labels), (z.clone().requires_grad_(),))
    # The unlabelled rows take no part: moving them changes nothing.
    moved = z.clone()
    moved[[2, 5]] = torch.randn(2, z.shape[1], dtype=z.dtype)
    torch.testing.assert_close(loss_fn(moved, labels), loss_fn(z, labels))


# --- ADD: degenerate batches --------------------------------------------------------------------------


def _loss_and_grad(z, labels):
    z = z.clone().requires_grad_()
    stats = add_statistics(z, labels)
    loss = ADDLoss().loss_from_statistics(stats)
    assert loss.requires_grad
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    return stats, loss, grad


def _zero_terms(stats):
    return {name for name, value in stats.items() if not name.startswith("num") and value.item() == 0.0}


def test_single_sample_has_every_term_zero():
    stats, loss, grad = _loss_and_grad(torch.randn(1, 4), torch.tensor([3]))
    assert _zero_terms(stats) == {"mu_p", "sigma_p", "mu_n", "sigma_n"}
    assert loss.item() == 0.0 and (grad == 0).all()
    stats, loss, _ = _loss_and_grad(torch.randn(1, 4), torch.tensor([[0.2, 0.8]]))
    assert _zero_terms(stats) == {"mu", "sigma_p"}


def test_one_class_only_has_no_negative_terms():
    stats, _, _ = _loss_and_grad(torch.randn(6, 4), torch.zeros(6, dtype=torch.long))
    assert _zero_terms(stats) == {"mu_n", "sigma_n"}
    assert stats["num_negative_pairs"] == 0 and stats["num_positive_pairs"] == 30


def test_every_sample_its_own_class_has_no_positive_terms():
    stats, _, _ = _loss_and_grad(torch.randn(6, 4), torch.arange(6))
    assert _zero_terms(stats) == {"mu_p", "sigma_p"}
    stats, _, _ = _loss_and_grad(torch.randn(3, 4), torch.eye(3) * 0.6 + 0.1)  # distinct soft rows
    assert _zero_terms(stats) == {"sigma_p"} and stats["num_positive_pairs"] == 0


def test_two_samples():
    """One positive pair (two equal ordered values: σp exactly 0) or one negative pair (σn exactly 0)."""
    stats, _, _ = _loss_and_grad(torch.randn(2, 5), torch.tensor([1, 1]))
    assert _zero_terms(stats) == {"sigma_p", "mu_n", "sigma_n"}
    stats, _, _ = _loss_and_grad(torch.randn(2, 5), torch.tensor([0, 1]))
    assert _zero_terms(stats) == {"mu_p", "sigma_p", "sigma_n"}


@pytest.mark.parametrize("seed", range(8))
def test_single_positive_pair_among_negatives_has_zero_sigma(seed):
    """Regression: an unsymmetrised Gram matrix made d_ij ≠ d_ji by one rounding, so σp ≈ 1e-7 with an
    O(1) gradient of random sign."""
    torch.manual_seed(seed)
    for dtype in (torch.float32, torch.float64):
        z = torch.randn(9, 16, dtype=dtype)
        stats, _, _ = _loss_and_grad(z, torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 0]))
        assert stats["num_positive_pairs"] == 2 and stats["sigma_p"].item() == 0.0
        assert stats["mu_p"].item() > 0 and stats["sigma_n"].item() > 0


def test_zero_embedding_is_finite():
    z = torch.randn(5, 4)
    z[2] = 0.0
    stats, _, _ = _loss_and_grad(z, torch.tensor([0, 0, 1, 1, 0]))
    # ẑ = 0 gives d = 1 with every other sample.
    assert_matches_reference(stats, reference_statistics(z, torch.tensor([0, 0, 1, 1, 0])), 1e-5, 1e-6)


def test_identical_embeddings_are_a_stationary_point():
    """All pairs equal: σp = σn = 0 up to the rounding of the mean, and no gradient at all (every d_ij
    is at its extremum, and σ's rounding-noise gradient is radial, which the normalisation removes)."""
    z = torch.randn(1, 8).expand(6, 8)
    stats, _, grad = _loss_and_grad(z, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert stats["sigma_p"].item() == 0.0 and stats["sigma_n"].item() < 1e-6
    assert stats["mu_p"].item() == pytest.approx(0.0, abs=1e-12)
    assert stats["mu_n"].item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(grad, torch.zeros_like(grad), rtol=0, atol=1e-6)


# --- ADD: input validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("embeddings", "labels", "kwargs", "message"),
    [
        (torch.randn(4, 3), torch.tensor([0, 1, 0]), {}, "same batch size"),
        (torch.randn(4, 3, 2), torch.tensor([0, 1, 0, 1]), {}, "shape"),
        (torch.tensor([[0.0, math.nan]] * 2), torch.tensor([0, 1]), {}, "NaN"),
        (torch.randn(2, 3), torch.tensor([0, -1]), {}, ">= 0"),
        (torch.randn(2, 3), torch.tensor([0, 5]), {"num_classes": 5}, "< num_classes"),
        (torch.randn(2, 3), torch.tensor([[1.2, -0.2], [0.5, 0.5]]), {}, "negative entry"),
        (torch.randn(2, 3), torch.tensor([0.0, 1.0]), {}, "integer dtype"),
    ],
    ids=["length", "3d", "nan", "negative-id", "out-of-range", "negative-soft", "float-ids"],
)
def test_add_rejects_bad_input(embeddings, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        add_statistics(embeddings, labels, **kwargs)
    with pytest.raises(ValueError, match=message):
        ADDLoss()(embeddings, labels, **kwargs)


@pytest.mark.parametrize(
    "name", ["lambda_mu_p", "lambda_sigma_p", "lambda_mu_n", "lambda_sigma_n", "lambda_mu"]
)
@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf], ids=["negative", "nan", "inf"])
def test_add_rejects_negative_or_nonfinite_lambda(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        ADDLoss(**{name: value})


# --- ADD: precision, compilation, memory -----------------------------------------------------------------


def test_statistics_are_float32_under_bf16_autocast():
    z, labels = hard_batch(16, 3, dim=32, dtype=torch.float32)
    linear = torch.nn.Linear(32, 32)
    with torch.no_grad():
        expected = add_statistics(z, labels)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            stats = add_statistics(z, labels)
            projected = linear(z)
            stats_from_bf16 = add_statistics(projected, labels)
        expected_from_bf16 = add_statistics(projected.float(), labels)
    assert projected.dtype == torch.bfloat16
    for name in HARD_KEYS:
        assert stats[name].dtype == stats_from_bf16[name].dtype == torch.float32
        torch.testing.assert_close(stats[name], expected[name], rtol=0, atol=0)
        torch.testing.assert_close(stats_from_bf16[name], expected_from_bf16[name], rtol=0, atol=0)


def test_compiled_fullgraph_matches_eager():
    z, labels = hard_batch(12, 3, dim=16, dtype=torch.float32)
    loss_fn = ADDLoss(lambda_sigma_n=0.5)
    compiled = torch.compile(loss_fn, fullgraph=True)
    z_eager, z_compiled = z.clone().requires_grad_(), z.clone().requires_grad_()
    eager_loss, compiled_loss = loss_fn(z_eager, labels), compiled(z_compiled, labels)
    eager_loss.backward()
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(z_compiled.grad, z_eager.grad, rtol=1e-4, atol=1e-6)


def saved_bytes(fn):
    """Bytes autograd keeps for backward while building the graph of ``fn()``, each storage once."""
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(storages.values())


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_add_saves_at_most_three_batch_squared_matrices(soft):
    batch_size, dim = 512, 64
    z = torch.randn(batch_size, dim, requires_grad=True)
    labels = torch.randint(0, 50, (batch_size,))
    if soft:
        labels = F.one_hot(labels, 50).float()
    assert saved_bytes(lambda: ADDLoss()(z, labels)) <= 3 * batch_size * batch_size * 4


# --- Focal ---------------------------------------------------------------------------------------------


def test_focal_gamma_zero_is_cross_entropy():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 5, generator=generator)
    ids = torch.randint(0, 5, (8,), generator=generator)
    probabilities = torch.softmax(torch.randn(8, 5, generator=generator), dim=1)
    focal = FocalLoss(gamma=0)
    torch.testing.assert_close(focal(logits, ids), F.cross_entropy(logits, ids))
    torch.testing.assert_close(focal(logits, probabilities), F.cross_entropy(logits, probabilities))


def test_focal_gamma_two_by_hand():
    # Sample 1: logits (0, ln 3) → p = (1/4, 3/4), class 1: -(1 - 3/4)² ln(3/4) = -ln(0.75) / 16.
    # Sample 2: logits (0, 0) → p = (1/2, 1/2), class 0: -(1 - 1/2)² ln(1/2) = ln(2) / 4.
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    expected = (-math.log(0.75) / 16 + math.log(2.0) / 4) / 2
    assert FocalLoss(gamma=2)(logits, torch.tensor([1, 0])).item() == pytest.approx(expected, rel=1e-6)


def test_focal_rejects_bad_input():
    for gamma in (-1, math.nan, math.inf):
        with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
            FocalLoss(gamma=gamma)
    with pytest.raises(ValueError, match="integer dtype"):
        FocalLoss()(torch.randn(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="matching logits"):
        FocalLoss()(torch.randn(2, 3), torch.rand(2, 4))


# --- OPL -----------------------------------------------------------------------------------------------

# Four 2-D embeddings at 0°, 45°, 90° and 180°: every cosine is 0, ±1 or ±1/√2.
FOUR_POINTS = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)


def test_opl_by_hand():
    # Classes (0, 0, 1, 1). Positive cosines: cos(z0, z1) = 1/√2, cos(z2, z3) = 0, each pair twice:
    #   mean = (1/√2 + 0) / 2 = √2/4, positive term 1 - √2/4.
    # Negative |cos|: (0,2) 0, (0,3) 1, (1,2) 1/√2, (1,3) 1/√2: mean = (1 + √2) / 4.
    stats = OrthogonalProjectionLoss().statistics(FOUR_POINTS, torch.tensor([0, 0, 1, 1]))
    assert stats["positive_term"].item() == pytest.approx(1 - math.sqrt(2) / 4, rel=1e-12)
    assert stats["negative_abs_cosine"].item() == pytest.approx((1 + math.sqrt(2)) / 4, rel=1e-12)
    loss = OrthogonalProjectionLoss(gamma=2.0)(FOUR_POINTS, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == pytest.approx(1 - math.sqrt(2) / 4 + 2 * (1 + math.sqrt(2)) / 4, rel=1e-12)


def test_opl_empty_sets_contribute_zero():
    z = FOUR_POINTS.clone().requires_grad_()
    own_class = OrthogonalProjectionLoss(gamma=1.0)(z, torch.arange(4))
    # Cosines of the unordered pairs 01, 02, 03, 12, 13, 23: 1/√2, 0, -1, 1/√2, -1/√2, 0.
    # Own classes: no positives (term 0), mean |cos| = (1 + 3/√2) / 6.
    assert own_class.item() == pytest.approx((1 + 3 / math.sqrt(2)) / 6, rel=1e-12)
    # One class: no negatives (term 0), mean cos = (1/√2 - 1) / 6.
    one_class = OrthogonalProjectionLoss(gamma=1.0)(z, torch.zeros(4, dtype=torch.long))
    assert one_class.item() == pytest.approx(1 - (1 / math.sqrt(2) - 1) / 6, rel=1e-12)
    single = OrthogonalProjectionLoss()(z[:1], torch.tensor([0]))
    assert single.item() == 0.0 and single.requires_grad
    (grad,) = torch.autograd.grad(own_class + one_class + single, z)
    assert torch.isfinite(grad).all()


def test_opl_rejects_soft_labels():
    with pytest.raises(ValueError, match="no soft-label"):
        OrthogonalProjectionLoss()(torch.randn(2, 3), torch.tensor([[0.5, 0.5], [1.0, 0.0]]))


# --- ADD and OPL: inputs a user can get wrong ----------------------------------------------------------


@pytest.mark.parametrize("loss_fn", [ADDLoss(), OrthogonalProjectionLoss()], ids=["add", "opl"])
@pytest.mark.parametrize("scale", [1e20, 1e-30], ids=["huge", "tiny"])
def test_loss_is_scale_invariant_without_overflow(loss_fn, scale):
    """ẑ depends on the direction of z only: ‖z‖ of 1e20-sized rows overflows float32 unless rescaled."""
    z, labels = hard_batch(12, 3, dim=16, dtype=torch.float32)
    expected = loss_fn(z, labels)
    torch.testing.assert_close(loss_fn(z * scale, labels), expected, rtol=1e-5, atol=1e-6)


def test_class_ids_of_shape_b_by_1_are_rejected_with_the_fix():
    with pytest.raises(ValueError, match=r"labels.squeeze\(1\)"):
        ADDLoss()(torch.randn(4, 3), torch.tensor([[0], [1], [0], [1]]))


def test_second_derivative_says_first_derivatives_only():
    z = torch.randn(6, 4, requires_grad=True)
    loss = ADDLoss()(z, torch.tensor([0, 0, 1, 1, 2, 2]))
    with pytest.raises(RuntimeError, match="first derivative only"):
        torch.autograd.grad(loss, z, create_graph=True)


@pytest.mark.parametrize(
    ("embeddings", "labels", "kwargs"),
    [
        (torch.tensor([[0.0, math.nan]] * 2), torch.tensor([0, 1]), {}),
        (torch.tensor([[0.0, math.inf]] * 2), torch.tensor([0, 1]), {}),
        (torch.randn(2, 3), torch.tensor([0, 5]), {"num_classes": 5}),
        (torch.randn(2, 3), torch.tensor([[1.2, -0.2], [0.5, 0.5]]), {}),
    ],
    ids=["nan", "inf", "out-of-range", "negative-soft"],
)
def test_device_side_assertion_fires_on_the_values_the_cpu_names(embeddings, labels, kwargs):
    """The accelerator path (one torch._assert_async, no host sync), run on the CPU where it raises at once."""
    soft = check_shapes(embeddings, labels, kwargs.get("num_classes"))
    maxima = row_maxima(embeddings)
    with pytest.raises(RuntimeError, match="invalid loss input, one of: .*Run the batch on the CPU"):
        check_values(maxima, labels, soft, kwargs.get("num_classes"), read_on_host=False)
    with pytest.raises(ValueError, match="invalid loss input"):
        check_values(maxima, labels, soft, kwargs.get("num_classes"), read_on_host=True)
    good = torch.randn(2, 3)
    check_values(row_maxima(good), torch.tensor([0, 1]), False, 2, read_on_host=False)  # passes silently


def test_per_set_soft_mu_is_mu_p_plus_mu_n_on_one_hot_labels():
    """With one-hot label vectors the three sets are the positives, the negatives and nothing: μp + μn."""
    z, labels = hard_batch(12, 3, dim=16, dtype=torch.float64)
    one_hot = F.one_hot(labels, 3).double()
    hard = add_statistics(z, labels)
    per_set = add_statistics(z, one_hot, soft_mu="per_set")
    torch.testing.assert_close(per_set["mu"], hard["mu_p"] + hard["mu_n"])
    paper = add_statistics(z, one_hot)  # the default stays eq. 7: one mean over all pairs
    pairs = 12 * 11
    expected = (hard["num_positive_pairs"] * hard["mu_p"] + hard["num_negative_pairs"] * hard["mu_n"]) / pairs
    torch.testing.assert_close(paper["mu"], expected)
    assert ADDLoss(soft_mu="per_set").get_config_dict()["soft_mu"] == "per_set"
    with pytest.raises(ValueError, match="soft_mu must be one of"):
        ADDLoss(soft_mu="pairs")


def test_per_set_soft_mu_by_hand_with_a_mixed_row():
    z = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    # identical labels: (0,1),(1,0): g = 1/√2, g^y = 1; overlapping: pairs with row 2: g^y = 1/√2, g = 0 for
    # (0,2), 1/√2 for (1,2); no disjoint pair.
    r = 1 / math.sqrt(2)
    identical = (r - 1) ** 2
    overlapping = ((0 - r) ** 2 * 2 + (r - r) ** 2 * 2) / 4
    mu = add_statistics(z, y, soft_mu="per_set")["mu"]
    assert mu.item() == pytest.approx(identical + overlapping, rel=1e-12)
    mu.backward()
    assert torch.isfinite(z.grad).all()


def test_count_positive_pairs_counts_ordered_pairs_of_identical_labels():
    class_ids = torch.tensor([3, 1, 3, 3, 0, 1])
    assert count_positive_pairs(class_ids).item() == 3 * 2 + 2 * 1  # brute force: classes 3 and 1
    soft = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.3, 0.7], [1.0, 0.0], [0.0, 1.0]])
    assert count_positive_pairs(soft).item() == 2 + 2  # rows {0, 4} and {1, 2}; 0.3/0.7 matches nothing
    stats = add_statistics(torch.randn(6, 4), soft)
    assert stats["num_positive_pairs"] == count_positive_pairs(soft)
