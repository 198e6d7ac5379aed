"""The offline study: does each ADD term do what the paper says (§4.4-4.5), on data we can make here?

Every row trains the same AST on the same spoken-commands set (35 words spoken by espeak-ng voices; train /
validation / test by voice, so test voices are unseen), with the same schedule, for several seeds; the
epoch kept is the best on validation; test accuracy, the embedding geometry of the test set and the mean
number of positive pairs per training batch are recorded.

    hf-add study --output_dir runs/study                                   # ast-mini from scratch
    hf-add study --model_name_or_path runs/backbone --output_dir runs/sp   # fine-tuning `hf-add pretrain`'s

From scratch the rows are CE, Focal, CE + OPL, CE + ADD with one λ term at a time, {1,0,1,0}, {1,1,1,1},
and the soft-label form with mixup and its ablations. Fine-tuning a pretrained model (the paper's regime),
they are the paper's baselines, ADD {1,1,1,1}, class-balanced batches with and without ADD, and the mixup
rows (``ROW_SETS``).

Resumable: a run whose ``results.json`` exists is not trained again, and an interrupted run continues from
its last checkpoint. Writes ``runs.csv`` (one line per run), ``results.csv`` / ``results.md`` (mean ± std
per row), ``paired.md`` (each row against CE on the same seeds, and against the CE row trained the same
way but for the loss, with 95 % intervals and sign tests) and ``heatmaps.png`` (Figure 5-style, CE and ADD
{1,1,1,1}, seed 0). ``--unknown_words``, ``--train_clips_per_word`` and ``--task speakers`` train on a copy
of the data (hard links) made for the purpose.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np
from datasets import load_dataset

from hf_add import runs
from hf_add.data.presets import SPEECH_COMMANDS_WORDS
from hf_add.embedding_metrics import REPORTED_METRICS
from hf_add.evaluation import evaluate_model
from hf_add.files import atomic_write, write_json
from hf_add.models.loading import NAMED_CONFIGS, check_model_location
from hf_add.plots import plot_geometry_heatmaps
from hf_add.research.paired import PairedDifference
from hf_add.runs import RunConfig
from hf_add.spoken_commands import make_spoken_commands

HELP = "the offline ablation study of the ADD terms (results table, heatmaps)"

ROWS: dict[str, dict] = {
    "CE": dict(loss="ce"),
    "Focal (γ=2)": dict(loss="focal", focal_gamma=2),
    "CE + OPL (γ=2, ×0.1)": dict(loss="opl", opl_gamma=2, opl_weight=0.1),
    "ADD λ={1,0,0,0}": dict(loss="add", add_lambdas=[1, 0, 0, 0]),
    "ADD λ={0,1,0,0}": dict(loss="add", add_lambdas=[0, 1, 0, 0]),
    "ADD λ={0,0,1,0}": dict(loss="add", add_lambdas=[0, 0, 1, 0]),
    "ADD λ={0,0,0,1}": dict(loss="add", add_lambdas=[0, 0, 0, 1]),
    "ADD λ={1,0,1,0}": dict(loss="add", add_lambdas=[1, 0, 1, 0]),
    "ADD λ={1,1,1,1}": dict(loss="add", add_lambdas=[1, 1, 1, 1]),
    "ADD soft, mixup 0.5": dict(loss="add", mixup=0.5),
    # The soft-label ablations: mixup alone, and each term of the soft form (eq. 8) alone.
    "CE, mixup 0.5": dict(loss="ce", mixup=0.5),
    "ADD soft L_μ only, mixup 0.5": dict(loss="add", mixup=0.5, add_lambdas=[1, 0, 1, 1]),
    "ADD soft σp only, mixup 0.5": dict(loss="add", mixup=0.5, add_lambda_mu=0),
    "ADD soft per-set L_μ, mixup 0.5": dict(loss="add", mixup=0.5, add_soft_mu="per_set"),
    # In the pretrained regime: a weaker σp (the term that dominates the soft form's gradient from scratch)
    # and a lower mixup probability.
    "ADD soft λσp=0.1, mixup 0.5": dict(loss="add", mixup=0.5, add_lambdas=[1, 0.1, 1, 1]),
    "CE, mixup 0.2": dict(loss="ce", mixup=0.2),
    "ADD soft, mixup 0.2": dict(loss="add", mixup=0.2),
    # Small per-device batches with the same update size: ADD sees each micro-batch of 8.
    "CE, batch 8 × 4 accumulated": dict(
        loss="ce", per_device_train_batch_size=8, gradient_accumulation_steps=4
    ),
    "ADD λ={1,1,1,1}, batch 8 × 4 accumulated": dict(
        loss="add", add_lambdas=[1, 1, 1, 1], per_device_train_batch_size=8, gradient_accumulation_steps=4
    ),
    # The scale of λ: does {1, 1, 1, 1} sit on a plateau?
    **{f"ADD λ={{1,1,1,1}}×{scale:g}": dict(loss="add", add_lambdas=[scale] * 4) for scale in (0.25, 0.5, 2)},
    # Class-balanced batches (8 words × 4 clips each): every batch holds ADD's positive pairs.
    "CE, class-balanced K=4": dict(loss="ce", samples_per_class=4),
    "ADD λ={1,1,1,1}, class-balanced K=4": dict(loss="add", add_lambdas=[1, 1, 1, 1], samples_per_class=4),
}
PRETRAINED_ONLY = (
    "CE, batch 8 × 4 accumulated",
    "ADD λ={1,1,1,1}, batch 8 × 4 accumulated",
    "ADD λ={1,1,1,1}×0.25",
    "ADD λ={1,1,1,1}×0.5",
    "ADD λ={1,1,1,1}×2",
    "ADD soft λσp=0.1, mixup 0.5",
    "CE, mixup 0.2",
    "ADD soft, mixup 0.2",
    "CE, class-balanced K=4",
    "ADD λ={1,1,1,1}, class-balanced K=4",
)
# From scratch, the rows of docs/study; fine-tuning a pretrained backbone (the paper's regime, issue 14), the
# paper's baselines, the balanced batches, and the mixup rows with their soft-label ablations.
ROW_SETS = {
    "from-scratch": [row for row in ROWS if row not in PRETRAINED_ONLY],
    "pretrained": [
        "CE",
        "Focal (γ=2)",
        "CE + OPL (γ=2, ×0.1)",
        "ADD λ={1,1,1,1}",
        "CE, class-balanced K=4",
        "ADD λ={1,1,1,1}, class-balanced K=4",
        "CE, mixup 0.5",
        "ADD soft, mixup 0.5",
        "ADD soft per-set L_μ, mixup 0.5",
        "ADD soft L_μ only, mixup 0.5",
        "ADD soft λσp=0.1, mixup 0.5",
        "CE, mixup 0.2",
        "ADD soft, mixup 0.2",
    ],
}
METRICS = (
    "accuracy",
    "intra_class_mean_distance",
    "intra_class_cv",
    "inter_class_mean_distance",
    "inter_class_cv",
)
# What the embedding space is good for (hf_add.embedding_metrics), on the test set of every run.
EMBEDDING_METRICS = REPORTED_METRICS
# With --unknown_words: trained without those words, scored on all of them (hf_add.evaluation, open set).
OPEN_SET_METRICS = ("cosine_auroc", "cosine_fpr_at_95_tpr", "mahalanobis_auroc", "mahalanobis_fpr_at_95_tpr")
BASELINE, PROPOSED = "CE", "ADD λ={1,1,1,1}"
# On a GPU: bf16 autocast (ADD's statistics stay float32), feature extraction in worker processes, and
# model-only checkpoints (a run is never resumed mid-way; writing optimizer state every epoch would dominate).
DEVICE_SETTINGS = {
    "cpu": dict(use_cpu=True),
    "cuda": dict(
        bf16=True, dataloader_num_workers=8, dataloader_persistent_workers=True, save_only_model=True
    ),
}


def slug(row: str) -> str:
    """An ASCII directory name for a row: "ADD λ={1,0,1,0}" -> "add-1-0-1-0"."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in row.lower()).split()
    return "-".join(words)


