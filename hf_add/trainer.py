"""ADDTrainer: a transformers.Trainer whose loss is a classification loss + an embedding loss (ADD, OPL, ...)."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, default_compute_objective
from transformers.utils import logging

from hf_add.capture import EmbeddingCapture, capture_embeddings
from hf_add.checkpoint_reload import FromPretrainedCheckpointsMixin
from hf_add.classification_metrics import classification_metrics, multi_label_metrics
from hf_add.data.balanced_loader import check_samples_per_class, class_balanced_train_dataloader
from hf_add.data.streaming import (
    StreamingClips,
    load_stream_position,
    save_stream_position,
    streaming_train_dataloader,
)
from hf_add.distributed import gather_global_batch, local_batch
from hf_add.embedding_metrics import reported_embedding_metrics
from hf_add.files import atomic_write, give_usual_modes, write_json
from hf_add.geometry import embedding_geometry
from hf_add.losses import EmbeddingLoss, FocalLoss, build_classification_loss, build_loss, describe_loss
from hf_add.losses.normalization import full_precision
from hf_add.losses.pair_moments import count_positive_pairs
from hf_add.losses.validation import check_label_rows
from hf_add.model_card import results_from_log_history, save_model_card, training_hyperparameters
from hf_add.saved_configuration import CONFIG_KEY, TRAINING_FILE, saved_training_configuration

logger = logging.get_logger(__name__)

MULTI_LABEL = "multi_label_classification"


class ComponentMeans:
    """Running sums of the loss components of one mode (train or eval), averaged when popped."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = defaultdict(float)
        self.steps = 0

    def add(self, components: dict[str, torch.Tensor]) -> None:
        for name, value in components.items():
            self.sums[name] = self.sums[name] + value.detach().float()
        self.steps += 1

    def nonfinite_names(self) -> list[str]:
        return [name for name, value in self.sums.items() if not torch.isfinite(torch.as_tensor(value)).all()]


