"""Angular Distance Distribution (ADD) loss, paper eq. 1-8."""

from __future__ import annotations

import functools
import operator

import torch

from hf_add.losses.base import EmbeddingLoss
from hf_add.losses.normalization import checked_float_embeddings, full_precision, scale_safe_unit
from hf_add.losses.pair_moments import SOFT_POSITIVE_THRESHOLD, PairMoments, pair_sets, unit_label_vectors

ADD_CITATION = """@inproceedings{almudevar2025add,
  title     = {Angular Distance Distribution Loss for Audio Classification},
  author    = {Almud{\\'e}var, Antonio and Serizel, Romain and Ortega, Alfonso},
  booktitle = {ICASSP 2025 - IEEE International Conference on Acoustics, Speech and Signal Processing},
  year      = {2025}
}"""


def add_statistics(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int | None = None,
    eps: float = 1e-6,
    validate: bool = True,
    soft_mu: str = "paper",
) -> dict[str, torch.Tensor]:
    """The ADD statistics of a batch: the moments of the angular distances of its ordered pairs.

    With ẑ = z / max(‖z‖, ε) and d_ij = 1 - ẑ_i·ẑ_j over ordered pairs i ≠ j:

    - hard labels, class ids of shape (B,): ``mu_p``, ``sigma_p`` are the mean and sample std of
      D_p = {d²: same class} (eq. 1, 3, 4); ``mu_n``, ``sigma_n`` those of D_n = {(1 - d)²: different
      class} (eq. 2); ``num_positive_pairs``, ``num_negative_pairs`` are |D_p|, |D_n|.
    - soft labels, probabilities of shape (B, C): ``mu`` is L_μ of eq. 7 (mean of (d^y - d)² over all
      pairs, d^y the cosine distance of the label vectors); ``sigma_p`` the sample std of d² over pairs
      with identical label vectors; ``num_positive_pairs``, ``num_pairs``. Multi-hot rows (multi-label
      tagging, an extension of the paper) are label vectors like any other: d^y applies unchanged and
      positives are pairs with identical label sets; a row of zeros (no label) has no direction and is
      left out of every pair (``num_pairs`` counts the pairs that remain). ``soft_mu="per_set"`` (an
      option, not the paper's) takes L_μ as the sum of the means of (d^y - d)² over three sets of pairs,
      identical, disjoint and overlapping label vectors, so that each set weighs as μp and μn do in the
      hard form (with one-hot labels it equals μp + μn); see docs/study/soft-labels.

    A mean of an empty set and a std of fewer than two values are 0. The statistics are computed in
    float32 (float64 inputs stay float64) whatever the autocast state, and are differentiable w.r.t.
    ``embeddings`` (first derivatives only). They depend on the direction of each embedding only: any
    scale of z gives the same values (the normalisation cannot overflow).

    Example::

        >>> stats = add_statistics(torch.randn(8, 16), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
        >>> sorted(stats)
        ['mu_n', 'mu_p', 'num_negative_pairs', 'num_positive_pairs', 'sigma_n', 'sigma_p']
    """
    check_soft_mu(soft_mu)
    with full_precision(embeddings.device):
        z, maxima, soft = checked_float_embeddings(embeddings, labels, num_classes, validate)
        if soft:
            y = labels.to(z.dtype)
            unit_labels = unit_label_vectors(y)
            mean1, std1, mean2, _, count1, count2 = PairMoments.apply(
                z, maxima, None, unit_labels, False, eps
            )
            if soft_mu == "per_set":
                mean2 = _per_set_soft_mu(z, maxima, unit_labels, eps)
            return {"mu": mean2, "sigma_p": std1, "num_positive_pairs": count1, "num_pairs": count2}
        mean1, std1, mean2, std2, count1, count2 = PairMoments.apply(z, maxima, labels, None, True, eps)
    return {
        "mu_p": mean1,
        "sigma_p": std1,
        "mu_n": mean2,
        "sigma_n": std2,
        "num_positive_pairs": count1,
        "num_negative_pairs": count2,
    }


SOFT_MU_FORMS = ("paper", "per_set")


def check_soft_mu(value: str) -> str:
    if value not in SOFT_MU_FORMS:
        raise ValueError(f"soft_mu must be one of {SOFT_MU_FORMS}, got {value!r}")
    return value


def _per_set_soft_mu(z, maxima, unit_labels, eps) -> torch.Tensor:
    """Σ over {identical, disjoint, overlapping label vectors} of the set's mean of (d^y - d)² (empty: 0).

    Plain autograd (an option for the study, not the paper's path): d^y - d = ẑ_i·ẑ_j - ŷ_i·ŷ_j.
    """
    unit = scale_safe_unit(z, maxima, eps)[0]
    label_gram = unit_labels @ unit_labels.T
    squared = (unit @ unit.T - label_gram) ** 2
    identical, pairs = pair_sets(label_gram, None, len(z), z.device)
    disjoint = (label_gram < SOFT_POSITIVE_THRESHOLD) & pairs
    overlapping = pairs & ~identical & ~disjoint
    means = [
        torch.where(mask, squared, 0.0).sum() / mask.sum().clamp_min(1)
        for mask in (identical, disjoint, overlapping)
    ]
    return means[0] + means[1] + means[2]