@dataclass
class Recipe:
    """What every run of the study shares (the offline demo trains with the same recipe)."""

    data_dir: str
    model: str = "ast-mini"
    ast_max_length: int = 100
    epochs: int = 20
    learning_rate: float = 1e-3
    device: str = "cpu"
    # Open set: the last ``unknown_words`` words of the data are left out of training (all partitions of a
    # copy of the data) and scored for novelty on the full test partition.
    unknown_words: int = 0
    # Low data: only the first ``train_clips_per_word`` clips of each word in the train partition.
    train_clips_per_word: int | None = None
    # "words" (the 35 words, split by voice) or "speakers": the classes are the voices, split by word, so the
    # test clips are utterances of the trained voices that were never trained on.
    task: str = "words"

    @property
    def view(self) -> str | None:
        """The name of the copy of the data the runs train on, or None for the data as it is."""
        parts = ["known" if self.unknown_words else None,
                 f"clips{self.train_clips_per_word}" if self.train_clips_per_word else None,
                 "speakers" if self.task == "speakers" else None]  # fmt: skip
        return "-".join(part for part in parts if part) or None

    @property
    def training_data_dir(self) -> str:
        return self.data_dir if self.view is None else f"{self.data_dir.rstrip('/')}-{self.view}"


# How a model is trained on the spoken-commands data, by the study and by `hf-add pretrain`: the split by the
# partition column, batches of 32, one warm-up epoch, the epoch best on validation kept.
SPOKEN_COMMANDS_TRAINING = {
    "dataset_name": "audiofolder",
    "split_column": "partition",
    "validation_split": "validation",
    "test_split": "test",
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "warmup_epochs": 1,
    "weight_decay": 0.01,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 1,
    "load_best_model_at_end": True,
    "metric_for_best_model": "accuracy",
    "report_to": "none",
    "logging_steps": 50,
    "disable_tqdm": True,
}


