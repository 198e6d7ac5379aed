"""ADDTrainer: a transformers.Trainer whose loss is classification loss + an embedding loss (ADD or OPL)."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, Trainer
from transformers.utils import logging

from hf_add.capture import EmbeddingCapture
from hf_add.distributed import GlobalBatch, gather_global_batch
from hf_add.geometry import embedding_geometry
from hf_add.losses import ADDLoss, FocalLoss, OrthogonalProjectionLoss
from hf_add.model_card import save_model_card, training_hyperparameters

logger = logging.get_logger(__name__)

# Key under which the loss configuration is stored in the model's config.json (and so in every checkpoint).
CONFIG_KEY = "hf_add_training"
LOSS_CLASSES = {cls.__name__: cls for cls in (ADDLoss, OrthogonalProjectionLoss, FocalLoss)}
GEOMETRY_SUMMARIES = (
    "intra_class_mean_distance",
    "intra_class_cv",
    "inter_class_mean_distance",
    "inter_class_pair_cv",
    "inter_class_cv",
)


class SoftTargetBCEWithLogits(nn.Module):
    """Sigmoid BCE against class ids or probability targets (the ADD authors' choice for mixup runs)."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = labels.float() if labels.dim() == 2 else F.one_hot(labels, logits.shape[-1]).float()
        return F.binary_cross_entropy_with_logits(logits.float(), targets)

    def get_config_dict(self) -> dict:
        return {}


class CrossEntropy(nn.Module):
    """Softmax cross-entropy against class ids (B,) or probability targets (B, C) from mixup."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels.float() if labels.dim() == 2 else labels)

    def get_config_dict(self) -> dict:
        return {}


CLASSIFICATION_LOSSES = {"ce": CrossEntropy, "bce": SoftTargetBCEWithLogits}


def _classification_loss(spec) -> nn.Module:
    if isinstance(spec, nn.Module):
        return spec
    if spec in CLASSIFICATION_LOSSES:
        return CLASSIFICATION_LOSSES[spec]()
    raise ValueError(
        f"classification_loss must be one of {sorted(CLASSIFICATION_LOSSES)} or a loss module such as "
        f"FocalLoss(gamma=2.0), got {spec!r}"
    )


def _describe(loss: nn.Module | None) -> dict | None:
    if loss is None:
        return None
    return {"name": type(loss).__name__, "config": loss.get_config_dict()}


def _rebuild(description: dict | None) -> nn.Module | None:
    if description is None:
        return None
    classes = {**LOSS_CLASSES, **{cls.__name__: cls for cls in CLASSIFICATION_LOSSES.values()}}
    return classes[description["name"]](**description["config"])


class ADDTrainer(Trainer):
    """``transformers.Trainer`` that trains with ``classification_loss + embedding_loss``.

    The embedding loss (``ADDLoss()``, ``OrthogonalProjectionLoss()``, or None for the classification loss
    alone) sees the input of the classification head — the pooled vector — captured by a forward pre-hook
    on ``model.<embedding_module>``. The model is called without labels; the classification loss is
    computed here: ``"ce"`` (softmax cross-entropy, class ids or mixup probabilities), ``"bce"`` (sigmoid
    BCE, as in the ADD authors' mixup runs) or a module such as ``FocalLoss(gamma=2.0)``.

    Under DDP the embedding loss is computed over the global batch (all ranks' embeddings), which gives the
    same gradient as one process on the concatenated batch; ``gather_embeddings=False`` computes it per rank.

    Logs carry the averaged loss components (``classification_loss``, ``embedding_loss`` and each
    statistic: ``mu_p``, ``sigma_p``, ``mu_n``, ``sigma_n`` or ``mu``, ``sigma_p``); evaluation adds
    ``eval_accuracy`` and the embedding-geometry summaries of the whole evaluation set. The loss
    configuration is written into the model config (``config.hf_add_training``), so it is saved with the
    model and every checkpoint, and restored on ``resume_from_checkpoint``.

    Example::

        trainer = ADDTrainer(
            model=ASTForAudioClassification.from_pretrained("MIT/ast-finetuned-audioset-10-10-0.4593", ...),
            args=TrainingArguments("out", per_device_train_batch_size=32),
            train_dataset=train, eval_dataset=test, processing_class=feature_extractor,
            embedding_loss=ADDLoss(),
        )
        trainer.train()
    """

    # compute_loss returns the mean over this micro-batch; Trainer divides it by the accumulation steps,
    # so the update uses the average of the micro-batch gradients, whatever the model's forward accepts.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args,
        embedding_loss: nn.Module | None = None,
        classification_loss: str | nn.Module = "ce",
        embedding_module: str = "classifier",
        gather_embeddings: bool = True,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if embedding_loss is not None and not hasattr(embedding_loss, "statistics"):
            raise ValueError(
                "embedding_loss must be ADDLoss(...), OrthogonalProjectionLoss(...) or None, got "
                f"{type(embedding_loss).__name__}"
            )
        if self.args.n_gpu > 1:
            raise ValueError(
                "ADDTrainer does not support torch.nn.DataParallel (one process, several GPUs): the pair loss "
                "needs the whole batch. Launch one process per GPU with torchrun or accelerate launch."
            )
        self.embedding_loss = embedding_loss
        self.classification_loss = _classification_loss(classification_loss)
        self.embedding_module = embedding_module
        self.gather_embeddings = gather_embeddings
        self._capture = EmbeddingCapture(self.accelerator.unwrap_model(self.model), embedding_module)
        self._component_sums: dict[str, torch.Tensor] = defaultdict(float)
        self._component_steps = 0
        self._eval_batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._record_configuration()

    # ---- configuration saved with the model ----

    def training_configuration(self) -> dict:
        """What the model card and a resumed run need to know about the loss."""
        return {
            "embedding_loss": _describe(self.embedding_loss),
            "classification_loss": _describe(self.classification_loss),
            "embedding_module": self.embedding_module,
            "gather_embeddings": self.gather_embeddings,
        }

    def _record_configuration(self) -> None:
        config = getattr(self.accelerator.unwrap_model(self.model), "config", None)
        if config is not None:
            setattr(config, CONFIG_KEY, self.training_configuration())

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        if not self._load_pretrained_weights(
            model if model is not None else self.model, resume_from_checkpoint
        ):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
        self._restore_configuration(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        if not self._load_pretrained_weights(self.model, self.state.best_model_checkpoint):
            super()._load_best_model()

    def _load_pretrained_weights(self, model: nn.Module, checkpoint: str) -> bool:
        """Load a checkpoint through ``from_pretrained``, which renames legacy keys; False if not applicable.

        transformers 5's ``save_pretrained`` writes some models (AST among them) with their legacy parameter
        names, and ``Trainer`` loads checkpoints with a plain non-strict ``load_state_dict``: the weights are
        then silently not restored. Going through ``from_pretrained`` applies the key conversion.
        """
        model = self.accelerator.unwrap_model(model)
        if (
            not isinstance(model, PreTrainedModel)
            or self.is_deepspeed_enabled
            or self.is_fsdp_enabled
            or not os.path.isfile(os.path.join(checkpoint, "config.json"))
        ):
            return False
        reloaded = type(model).from_pretrained(checkpoint, config=model.config, dtype=model.dtype)
        model.load_state_dict(reloaded.state_dict(), strict=True)
        return True

    def _restore_configuration(self, resume_from_checkpoint: str) -> None:
        config_file = os.path.join(resume_from_checkpoint, "config.json")
        if not os.path.isfile(config_file):
            return
        with open(config_file) as f:
            saved = json.load(f).get(CONFIG_KEY)
        if saved is None or saved == self.training_configuration():
            return
        logger.warning(
            f"Restoring the loss configuration saved in {resume_from_checkpoint}: {saved} "
            f"(this trainer was built with {self.training_configuration()})"
        )
        self.embedding_loss = _rebuild(saved["embedding_loss"])
        self.classification_loss = _rebuild(saved["classification_loss"])
        self.gather_embeddings = saved["gather_embeddings"]
        if saved["embedding_module"] != self.embedding_module:
            self._capture.remove()
            self.embedding_module = saved["embedding_module"]
            self._capture = EmbeddingCapture(self.accelerator.unwrap_model(self.model), self.embedding_module)
        self._record_configuration()

    # ---- the loss ----

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        if labels is None:
            raise ValueError(
                "ADDTrainer needs a 'labels' column (class ids or class probabilities) in every batch"
            )
        outputs = model(**inputs)
        embeddings = self._capture.pop()
        logits = outputs["logits"]
        if labels.dim() == 2 and labels.shape != logits.shape:
            raise ValueError(
                f"soft labels of shape {tuple(labels.shape)} do not match logits {tuple(logits.shape)}"
            )

        batch = GlobalBatch(embeddings, labels, 1, labels.shape[0], labels.shape[0])
        if self.embedding_loss is not None and self.gather_embeddings:
            batch = gather_global_batch(embeddings, labels)
        # Under DDP, gradients are averaged over ranks: weight each rank's CE by its share of the global
        # batch so the average is the global-batch mean (exact for unequal per-rank batch sizes too).
        classification = self.classification_loss(logits, labels)
        loss = classification * (batch.world_size * batch.local_size / batch.global_size)
        components = {"classification_loss": classification}
        if self.embedding_loss is not None:
            stats = self.embedding_loss.statistics(
                batch.embeddings, batch.labels, num_classes=logits.shape[-1]
            )
            embedding = self.embedding_loss.loss_from_statistics(stats)
            loss = loss + embedding * batch.world_size
            components["embedding_loss"] = embedding
            components.update({k: v for k, v in stats.items() if not k.startswith("num_")})

        self._accumulate(components)
        if not model.training:
            self._eval_batches.append(
                self.accelerator.gather_for_metrics(
                    (
                        embeddings.detach().float(),
                        labels if labels.dim() == 1 else labels.argmax(-1),
                        logits.argmax(-1),
                    )
                )
            )
            self._eval_batches[-1] = tuple(t.cpu() for t in self._eval_batches[-1])
        return (loss, outputs) if return_outputs else loss

    def _accumulate(self, components: dict[str, torch.Tensor]) -> None:
        for name, value in components.items():
            self._component_sums[name] = self._component_sums[name] + value.detach().float()
        self._component_steps += 1

    def _pop_component_means(self) -> dict[str, float]:
        """Components averaged over the steps since the last call and over processes."""
        if not self._component_steps:
            return {}
        names = sorted(self._component_sums)
        means = torch.stack([self._component_sums[n] for n in names]) / self._component_steps
        means = self.accelerator.reduce(means.to(self.args.device), reduction="mean")
        self._component_sums.clear()
        self._component_steps = 0
        return dict(zip(names, means.tolist(), strict=True))

    # ---- logging and evaluation ----

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log, which Trainer emits on every process
            logs = {**logs, **self._pop_component_means()}
        super().log(logs, start_time)

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        train_components = (dict(self._component_sums), self._component_steps)
        self._component_sums, self._component_steps = defaultdict(float), 0
        self._eval_batches = []
        try:
            output = super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in self._pop_component_means().items()}
            metrics.update(self._evaluation_metrics(metric_key_prefix))
        finally:
            self._component_sums, self._component_steps = (
                defaultdict(float, train_components[0]),
                train_components[1],
            )
            self._eval_batches = []
        output.metrics.update({k: v for k, v in metrics.items() if k not in output.metrics})
        return output

    def _evaluation_metrics(self, prefix: str) -> dict[str, float]:
        if not self._eval_batches:
            return {}
        embeddings, labels, predictions = (
            torch.cat(parts) for parts in zip(*self._eval_batches, strict=True)
        )
        metrics = {f"{prefix}_accuracy": (predictions == labels).float().mean().item()}
        num_classes = getattr(getattr(self.model, "config", None), "num_labels", None)
        geometry = embedding_geometry(embeddings, labels, num_classes=num_classes)
        metrics.update({f"{prefix}_{name}": geometry[name] for name in GEOMETRY_SUMMARIES})
        return metrics

    # ---- model card ----

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
        **card_kwargs,
    ) -> None:
        """Write hf-add's card (loss and λ, hyperparameters, last eval metrics) to ``args.output_dir``.

        Overrides Trainer's draft card, which ``push_to_hub`` writes before uploading, so every push ships
        ours. ``tasks`` and ``dataset_args`` are accepted for signature compatibility (the task is always
        audio classification); ``card_kwargs`` go to ``hf_add.model_card.build_model_card`` (e.g.
        ``results`` over folds and seeds, ``protocol``, extra ``hyperparameters`` such as mixup).
        """
        if not self.is_world_process_zero():
            return
        os.makedirs(self.args.output_dir, exist_ok=True)
        dataset_ids = [dataset_tags] if isinstance(dataset_tags, str) else list(dataset_tags or [])
        dataset_names = [dataset] if isinstance(dataset, str) else list(dataset or [])
        evaluation = next(
            (logs for logs in reversed(self.state.log_history) if "eval_accuracy" in logs), None
        )
        results = None
        if evaluation is not None:
            results = {
                "accuracy": evaluation["eval_accuracy"],
                "geometry": {
                    name: evaluation[f"eval_{name}"]
                    for name in GEOMETRY_SUMMARIES
                    if f"eval_{name}" in evaluation
                },
                "protocol": "single run, last evaluation of this trainer",
            }
        card_kwargs = {
            "base_model": finetuned_from,
            "dataset_id": dataset_ids[0] if dataset_ids else None,
            "dataset_name": dataset_names[0] if dataset_names else None,
            "results": results,
            "model_name": model_name,
            "repo_id": self.hub_model_id or self.args.hub_model_id,
            "license": license,
            "language": language,
            "tags": [tags] if isinstance(tags, str) else tags,
            **card_kwargs,
            "hyperparameters": training_hyperparameters(self.args, **card_kwargs.get("hyperparameters", {})),
        }
        save_model_card(self.args.output_dir, self.accelerator.unwrap_model(self.model).config, **card_kwargs)
