"""Model cards for models trained with hf-add: loss and λ, hyperparameters, accuracy, geometry, citations.

The card is a ``huggingface_hub.ModelCard`` rendered from ``hf_add/templates/model_card.md``; its
YAML front matter carries a ``model-index`` (task ``audio-classification``, metric ``accuracy``) so the
Hub shows the result. Everything is read from the saved model (``config.json``, whose ``hf_add_training``
entry ``ADDTrainer`` writes) and from what the caller passes; nothing is fetched from the network.

``results`` (what ``build_model_card`` / ``save_model_card`` consume; ``hf_add.runs`` derives it from
its ``results.json``)::

    {
        "accuracy": {"mean": 0.912, "std": 0.011, "values": [0.90, 0.92, ...]},  # fractions in [0, 1];
                          # a bare float is one run; with only "values", mean and sample std are computed
        "geometry": {"intra_class_mean_distance": 0.31,                 # float, or {"mean", "std"}
                     "inter_class_cv": {"mean": 0.12, "std": 0.01}, ...},  # any names; eval_ prefix dropped
        "protocol": "5-fold CV x 3 seeds",           # optional: how the values were obtained
        "split": "test",                             # optional: the evaluated split (model-index)
    }
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hf_add.files import atomic_write
from hf_add.geometry import GEOMETRY_SUMMARIES
from hf_add.losses.add import ADD_CITATION
from hf_add.losses.registry import loss_citation, loss_tag
from hf_add.saved_configuration import CONFIG_KEY, load_config

# Package data (pyproject: tool.setuptools.package-data), so a wheel renders cards too.
TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "model_card.md"
LAMBDA_SYMBOLS = {
    "lambda_mu_p": "λ_μp",
    "lambda_sigma_p": "λ_σp",
    "lambda_mu_n": "λ_μn",
    "lambda_sigma_n": "λ_σn",
    "lambda_mu": "λ_μ",
    "gamma": "γ",
    "eps": "ε",
}
SOFTWARE = ("hf-add", "transformers", "torch", "torchaudio", "datasets", "huggingface_hub")


def training_hyperparameters(args, **extra: Any) -> dict[str, Any]:
    """The paper's Table 1 rows from ``TrainingArguments``; ``extra`` adds what Trainer does not know
    (e.g. ``mixup_alpha=0.5``, ``specaugment="2 freq masks of 24 bins"``)."""
    world_size = max(getattr(args, "world_size", 1), 1)
    optimizer = str(getattr(args.optim, "value", args.optim))
    rows: dict[str, Any] = {
        "learning_rate": args.learning_rate,
        "train_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * world_size,
        "epochs": args.num_train_epochs if args.max_steps <= 0 else None,
        "max_steps": args.max_steps if args.max_steps > 0 else None,
        "optimizer": optimizer,
        "betas": (args.adam_beta1, args.adam_beta2) if "adam" in optimizer else None,
        "weight_decay": args.weight_decay,
        "lr_scheduler": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "warmup": args.warmup_steps or None,
        "max_grad_norm": args.max_grad_norm or None,
        "mixed_precision": "bf16" if args.bf16 else "fp16" if args.fp16 else None,
        "seed": args.seed,
    }
    return {k: v for k, v in {**rows, **extra}.items() if v is not None}


def card_results(metrics: dict, prefix: str = "", protocol: str | None = None) -> dict:
    """The card's ``results`` from one evaluation's metrics (keys ``{prefix}accuracy``, ...): the accuracy
    (None for multi-label models, which report mAP) and the geometry summaries."""
    return {
        "accuracy": metrics.get(f"{prefix}accuracy"),
        "geometry": {
            name: metrics[f"{prefix}{name}"] for name in GEOMETRY_SUMMARIES if f"{prefix}{name}" in metrics
        },
        "protocol": protocol,
    }


def results_from_log_history(log_history: list[dict]) -> dict | None:
    """``results`` of the last evaluation in a Trainer's ``state.log_history`` (None before any)."""
    evaluation = next((logs for logs in reversed(log_history) if "eval_accuracy" in logs), None)
    if evaluation is None:
        return None
    return card_results(evaluation, "eval_", "single run, last evaluation of this trainer")