def run_settings(recipe: Recipe, row: str, seed: int, output_dir: str) -> dict:
    """The settings of one run, by name (``hf-add train``'s flags)."""
    settings = {
        "model_name_or_path": recipe.model,
        "ast_max_length": recipe.ast_max_length,
        **SPOKEN_COMMANDS_TRAINING,
        "data_dir": recipe.training_data_dir,
        "num_train_epochs": recipe.epochs,
        "learning_rate": recipe.learning_rate,
        "seed": seed,
        "output_dir": output_dir,
        **DEVICE_SETTINGS[recipe.device],
    }
    return {**settings, **ROWS[row]}  # a row's own settings (e.g. its batch size) win over the recipe's


def run_config(recipe: Recipe, row: str, seed: int, output_dir: str) -> RunConfig:
    """The config of one run (its ``command_line()`` is printed into results.md)."""
    return RunConfig.from_values(run_settings(recipe, row, seed, output_dir))


def run_one(recipe: Recipe, study_dir: str, row: str, seed: int) -> dict:
    """Train one (row, seed) unless its results exist; return its line of runs.csv."""
    output_dir = os.path.join(study_dir, slug(row), f"seed{seed}")
    results_file = os.path.join(output_dir, "results.json")
    if not os.path.isfile(results_file):
        start = time.time()
        config = run_config(recipe, row, seed, output_dir).with_values(resume_from_checkpoint="true")
        results = runs.run(config).results
        results["wall_seconds"] = time.time() - start
        write_json(results, results_file)
    with open(results_file) as f:
        results = json.load(f)
    (fold,) = results["folds"]
    model_dir = os.path.join(output_dir, fold["fold"])
    open_set = open_set_scores(recipe, model_dir) if recipe.unknown_words else {}
    return {
        "row": row,
        "seed": seed,
        **{metric: fold[metric] for metric in METRICS},
        **{metric: fold.get(metric) for metric in EMBEDDING_METRICS},
        **open_set,
        "positive_pairs": fold.get("train_positive_pairs"),  # mean ordered same-class pairs per batch
        "wall_seconds": round(results["wall_seconds"], 1),
        "model_dir": model_dir,
    }