class ADDLoss(EmbeddingLoss):
    """Angular Distance Distribution loss (Almudévar, Serizel & Ortega, ICASSP 2025).

    Added to cross-entropy, ADD shapes the distribution of angular distances between the embeddings of
    a batch: same-class pairs close (``mu_p``) and equally close (``sigma_p``), different-class pairs
    orthogonal (``mu_n``) and equally spaced (``sigma_n``). With soft labels (mixup), the distance
    between two embeddings is pulled towards the distance between their label vectors (L_μ, eq. 7) and
    ``sigma_p`` keeps identical-label pairs equidistant (eq. 8).

    Hard labels:  L = λμp·μp + λσp·σp + λμn·μn + λσn·σn        (eq. 5)
    Soft labels:  L = λμ·L_μ + λσp·σp                            (eq. 8)

    Args:
        lambda_mu_p: weight of μp, the mean squared distance of same-class pairs. Default 1.
        lambda_sigma_p: weight of σp, its sample standard deviation (both forms). Default 1.
        lambda_mu_n: weight of μn, the mean of (1 - d)² over different-class pairs. Default 1.
        lambda_sigma_n: weight of σn, its sample standard deviation. Default 1.
        lambda_mu: weight of L_μ in the soft-label form. Default 1.
        eps: floor of the norm in the normalisation (only an all-zero embedding reaches it: each row
            is scaled by its largest magnitude first, so ADD is invariant to the scale of z). Default 1e-6.
        soft_mu: "paper" (eq. 7: L_μ is the mean over all ordered pairs; the default) or "per_set" (an
            option: the sum of its means over identical, disjoint and overlapping label pairs, weighing the
            pair sets as the hard form does). Default "paper".
        validate: check label values and embeddings for NaN: on the CPU directly, on an accelerator by
            a device-side assertion (no host sync); skipped under ``torch.compile``. Shapes and dtypes
            are always checked. Default True.

    All weights must be finite and ≥ 0.

    Inputs: ``embeddings`` (B, k) — the pooled vector that feeds the classifier head — and ``labels``:
    class ids (B,) of an integer dtype, or per-class probabilities (B, C) of a float dtype. ``forward``
    also takes ``num_classes`` to reject out-of-range class ids.

    References:
        Almudévar, Serizel, Ortega. "Angular Distance Distribution Loss for Audio Classification".

    Example::

        >>> loss_fn = ADDLoss()
        >>> z = torch.randn(8, 32, requires_grad=True)
        >>> loss = loss_fn(z, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
        >>> loss.backward()
    """

    citation = ADD_CITATION

    def __init__(
        self,
        lambda_mu_p: float = 1.0,
        lambda_sigma_p: float = 1.0,
        lambda_mu_n: float = 1.0,
        lambda_sigma_n: float = 1.0,
        lambda_mu: float = 1.0,
        eps: float = 1e-6,
        validate: bool = True,
        soft_mu: str = "paper",
    ):
        super().__init__(eps=eps, validate=validate)
        self.soft_mu = check_soft_mu(soft_mu)
        self.lambda_mu_p = self.check_weight("lambda_mu_p", lambda_mu_p)
        self.lambda_sigma_p = self.check_weight("lambda_sigma_p", lambda_sigma_p)
        self.lambda_mu_n = self.check_weight("lambda_mu_n", lambda_mu_n)
        self.lambda_sigma_n = self.check_weight("lambda_sigma_n", lambda_sigma_n)
        self.lambda_mu = self.check_weight("lambda_mu", lambda_mu)

    @property
    def weights(self) -> dict[str, float]:
        """λ of every statistic by name, for both label forms."""
        return {
            "mu_p": self.lambda_mu_p,
            "sigma_p": self.lambda_sigma_p,
            "mu_n": self.lambda_mu_n,
            "sigma_n": self.lambda_sigma_n,
            "mu": self.lambda_mu,
        }

    def statistics(
        self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
    ) -> dict[str, torch.Tensor]:
        """``add_statistics`` with this loss's ε and validation settings."""
        return add_statistics(
            embeddings,
            labels,
            num_classes=num_classes,
            eps=self.eps,
            validate=self.validate,
            soft_mu=self.soft_mu,
        )

    def loss_from_statistics(self, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        """Σ λ·statistic over the statistics present (the pair counts carry no weight)."""
        weights = self.weights
        # λ = 1 (the default) costs no multiply: at small B the loss is bound by kernel launches.
        terms = [
            value if weights[name] == 1.0 else weights[name] * value
            for name, value in stats.items()
            if name in weights
        ]
        return functools.reduce(operator.add, terms)

    def get_config_dict(self) -> dict:
        """The constructor arguments, for saving the loss configuration with a model."""
        return {
            "lambda_mu_p": self.lambda_mu_p,
            "lambda_sigma_p": self.lambda_sigma_p,
            "lambda_mu_n": self.lambda_mu_n,
            "lambda_sigma_n": self.lambda_sigma_n,
            "lambda_mu": self.lambda_mu,
            "eps": self.eps,
            "soft_mu": self.soft_mu,
        }