def build_model_card(
    model_dir_or_config,
    *,
    base_model: str | None = None,
    dataset_name: str | None = None,
    dataset_id: str | None = None,
    protocol: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    results: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    repo_id: str | None = None,
    license: str | None = None,
    language: str | list[str] | None = None,
    tags: list[str] | None = None,
) -> ModelCard:
    """Render the card of a saved model (a directory with ``config.json``, a config object, or its dict).

    ``hyperparameters`` is a mapping (see ``training_hyperparameters``) or ``TrainingArguments``;
    ``results`` follows the format in this module's docstring; ``protocol`` overrides ``results["protocol"]``.
    ``dataset_id`` is the Hub dataset id (front matter ``datasets``); ``dataset_name`` its display name.
    """
    config = load_config(model_dir_or_config)
    training = config.get(CONFIG_KEY) or {}
    if hyperparameters is not None and not isinstance(hyperparameters, Mapping):
        hyperparameters = training_hyperparameters(hyperparameters)
    results = dict(results or {})
    protocol = protocol or results.get("protocol")
    base_model = _hub_id(base_model or config.get("_name_or_path"))  # a local checkpoint has no Hub page
    model_name = model_name or (repo_id.split("/")[-1] if repo_id else None) or "hf-add audio classifier"
    dataset_name = dataset_name or dataset_id

    accuracy = _statistic(results.get("accuracy"))
    eval_results = None
    if accuracy is not None:
        eval_results = [
            EvalResult(
                task_type="audio-classification",
                task_name="Audio Classification",
                dataset_type=dataset_id or _slug(dataset_name or "custom"),
                dataset_name=dataset_name or "custom",
                dataset_split=results.get("split"),
                metric_type="accuracy",
                metric_name=_metric_name(accuracy, protocol),
                metric_value=accuracy["mean"],
            )
        ]
    embedding_loss = training.get("embedding_loss")
    classification_loss = training.get("classification_loss") or {"name": "CrossEntropy", "config": {}}
    card_data = ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        eval_results=eval_results,
        language=language,
        library_name="transformers",
        license=license,
        metrics=["accuracy"],
        pipeline_tag="audio-classification",
        tags=[
            "audio-classification",
            "hf-add",
            *_loss_tags(embedding_loss, classification_loss),
            *(tags or []),
        ],
    )
    labels = config.get("id2label") or {}
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_name=model_name,
        repo_id=repo_id or "<user>/<model>",
        base_model=base_model,
        dataset_name=dataset_name,
        labels=[labels[k] for k in sorted(labels, key=int)] if labels else None,
        loss_summary=_loss_summary(embedding_loss, classification_loss),
        embedding_loss=_loss_rows(embedding_loss),
        classification_loss=_loss_rows(classification_loss),
        embedding_module=training.get("embedding_module", "classifier"),
        accuracy=_format_statistic(accuracy, percent=True) if accuracy else None,
        protocol=protocol,
        geometry=[
            (name.removeprefix("eval_"), _format_statistic(_statistic(value)))
            for name, value in (results.get("geometry") or {}).items()
        ],
        hyperparameters=[(name, _format_value(value)) for name, value in (hyperparameters or {}).items()],
        needs_hf_add_import=config.get("model_type") == "beats",
        citations=_citations(embedding_loss, classification_loss),
        versions=_versions(),
    )


def save_model_card(output_dir: str | os.PathLike, model_dir_or_config=None, **kwargs) -> ModelCard:
    """Write ``README.md`` into ``output_dir`` atomically (a reader never sees half a card); the model is
    read from ``output_dir`` unless ``model_dir_or_config`` says otherwise. Keywords as ``build_model_card``."""
    card = build_model_card(output_dir if model_dir_or_config is None else model_dir_or_config, **kwargs)
    with atomic_write(os.path.join(output_dir, "README.md"), encoding="utf-8") as f:
        f.write(str(card))
    return card


def _hub_id(name: str | None) -> str | None:
    """A config's ``_name_or_path`` names the base model only when it is a Hub id, not a local path."""
    if not name or os.path.exists(name) or name.count("/") != 1 or name.startswith((".", "/")):
        return None
    return name


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _statistic(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return {"mean": float(value)}
    values = [float(v) for v in value.get("values") or []]
    stat = {"mean": float(value["mean"]) if value.get("mean") is not None else statistics.fmean(values)}
    if value.get("std") is not None:
        stat["std"] = float(value["std"])
    elif len(values) > 1:
        stat["std"] = statistics.stdev(values)
    if values:
        stat["n"] = len(values)
    return stat


def _format_statistic(stat: dict, percent: bool = False) -> str:
    scale, unit = (100.0, " %") if percent else (1.0, "")
    text = f"{stat['mean'] * scale:.2f}" if percent else f"{stat['mean']:.4f}"
    if "std" in stat:
        text += f" ± {stat['std'] * scale:.2f}" if percent else f" ± {stat['std']:.4f}"
    text += unit
    return text + (f" (n = {stat['n']})" if stat.get("n", 1) > 1 else "")


def _metric_name(accuracy: dict, protocol: str | None) -> str:
    """model-index holds one number (the mean); the name keeps the protocol and the spread beside it."""
    details = [protocol] if protocol else []
    if "std" in accuracy:
        details.append(f"std {accuracy['std']:.4f}")
    return f"Accuracy ({', '.join(details)})" if details else "Accuracy"


def _format_value(value) -> str:
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_format_value(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _loss_rows(loss: dict | None) -> dict | None:
    if loss is None:
        return None
    config = loss.get("config") or {}
    text = ", ".join(f"{LAMBDA_SYMBOLS.get(k, k)} = {_format_value(v)}" for k, v in config.items())
    return {"name": loss["name"], "config_text": text or "—"}


def _loss_summary(embedding_loss: dict | None, classification_loss: dict) -> str:
    loss = f"{classification_loss['name']}"
    if embedding_loss is None:
        return f"{loss} alone (no embedding loss)"
    lambdas = _loss_rows(embedding_loss)["config_text"]
    return f"{loss} + {embedding_loss['name']} ({lambdas})"


def _loss_tags(embedding_loss: dict | None, classification_loss: dict) -> list[str]:
    """A tag per loss with a citation (ADDLoss -> add-loss, a user's MyLoss -> my-loss); not plain CE."""
    return [loss_tag(loss) for loss in (embedding_loss, classification_loss) if loss and loss_citation(loss)]


def _citations(embedding_loss: dict | None, classification_loss: dict) -> list[str]:
    """The ADD paper always (this package implements it), then each other loss's own citation."""
    cited = [loss_citation(loss) for loss in (embedding_loss, classification_loss) if loss]
    return [ADD_CITATION, *(c for c in cited if c and c != ADD_CITATION)]


def _versions() -> list[tuple[str, str]]:
    rows = []
    for name in SOFTWARE:
        try:
            rows.append((name, version(name)))
        except PackageNotFoundError:
            continue
    return rows