def unknown_words(recipe: Recipe) -> list[str]:
    """The words left out of training in the open-set runs: the last ``recipe.unknown_words`` of the data."""
    words = load_dataset("audiofolder", data_dir=recipe.data_dir, split="train").unique("label")
    ordered = [word for word in SPEECH_COMMANDS_WORDS if word in words]
    return ordered[len(ordered) - recipe.unknown_words :]


def view_rows(recipe: Recipe, rows: list[dict]) -> list[dict]:
    """The metadata rows of ``recipe.view``: without the unknown words, with at most
    ``train_clips_per_word`` training clips per word (in file order), and for the speaker task relabelled by
    voice (``speaker``) and split by word: the first 25 words train, the next 5 validate, the last 5 test."""
    unknown = set(unknown_words(recipe)) if recipe.unknown_words else set()
    rows = [row for row in rows if row["label"] not in unknown]
    if recipe.train_clips_per_word:
        seen: dict[str, int] = {}
        kept = []
        for row in rows:
            if row["partition"] == "train":
                seen[row["label"]] = seen.get(row["label"], 0) + 1
                if seen[row["label"]] > recipe.train_clips_per_word:
                    continue
            kept.append(row)
        rows = kept
    if recipe.task == "speakers":
        words = [word for word in SPEECH_COMMANDS_WORDS if word in {row["label"] for row in rows}]
        part = {
            word: "train" if i < 25 else "validation" if i < 30 else "test" for i, word in enumerate(words)
        }
        rows = [
            {**row, "word": row["label"], "label": row["speaker"], "partition": part[row["label"]]}
            for row in rows
        ]
    return rows


def make_training_data(recipe: Recipe) -> None:
    """The copy of the data that ``recipe.view`` names (hard links to the same clips), made once."""
    target = recipe.training_data_dir
    if recipe.view is None or os.path.isdir(target):
        return
    building = f"{target}.partial"
    shutil.rmtree(building, ignore_errors=True)
    os.makedirs(building)
    with open(os.path.join(recipe.data_dir, "metadata.csv"), newline="") as f:
        kept = view_rows(recipe, list(csv.DictReader(f)))
    for row in kept:
        link = os.path.join(building, row["file_name"])
        os.makedirs(os.path.dirname(link), exist_ok=True)  # make-dataset writes clips/NNNNNN.wav
        os.link(os.path.join(recipe.data_dir, row["file_name"]), link)
    write_table(os.path.join(building, "metadata.csv"), kept)
    os.replace(building, target)


def open_set_scores(recipe: Recipe, model_dir: str) -> dict:
    """AUROC and FPR at 95 % TPR of the novelty scores of the full test partition, the unknown words
    positive, class means from the train partition's known words (kept beside the model)."""
    cached = os.path.join(model_dir, "open_set.json")
    if not os.path.isfile(cached):
        data = load_dataset("audiofolder", data_dir=recipe.data_dir, split="train")
        test = data.filter(lambda p: p == "test", input_columns="partition")
        train = data.filter(lambda p: p == "train", input_columns="partition")
        report = evaluate_model(
            model_dir, test, unknown_classes=unknown_words(recipe), reference=train, batch_size=64,
            device=recipe.device,
        )["open_set"]  # fmt: skip
        write_json(report, cached)
    with open(cached) as f:
        report = json.load(f)
    return {f"{score}_{name}": report[score][name] for score in ("cosine", "mahalanobis")
            for name in ("auroc", "fpr_at_95_tpr")}  # fmt: skip


