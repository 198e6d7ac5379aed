"""Why does ADD's soft-label form (eq. 7-8) with mixup train worse than CE with mixup? Measure it.

Trains one study run (``hf-add train`` arguments, e.g. a row of the study) with a trainer that, every
``--probe_every`` steps, takes the training batch it is about to learn from and records, with respect to the
embeddings z (the input of the classifier head):

- the gradient norm of the classification loss and of each weighted ADD term (soft form: λμ·L_μ, λσp·σp);
- how L_μ = mean over ordered pairs of (d^y - d)² splits over the pair types: both samples unmixed and of
  one class (positive), both unmixed and of two classes (negative), at least one mixed (mixed); each type's
  share of the pairs and of the sum, and its mean distance d.

    python -m hf_add.research.soft_add_probe --output probe.json -- <hf-add train arguments>

Writes the records (one per probed step) and prints their means over the first, middle and last third of
training.
"""

from __future__ import annotations

import argparse
import functools
import sys

import numpy as np
import torch

from hf_add.capture import EmbeddingCapture
from hf_add.commands.train import parse_config
from hf_add.files import write_json
from hf_add.losses import add_statistics
from hf_add.runs import run
from hf_add.trainer import ADDTrainer

PAIR_TYPES = ("positive", "negative", "mixed")


def pair_types(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean (B, B) masks of the ordered pairs i ≠ j by type, from class ids or mixup probabilities."""
    soft = labels if labels.dim() == 2 else torch.nn.functional.one_hot(labels).float()
    unmixed = soft.max(dim=1).values > 1 - 1e-6
    classes = soft.argmax(dim=1)
    off_diagonal = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    both_unmixed = unmixed.unsqueeze(0) & unmixed.unsqueeze(1) & off_diagonal
    same = classes.unsqueeze(0) == classes.unsqueeze(1)
    return {
        "positive": both_unmixed & same,
        "negative": both_unmixed & ~same,
        "mixed": off_diagonal & ~both_unmixed,
    }


def probe(trainer: ADDTrainer, model, inputs) -> dict:
    """The gradient norms and L_μ's pair-type split on one training batch (no parameter is changed)."""
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    capture = EmbeddingCapture(trainer.accelerator.unwrap_model(model), trainer.embedding_module)
    try:
        logits = model(**inputs).logits
        z = capture.pop()
    finally:
        capture.remove()
    terms = {"classification": trainer.classification_loss(logits, labels)}
    stats = add_statistics(z, labels)
    loss = trainer.embedding_loss
    for name in ("mu", "sigma_p") if labels.dim() == 2 else ("mu_p", "sigma_p", "mu_n", "sigma_n"):
        terms[name] = loss.weights[name] * stats[name]
    record = {
        f"grad_norm_{name}": torch.autograd.grad(term, z, retain_graph=True)[0].norm().item()
        for name, term in terms.items()
    }
    with torch.no_grad():
        unit = torch.nn.functional.normalize(z.double(), dim=1)
        distance = 1.0 - unit @ unit.T
        if labels.dim() == 2:
            y = torch.nn.functional.normalize(labels.double(), dim=1)
            squared = (1.0 - y @ y.T - distance) ** 2
            total = squared.fill_diagonal_(0.0).sum()
        for kind, mask in pair_types(labels).items():
            record[f"{kind}_pairs_share"] = (mask.sum() / (len(labels) * (len(labels) - 1))).item()
            record[f"{kind}_mean_d"] = distance[mask].mean().item() if mask.any() else float("nan")
            if labels.dim() == 2:
                record[f"{kind}_L_mu_share"] = (squared[mask].sum() / total).item()
    return {"step": trainer.state.global_step, **record}


class SoftADDProbeTrainer(ADDTrainer):
    """ADDTrainer that appends ``probe`` to ``records`` every ``probe_every`` steps, before the step trains on
    the batch."""

    def __init__(self, *args, records: list[dict], probe_every: int = 10, **kwargs):
        super().__init__(*args, **kwargs)
        self.records = records
        self.probe_every = probe_every

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.embedding_loss is not None and self.state.global_step % self.probe_every == 0:
            self.records.append(probe(self, model, inputs))
        return super().training_step(model, inputs, num_items_in_batch)


def thirds(records: list[dict]) -> list[dict]:
    """Means of every recorded quantity over the first, middle and last third of training."""
    parts = np.array_split(np.arange(len(records)), 3)
    return [
        {key: float(np.nanmean([records[i][key] for i in part])) for key in records[0] if key != "step"}
        for part in parts
        if len(part)
    ]


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m hf_add.research.soft_add_probe", description=__doc__)
    parser.add_argument("--output", required=True, help="JSON file for the records")
    parser.add_argument("--probe_every", type=int, default=10)
    args = parser.parse_args(argv[:split])
    records: list[dict] = []
    trainer = functools.partial(SoftADDProbeTrainer, records=records, probe_every=args.probe_every)
    result = run(parse_config(argv[split + 1 :]), trainer_class=trainer)
    summary = thirds(records)
    write_json({"records": records, "thirds": summary, "test": result.mean}, args.output)
    for name, part in zip(("first", "middle", "last"), summary, strict=False):
        print(name, " ".join(f"{k}={v:.4g}" for k, v in part.items()))
    return {"thirds": summary, "test": result.mean}


if __name__ == "__main__":
    main()