class ADDTrainer(FromPretrainedCheckpointsMixin):
    """``transformers.Trainer`` that trains with ``classification_loss + embedding_loss``.

    The embedding loss (``ADDLoss()``, ``OrthogonalProjectionLoss()``, any ``EmbeddingLoss`` subclass, or
    None for the classification loss alone) sees the input of the classification head — the pooled vector
    — captured by a forward pre-hook on ``model.<embedding_module>``. The model is called without labels;
    the classification loss is computed here: ``"ce"`` (softmax cross-entropy, class ids or mixup
    probabilities), ``"bce"`` (sigmoid BCE, as in the ADD authors' mixup runs) or a module such as
    ``FocalLoss(gamma=2.0)``.

    Under DDP the embedding loss is computed over the global batch (all ranks' embeddings), which gives the
    same gradient as one process on the concatenated batch; ``gather_embeddings=False`` computes it per rank.
    The loss that is logged does not depend on the number of processes.

    Logs carry the averaged loss components (``classification_loss``, ``embedding_loss``, each statistic of
    the embedding loss, e.g. ``mu_p``, ``sigma_p``, ``mu_n``, ``sigma_n``, and ``positive_pairs``, the mean
    number of ordered same-class pairs per batch, logged with any loss: per process without an embedding
    loss, over the global batch with one); evaluation adds ``eval_accuracy``, ``eval_macro_f1``,
    ``eval_per_class_accuracy/<class>``, the embedding-geometry summaries of the whole evaluation set and,
    unless ``embedding_metrics=False`` (they cost O(N²·d) per evaluation), the embedding-space metrics
    (precision@1, MAP@R, R-precision, kNN and nearest-class-mean accuracy, NMI; see
    ``hf_add.embedding_metrics``); the confusion matrix is kept in ``confusion_matrices[prefix]``. A
    non-finite loss stops training with an error naming the step and the component, before anything is
    saved from it; an embedding loss that saw no positive pair in a logging window is warned about once.
    The loss configuration is written into the model config (``config.hf_add_training``) by the trainer
    that saves the model (beside a PEFT adapter: ``hf_add_training.json``), so it travels with the model
    and every checkpoint, and is restored on ``resume_from_checkpoint``.

    The trainer follows the model that Trainer trains: with ``model_init`` (and every
    ``hyperparameter_search`` trial) the capture moves to the new model; ``embedding_loss_init(trial)``
    builds the embedding loss per trial, so its λ can be searched. ``label_smoothing_factor`` smooths the
    classification loss as Trainer does. Models whose ``config.problem_type`` is
    ``"multi_label_classification"`` take multi-hot float labels: BCE by default (``classification_loss``
    None: "bce" for them, "ce" otherwise), the soft form of ADD on the label vectors, and mAP / F1 at
    evaluation. With gradient accumulation, ADD's pairs come from each micro-batch (said once per run).

    ``samples_per_class=K`` makes every training batch ``batch_size / K`` classes × K samples (a class with
    fewer than K samples is drawn with replacement), so ADD's positive-pair terms are never missing; an epoch
    then has ``len(train_dataset) // global batch`` batches, a new order every epoch from the seed
    (``data_seed`` or ``seed``), the same batches after a resume. Under DDP each rank gets
    ``per_device_train_batch_size / K`` whole classes, distinct from the other ranks'. Class ids only (no
    mixup). See ``hf_add.data.samplers``. Evaluation batches are unchanged.

    A ``StreamingClips`` train_dataset (``hf_add.data.streaming``) is read through a resumable DataLoader:
    each process reads its own part of the stream (the trainer's ``process_index`` of ``world_size``); each
    checkpoint saves every process's position in it (``stream_position-rank<N>.pt``), and
    ``resume_from_checkpoint`` goes on from there, no clip repeated or skipped (``args.ignore_data_skip`` is
    then set: Trainer's own replay of the batches would skip them twice). Give it ``max_steps``. Trainer's
    ``epoch`` (step / max_steps for a stream) is left out of the logs.

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
        embedding_loss: EmbeddingLoss | None = None,
        embedding_loss_init: Callable[[Any], EmbeddingLoss | None] | None = None,
        classification_loss: str | nn.Module | None = None,
        embedding_module: str = "classifier",
        gather_embeddings: bool = True,
        samples_per_class: int | None = None,
        embedding_metrics: bool = True,
        **kwargs,
    ):
        if embedding_loss is not None and embedding_loss_init is not None:
            raise ValueError("pass embedding_loss or embedding_loss_init, not both")
        # Trainer.__init__ calls call_model_init when it is given model_init: these must exist by then.
        self.embedding_loss = _checked_embedding_loss(embedding_loss)
        self.embedding_loss_init = embedding_loss_init
        self.embedding_module = embedding_module
        self._capture: EmbeddingCapture | None = None
        super().__init__(*args, **kwargs)
        if self.args.n_gpu > 1:
            raise ValueError(
                "ADDTrainer does not support torch.nn.DataParallel (one process, several GPUs): the pair loss "
                "needs the whole batch. Launch one process per GPU with torchrun or accelerate launch."
            )
        if embedding_loss_init is not None and self.model_init is None:
            self.embedding_loss = _checked_embedding_loss(embedding_loss_init(None))
        self.classification_loss_spec = classification_loss
        self.gather_embeddings = gather_embeddings
        self.samples_per_class = samples_per_class
        if samples_per_class is not None:
            check_samples_per_class(self, samples_per_class)
        self._components = {"train": ComponentMeans(), "eval": ComponentMeans()}
        self._eval_batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        # First training step whose loss was not finite (-1: none), kept on the device: no sync per step.
        self._first_nonfinite_step: torch.Tensor | None = None
        self._warned_no_positive_pairs = False
        self._told_micro_batches = False
        self._added_metric_names: set[str] = set()
        # The last confusion matrix of each evaluation prefix ("eval", "test", ...): rows = true class, in id
        # order. Not a scalar, so not in the metrics that Trainer logs.
        self.confusion_matrices: dict[str, list[list[int]]] = {}
        self.embedding_metrics = embedding_metrics
        self._stream_loader = (
            None  # the training DataLoader of a StreamingClips dataset, whose position is saved
        )
        self._stream_position: dict | None = None
        self._attach(self.model)
        if samples_per_class is not None and self.multi_label:
            raise ValueError(
                "samples_per_class draws batches by class id, but this model is multi-label (config.problem_type); "
                "leave samples_per_class out"
            )

    # ---- the model that is trained: model_init, hyperparameter-search trials, PEFT, compile ----

    def _attach(self, model: nn.Module) -> None:
        """Capture the embeddings of ``model`` and set the classification loss for its problem type."""
        unwrapped = self.accelerator.unwrap_model(model)
        config = getattr(unwrapped, "config", None)
        self.multi_label = getattr(config, "problem_type", None) == MULTI_LABEL
        self._capture = capture_embeddings(unwrapped, self.embedding_module)
        self._configure_classification_loss()

    def _configure_classification_loss(self) -> None:
        spec = self.classification_loss_spec
        if spec is None:
            spec = "bce" if self.multi_label else "ce"
        elif self.multi_label and (spec == "ce" or isinstance(spec, FocalLoss)):
            raise ValueError(
                f"the model's config.problem_type is {MULTI_LABEL!r}, whose labels are multi-hot rows, but "
                f"classification_loss={spec!r} is a softmax loss over one class per clip; use 'bce' (the "
                "default for multi-label models)"
            )
        self.classification_loss = build_classification_loss(spec, self.args.label_smoothing_factor)

    def call_model_init(self, trial=None):
        """A fresh model (and, with ``embedding_loss_init``, a fresh embedding loss) for this run or trial,
        with the embedding capture moved onto it."""
        model = super().call_model_init(trial)
        if self.embedding_loss_init is not None:
            self.embedding_loss = _checked_embedding_loss(self.embedding_loss_init(trial))
        if self._capture is not None:  # None while Trainer.__init__ runs: __init__ attaches afterwards
            self._capture.remove()
            self._attach(model)
        return model

    def hyperparameter_search(self, hp_space=None, compute_objective=None, *args, **kwargs):
        """``Trainer.hyperparameter_search``; the loss's own parameters are searched through
        ``embedding_loss_init(trial)``. The default objective is Trainer's (the evaluation loss, or the sum
        of ``compute_metrics``' values) computed without the metrics that ADDTrainer adds to evaluation."""
        if compute_objective is None:
            compute_objective = self._default_objective
        return super().hyperparameter_search(hp_space, compute_objective, *args, **kwargs)

    def _default_objective(self, metrics: dict[str, float]) -> float:
        return default_compute_objective(
            {k: v for k, v in metrics.items() if k not in self._added_metric_names}
        )

    def _hp_search_setup(self, trial) -> None:
        super()._hp_search_setup(trial)  # may change label_smoothing_factor after the model was built
        self._configure_classification_loss()

    # ---- configuration saved with the model ----

    def training_configuration(self) -> dict:
        """What the model card and a resumed run need to know about the loss."""
        return {
            "embedding_loss": describe_loss(self.embedding_loss),
            "classification_loss": describe_loss(self.classification_loss),
            "embedding_module": self.embedding_module,
            "gather_embeddings": self.gather_embeddings,
        }

    def _record_configuration(self) -> None:
        """Write this trainer's loss configuration into the model config (the trainer that saves a model
        describes it, even when several trainers were built on one model)."""
        config = getattr(self.accelerator.unwrap_model(self.model), "config", None)
        if config is not None:
            setattr(config, CONFIG_KEY, self.training_configuration())

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        self._record_configuration()
        super()._save(output_dir, state_dict)
        if not self.args.should_save:
            return
        output_dir = output_dir or self.args.output_dir
        if _is_adapter(self.accelerator.unwrap_model(self.model)):
            # An adapter directory has no config.json: the loss configuration is saved beside it.
            write_json(self.training_configuration(), os.path.join(output_dir, TRAINING_FILE))
        give_usual_modes(output_dir)  # safetensors writes the weights 0600

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        self._restore_configuration(resume_from_checkpoint)

    def _restore_configuration(self, resume_from_checkpoint: str) -> None:
        saved = saved_training_configuration(resume_from_checkpoint)
        if saved is None or saved == self.training_configuration():
            return
        logger.warning(
            f"Restoring the loss configuration saved in {resume_from_checkpoint}: {saved} "
            f"(this trainer was built with {self.training_configuration()})"
        )
        self.embedding_loss = build_loss(saved["embedding_loss"])
        self.classification_loss_spec = build_loss(saved["classification_loss"])
        self.gather_embeddings = saved["gather_embeddings"]
        if saved["embedding_module"] != self.embedding_module:
            self._capture.remove()
            self.embedding_module = saved["embedding_module"]
        self._attach(self.model)

    def get_train_dataloader(self):
        if isinstance(self.train_dataset, StreamingClips) and self.samples_per_class is None:
            self._stream_loader = streaming_train_dataloader(self, self._stream_position)
            return self._stream_loader
        if self.samples_per_class is None:
            return super().get_train_dataloader()
        return class_balanced_train_dataloader(self, self.samples_per_class)

    def _inner_training_loop(self, *args, resume_from_checkpoint=None, **kwargs):
        self._stream_position = None
        if resume_from_checkpoint is not None and isinstance(self.train_dataset, StreamingClips):
            self._stream_position = load_stream_position(resume_from_checkpoint, self.args.process_index)
            self.args.ignore_data_skip = (
                True  # the stream resumes at its saved position, not by replaying batches
            )
        return super()._inner_training_loop(*args, resume_from_checkpoint=resume_from_checkpoint, **kwargs)

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
        check_label_rows(labels, logits, self.multi_label)

        gather = self.embedding_loss is not None and self.gather_embeddings
        batch = gather_global_batch(embeddings, labels) if gather else local_batch(embeddings, labels)
        classification = self.classification_loss(logits, labels)
        # Weighted so that Trainer's average over ranks is the global-batch mean (unequal batches included).
        components = {"classification_loss": classification * batch.mean_weight}
        loss, embedding = components["classification_loss"], None
        if self.embedding_loss is not None:
            with full_precision(embeddings.device):
                stats = self.embedding_loss.statistics(
                    batch.embeddings, batch.labels, num_classes=logits.shape[-1]
                )
                embedding = self.embedding_loss.loss_from_statistics(stats)
            loss = loss + embedding
            components["embedding_loss"] = embedding
            components.update({k: v for k, v in stats.items() if not k.startswith("num_")})
            if "num_positive_pairs" in stats:
                components["positive_pairs"] = stats["num_positive_pairs"]
        if "positive_pairs" not in components:  # what ADD would see in this batch (the local one here)
            components["positive_pairs"] = count_positive_pairs(batch.labels)
        if batch.world_size > 1:
            loss = _with_gradient_of(loss, batch.ddp_gradient_loss(classification, embedding))

        mode = "train" if model.training else "eval"
        self._components[mode].add(components)
        if model.training:
            self._track_nonfinite(loss)
        else:
            self._keep_for_evaluation(embeddings, labels, logits)
        return (loss, outputs) if return_outputs else loss

    def _keep_for_evaluation(self, embeddings, labels, logits) -> None:
        """Embeddings, labels and predictions of an evaluation batch: class ids (argmax of soft labels and
        logits), or for multi-label models the multi-hot rows and the logits."""
        if self.multi_label:
            kept = (embeddings.detach().float(), labels.float(), logits.detach().float())
        else:
            kept = (
                embeddings.detach().float(),
                labels if labels.dim() == 1 else labels.argmax(-1),
                logits.argmax(-1),
            )
        gathered = self.accelerator.gather_for_metrics(kept)
        self._eval_batches.append(tuple(t.cpu() for t in gathered))

    def _track_nonfinite(self, loss: torch.Tensor) -> None:
        step = torch.where(torch.isfinite(loss.detach()), -1, self.state.global_step + 1)
        if self._first_nonfinite_step is not None:
            step = torch.where(self._first_nonfinite_step >= 0, self._first_nonfinite_step, step)
        self._first_nonfinite_step = step

    def _raise_if_nonfinite(self, window: dict[str, float] | None = None) -> None:
        """Stop with an error if a training loss was NaN/inf (a collective: every process calls it)."""
        if self._first_nonfinite_step is None:
            return
        steps = self.accelerator.gather(self._first_nonfinite_step.reshape(1))
        bad = steps[steps >= 0]
        if bad.numel() == 0:
            return
        names = [k for k, v in (window or {}).items() if not torch.isfinite(torch.tensor(v))]
        names = names or self._components["train"].nonfinite_names() or ["loss"]
        raise RuntimeError(
            f"Training stopped: the loss was not finite at step {int(bad.min())} ({', '.join(names)} is NaN or "
            "inf), and nothing from that step on was saved. Check the data for NaN/inf or silent clips, lower "
            f"the learning rate (now {self.args.learning_rate:g}), or lower the embedding-loss weights λ."
        )

    def _save_checkpoint(self, model, trial):
        self._raise_if_nonfinite()
        if self._stream_loader is not None:  # first: a checkpoint with a trainer state is complete
            folder = os.path.join(
                self._get_output_dir(trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            save_stream_position(self._stream_loader, folder, self.args.process_index)
        return super()._save_checkpoint(model, trial)

    def train(self, *args, **kwargs):
        output = super().train(*args, **kwargs)
        self._raise_if_nonfinite()
        return output

    def _pop_component_means(self, mode: str) -> dict[str, float]:
        """The components of ``mode`` averaged over the steps since the last call and over processes."""
        components = self._components[mode]
        if not components.steps:
            return {}
        names = sorted(components.sums)
        means = torch.stack([components.sums[n] for n in names]) / components.steps
        means = self.accelerator.reduce(means.to(self.args.device), reduction="mean")
        self._components[mode] = ComponentMeans()
        return dict(zip(names, means.tolist(), strict=True))

    # ---- logging and evaluation ----

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log, which Trainer emits on every process
            window = self._pop_component_means("train")
            self._raise_if_nonfinite(window)
            self._warn_if_no_positive_pairs(window)
            self._tell_micro_batches(window)
            logs = {**logs, **window}
        if self._stream_loader is None:
            super().log(logs, start_time)
            return
        # Trainer's "epoch" of a stream is step / max_steps, restarted at 0 by a resume: a stream's logs leave it out.
        epoch, self.state.epoch = self.state.epoch, None
        try:
            super().log(logs, start_time)
        finally:
            self.state.epoch = epoch

    def _warn_if_no_positive_pairs(self, window: dict[str, float]) -> None:
        no_pairs = self.embedding_loss is not None and window.get("positive_pairs", 1.0) == 0
        if not no_pairs or self._warned_no_positive_pairs:
            return
        self._warned_no_positive_pairs = True
        logger.warning(
            f"No training batch of the last logging window held two samples of one class, so the positive-pair "
            f"terms of {type(self.embedding_loss).__name__} (e.g. ADD's μp, σp) were 0 on every step (with one "
            "sample per batch there are no pairs at all: the embedding loss is 0 and training is the "
            f"classification loss alone; per-device batch size {self.args.per_device_train_batch_size}). Use a "
            "larger batch, or class-balanced batches: ADDTrainer(samples_per_class=K), hf-add train "
            "--samples_per_class K."
        )

    def _tell_micro_batches(self, window: dict[str, float]) -> None:
        """Once per run: with gradient accumulation, ADD's pairs come from each micro-batch, not the update."""
        steps = self.args.gradient_accumulation_steps
        if (
            self.embedding_loss is None
            or steps == 1
            or self._told_micro_batches
            or "positive_pairs" not in window
        ):
            return
        self._told_micro_batches = True
        micro = self.args.per_device_train_batch_size * (
            self.args.world_size if self.gather_embeddings else 1
        )
        logger.warning(
            f"Gradient accumulation over {steps} micro-batches: {type(self.embedding_loss).__name__} takes its "
            f"pairs from each micro-batch of {micro} samples, not from the {micro * steps} samples of an update "
            f"(positive pairs per micro-batch so far: {window['positive_pairs']:.2f}). For more pairs, raise "
            "per_device_train_batch_size or use samples_per_class."
        )

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        self._components["eval"] = ComponentMeans()
        self._eval_batches = []
        try:
            output = super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in self._pop_component_means("eval").items()}
            metrics.update(self._evaluation_metrics(metric_key_prefix))
        finally:
            self._eval_batches = []
        self._added_metric_names = {k for k in metrics if k not in output.metrics}
        output.metrics.update({k: v for k, v in metrics.items() if k not in output.metrics})
        return output

    def _evaluation_metrics(self, prefix: str) -> dict[str, float]:
        if not self._eval_batches:
            return {}
        embeddings, labels, predictions = (
            torch.cat(parts) for parts in zip(*self._eval_batches, strict=True)
        )
        if self.multi_label:
            logger.info_once(
                "Multi-label evaluation reports mAP and micro/macro F1 at 0.5; the embedding-geometry summaries "
                "(per class pair) are left out, since a clip belongs to several classes."
            )
            metrics = multi_label_metrics(labels, predictions)
            return {f"{prefix}_{name}": value for name, value in metrics.items()}
        config = getattr(self.accelerator.unwrap_model(self.model), "config", None)
        num_classes = getattr(config, "num_labels", None) or int(labels.max()) + 1
        id2label = getattr(config, "id2label", None) or {}
        class_names = [str(id2label.get(i, i)) for i in range(num_classes)]
        classification = classification_metrics(labels, predictions, class_names)
        metrics = {"accuracy": classification["accuracy"], "macro_f1": classification["macro_f1"]}
        geometry = embedding_geometry(embeddings, labels, num_classes=num_classes)
        metrics.update(geometry.summaries())
        if self.embedding_metrics:
            metrics.update(reported_embedding_metrics(embeddings, labels, seed=self.args.seed))
        # Scalars only (log_metrics, TensorBoard): one per class with clips; the matrix is kept aside.
        metrics.update(
            {
                f"per_class_accuracy/{name}": value
                for name, value in classification["per_class_accuracy"].items()
                if value is not None
            }
        )
        self.confusion_matrices[prefix] = classification["confusion_matrix"]
        return {f"{prefix}_{name}": value for name, value in metrics.items()}

    # ---- model card ----

    def push_to_hub(self, *args, **kwargs):
        """Trainer's ``push_to_hub``, except that a failed push leaves ``output_dir/README.md`` as it was:
        Trainer saves the model and writes the card before it uploads, so an upload that fails (no network)
        would otherwise replace the card in the directory."""
        path = os.path.join(self.args.output_dir, "README.md")
        before = None
        if self.is_world_process_zero() and os.path.isfile(path):
            with open(path, "rb") as f:
                before = f.read()
        try:
            return super().push_to_hub(*args, **kwargs)
        except BaseException:
            if self.is_world_process_zero():
                if before is not None:
                    with atomic_write(path, "wb") as f:
                        f.write(before)
                elif os.path.isfile(path):
                    os.remove(path)
            raise

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
        self._record_configuration()
        os.makedirs(self.args.output_dir, exist_ok=True)
        dataset_ids = [dataset_tags] if isinstance(dataset_tags, str) else list(dataset_tags or [])
        dataset_names = [dataset] if isinstance(dataset, str) else list(dataset or [])
        card_kwargs = {
            "base_model": finetuned_from,
            "dataset_id": dataset_ids[0] if dataset_ids else None,
            "dataset_name": dataset_names[0] if dataset_names else None,
            "results": results_from_log_history(self.state.log_history),
            "model_name": model_name,
            "repo_id": self.hub_model_id or self.args.hub_model_id,
            "license": license,
            "language": language,
            "tags": [tags] if isinstance(tags, str) else tags,
            **card_kwargs,
            "hyperparameters": training_hyperparameters(
                self.args,
                **{"samples_per_class": self.samples_per_class, **card_kwargs.get("hyperparameters", {})},
            ),
        }
        save_model_card(self.args.output_dir, self.accelerator.unwrap_model(self.model).config, **card_kwargs)


def _checked_embedding_loss(loss):
    if loss is not None and not isinstance(loss, EmbeddingLoss):
        raise ValueError(
            "embedding_loss must be an hf_add.EmbeddingLoss (ADDLoss(...), OrthogonalProjectionLoss(...) or "
            f"your own subclass) or None, got {type(loss).__name__}"
        )
    return loss


def _is_adapter(model: nn.Module) -> bool:
    """A PEFT model, which saves an adapter (no config.json) instead of a whole model."""
    return hasattr(model, "peft_config") and hasattr(model, "base_model")


def _with_gradient_of(value: torch.Tensor, gradient_source: torch.Tensor) -> torch.Tensor:
    """A tensor equal to ``value`` whose gradient is that of ``gradient_source``."""
    return value.detach() + (gradient_source - gradient_source.detach())