def summarize(runs: list[dict]) -> list[dict]:
    table = []
    for row in dict.fromkeys(r["row"] for r in runs):
        lines = [r for r in runs if r["row"] == row]
        summary = {"row": row, "seeds": len(lines)}
        for metric in METRICS:
            values = np.array([r[metric] for r in lines], dtype=float)
            summary[f"{metric}_mean"] = float(values.mean())
            summary[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        pairs = [r["positive_pairs"] for r in lines]
        summary["positive_pairs_mean"] = None if None in pairs else float(np.mean(pairs))
        summary["wall_seconds_per_run"] = float(np.mean([r["wall_seconds"] for r in lines]))
        table.append(summary)
    return table


def markdown(table: list[dict], recipe: Recipe, study_dir: str, seeds: int) -> str:
    lines = [
        "| row | test accuracy (%) | intra-class mean d ↓ | intra-class CV ↓ | inter-class mean d ↑ "
        "| inter-class CV (equidistance) ↓ | positive pairs per batch | wall time per run (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in table:
        accuracy = f"{100 * s['accuracy_mean']:.2f} ± {100 * s['accuracy_std']:.2f}"
        cells = [f"{s[f'{m}_mean']:.3f} ± {s[f'{m}_std']:.3f}" for m in METRICS[1:]]
        pairs = "–" if s["positive_pairs_mean"] is None else f"{s['positive_pairs_mean']:.1f}"
        lines.append(
            f"| {s['row']} | {accuracy} | {' | '.join(cells)} | {pairs} | {s['wall_seconds_per_run']:.0f} |"
        )
    rows = [summary["row"] for summary in table]
    shown = PROPOSED if PROPOSED in rows else rows[-1]
    example = run_config(recipe, shown, 0, f"{study_dir}/{slug(shown)}/seed0").command_line()
    return "\n".join(
        [
            *lines,
            "",
            f"Mean ± sample std over {seeds} seeds; d = 1 - cos between test-set embeddings (the input "
            "of the classifier head); CV = σ/μ; positive pairs: ordered pairs of one class (with mixup, of "
            "identical label vectors) per training batch (per micro-batch with gradient accumulation: what ADD "
            "sees), mean over the run's logging windows (–: a run "
            "too short to log one). Each run is one `hf-add train`, e.g.:",
            "",
            f"    {example}",
        ]
    )


LOSS_SETTINGS = (
    "loss",
    "add_lambdas",
    "add_lambda_mu",
    "add_soft_mu",
    "focal_gamma",
    "opl_gamma",
    "opl_weight",
)


def matching_baseline(row: str) -> str | None:
    """The CE row trained as ``row`` is but for the loss (the same mixup, batches, ...), other than plain CE:
    "ADD soft, mixup 0.2" -> "CE, mixup 0.2"; None for CE rows and rows whose only difference is the loss."""
    if ROWS[row]["loss"] == "ce":
        return None
    rest = {k: v for k, v in ROWS[row].items() if k not in LOSS_SETTINGS}
    if not rest:
        return None
    matches = [name for name, settings in ROWS.items() if settings == {"loss": "ce", **rest}]
    return matches[0] if matches else None


def comparisons(rows: list[str]) -> list[tuple[str, str]]:
    """Each row against CE, and each other row also against the CE row trained the same way but for the loss."""
    pairs = [(row, BASELINE) for row in rows if row != BASELINE]
    return pairs + [(row, matching_baseline(row)) for row in rows if matching_baseline(row) in rows]


def paired_lines(runs: list[dict], metric: str, scale: float = 100.0) -> list[str]:
    """The table rows of every comparison on ``metric`` (× ``scale``): mean difference, 95 % interval and
    its half-width, seeds in favour, the exact sign test."""
    values = {(r["row"], r["seed"]): scale * r[metric] for r in runs if r.get(metric) is not None}
    lines = []
    for row, baseline in comparisons(list(dict.fromkeys(r["row"] for r in runs))):
        seeds = sorted(s for r, s in values if r == row and (baseline, s) in values)
        if not seeds:
            continue
        difference = PairedDifference.of(
            [values[(row, s)] for s in seeds], [values[(baseline, s)] for s in seeds]
        )
        interval = "–" if difference.low is None else f"[{difference.low:+.2f}, {difference.high:+.2f}]"
        half = "–" if difference.half_width is None else f"{difference.half_width:.2f}"
        lines.append(
            f"| {row} | {baseline} | {difference.n} | {difference.mean:+.2f} | {interval} | {half} "
            f"| {difference.favouring} of {difference.n} | {difference.sign_test_p:.3f} |"
        )
    return lines


PAIRED_HEADER = [
    "| row | against | seeds | mean difference | 95 % interval | half-width | seeds favouring the row "
    "| sign test p |",
    "|---|---|---|---|---|---|---|---|",
]


def paired(runs: list[dict]) -> str:
    """Each comparison on the same seeds: test accuracy (points), then every embedding and open-set metric
    that the runs have (× 100); then every run's accuracy by seed."""
    rows = list(dict.fromkeys(r["row"] for r in runs))
    accuracy = {(r["row"], r["seed"]): 100 * r["accuracy"] for r in runs}
    lines = paired_lines(runs, "accuracy")
    if not lines:
        return ""
    lines = ["Test accuracy (points):", "", *PAIRED_HEADER, *lines]
    for metric in (*EMBEDDING_METRICS, *OPEN_SET_METRICS):
        metric_lines = paired_lines(runs, metric)
        if metric_lines:
            lines += ["", f"{metric} (× 100):", "", *PAIRED_HEADER, *metric_lines]
    seeds = sorted({s for _, s in accuracy})
    lines += ["", f"| row | {' | '.join(f'seed {s}' for s in seeds)} |", f"|---|{'---|' * len(seeds)}"]
    for row in rows:
        cells = [f"{accuracy[(row, s)]:.2f}" if (row, s) in accuracy else "–" for s in seeds]
        lines.append(f"| {row} | {' | '.join(cells)} |")
    return "\n".join(
        [
            *lines,
            "",
            "Test accuracy (%) on unseen voices. A difference is row − baseline on the same seed (same data "
            "order); the interval is the Student-t 95 % interval of the mean difference over seeds; the sign "
            "test is two-sided and exact, ties dropped.",
        ]
    )


def write_heatmaps(runs: list[dict], recipe: Recipe, study_dir: str) -> str | None:
    """Figure 5-style heatmaps of the test set for CE and ADD {1,1,1,1} (seed 0 of each)."""
    chosen = {r["row"]: r for r in runs if r["seed"] == 0 and r["row"] in (BASELINE, PROPOSED)}
    if len(chosen) < 2:
        return None
    test = load_dataset("audiofolder", data_dir=recipe.data_dir, split="train").filter(
        lambda partition: partition == "test", input_columns="partition"
    )
    geometries = {
        row: evaluate_model(chosen[row]["model_dir"], test, batch_size=64, device=recipe.device)
        for row in chosen
    }
    names = geometries[BASELINE]["class_names"]
    return plot_geometry_heatmaps(geometries, os.path.join(study_dir, "heatmaps.png"), class_names=names)


def write_table(path: str, rows: list[dict]) -> None:
    with atomic_write(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_text(path: str, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text + "\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option; the epilog's layout kept as written."""


STUDY_EPILOG = f"""duration on a 2-core CPU: about 2 min per run from scratch (ast-mini, 20 epochs), about 1 min per run
fine-tuning `hf-add pretrain`'s backbone; rows x seeds runs. With the defaults: {len(ROW_SETS["from-scratch"])} rows
x 3 seeds = {3 * len(ROW_SETS["from-scratch"])} runs (about 1 h 20 min) from scratch, \
{len(ROW_SETS["pretrained"])} x 3 = {3 * len(ROW_SETS["pretrained"])} runs (about 40 min)
fine-tuning, plus about 1 min to speak the data. Interrupted, it resumes: run the same command again.

output layout (under --output_dir):
  data/                        the spoken-commands audiofolder (unless --data_dir), made once
  <row>/seed<k>/               one run: results.json, arguments.json, fold model (weights, card), checkpoints
  runs.csv                     one line per run (row, seed, accuracy, geometry, positive pairs, time)
  results.csv, results.md      mean ± std per row
  paired.md                    each row against CE on the same seeds, with 95 % intervals
  heatmaps.png                 Figure 5-style geometry of CE and ADD {{1,1,1,1}}, seed 0
"""


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="hf-add study",
        description=__doc__.split("\n\n")[0],
        epilog=STUDY_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--output_dir", default="runs/study", help="where the runs and tables go")
    parser.add_argument("--data_dir", default=None, help="spoken-commands audiofolder (made if missing)")
    parser.add_argument("--clips_per_word", type=int, default=60, help="clips per word of the data made")
    parser.add_argument("--num_voices", type=int, default=40, help="espeak-ng voices of the data made")
    parser.add_argument("--data_seed", type=int, default=0, help="seed of the data made")
    parser.add_argument(
        "--seeds", type=int, default=3, help="training seeds per row (first_seed .. first_seed + n - 1)"
    )
    parser.add_argument(
        "--first_seed", type=int, default=0, help="the seeds are first_seed, first_seed + 1, ..."
    )
    parser.add_argument(
        "--train_clips_per_word",
        type=int,
        default=None,
        help="low data: train on the first N clips of each word only (validation and test unchanged)",
    )
    parser.add_argument(
        "--task",
        choices=["words", "speakers"],
        default="words",
        help="words: the 35 words, test voices unseen; speakers: the voices are the classes, and the test "
        "utterances are words never trained on (first 25 words train, 5 validate, 5 test)",
    )
    parser.add_argument(
        "--unknown_words",
        type=int,
        default=0,
        help="open set: train without the last N words of the data and score the full test partition for "
        "novelty (AUROC, FPR at 95 %% TPR); the runs go to OUTPUT_DIR as usual",
    )
    parser.add_argument(
        "--model_name_or_path",
        "--model",
        default="ast-mini",
        help="a named AST config trained from scratch (ast-tiny, ast-mini, ...), or a pretrained AST to "
        "fine-tune: a model directory such as `hf-add pretrain`'s, or a Hub id (a new head is made for the "
        "35 words)",
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=list(ROWS),
        metavar="ROW",
        help=f"rows to run (default: the {len(ROW_SETS['from-scratch'])} from-scratch rows for a named config, "
        f"the {len(ROW_SETS['pretrained'])} pretrained-regime rows for a pretrained model): "
        + "; ".join(ROWS),
    )
    parser.add_argument("--ast_max_length", type=int, default=100, help="AST input frames (1 s)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run")
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="AdamW's, constant after warm-up")
    parser.add_argument("--device", choices=list(DEVICE_SETTINGS), default="cpu", help="where runs train")
    args = parser.parse_args(argv)
    check_model_location(args.model_name_or_path)
    recipe = Recipe(
        data_dir=args.data_dir or os.path.join(args.output_dir, "data"),
        model=args.model_name_or_path,
        ast_max_length=args.ast_max_length,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        device=args.device,
        unknown_words=args.unknown_words,
        train_clips_per_word=args.train_clips_per_word,
        task=args.task,
    )
    if not os.path.isdir(recipe.data_dir):
        make_spoken_commands(
            recipe.data_dir,
            words=SPEECH_COMMANDS_WORDS,
            clips_per_word=args.clips_per_word,
            num_voices=args.num_voices,
            seed=args.data_seed,
        )

    make_training_data(recipe)
    from_scratch = args.model_name_or_path in NAMED_CONFIGS
    rows = args.rows or ROW_SETS["from-scratch" if from_scratch else "pretrained"]
    runs = []
    for row in rows:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            runs.append(run_one(recipe, args.output_dir, row, seed))
            print(f"{row} seed {seed}: test accuracy {100 * runs[-1]['accuracy']:.2f}%", flush=True)
    table = summarize(runs)
    write_table(
        os.path.join(args.output_dir, "runs.csv"),
        [{k: v for k, v in r.items() if k != "model_dir"} for r in runs],
    )
    write_table(os.path.join(args.output_dir, "results.csv"), table)
    write_text(
        os.path.join(args.output_dir, "results.md"), markdown(table, recipe, args.output_dir, args.seeds)
    )
    comparison = paired(runs)
    if comparison:
        write_text(os.path.join(args.output_dir, "paired.md"), comparison)
    heatmaps = None if recipe.unknown_words else write_heatmaps(runs, recipe, args.output_dir)
    print(markdown(table, recipe, args.output_dir, args.seeds))
    print(comparison)
    if heatmaps:
        print(f"heatmaps: {heatmaps}")
    return table


if __name__ == "__main__":
    main()
