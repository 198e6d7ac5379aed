"""``hf-add evaluate``: a saved model on a dataset split: the head's results, the Figure 5-style embedding
geometry, what the embedding space is good for (retrieval, clustering, kNN), and open-set scores.

The split is read as training reads it (``hf_add.commands.dataset_split``).
"""

from __future__ import annotations

import argparse

from hf_add.commands.dataset_split import (
    add_split_arguments,
    check_split_arguments,
    embed_kwargs,
    load_splits,
)

HELP = "accuracy, embedding geometry, retrieval and open-set scores of a saved model on a dataset split"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-add evaluate",
        description="Accuracy, macro F1, per-class accuracy and confusion matrix; Figure 5-style embedding "
        "geometry; retrieval (precision@1, MAP@R, R-precision), kNN / nearest-class-mean accuracy and NMI of "
        "the embeddings; mAP and F1 for multi-label models; open-set AUROC with --unknown_classes.",
    )
    add_split_arguments(parser)
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--heatmap", default=None, help="write a PNG of the class-pair mean and CV of d here")
    parser.add_argument(
        "--heatmap_classes",
        default=None,
        help="comma-separated class names to draw (default: every class up to 20; with more, the 20 classes of "
        "the closest class pairs by mean d); the figure states which",
    )
    parser.add_argument("--confusion_matrix", default=None, help="write a PNG of the confusion matrix here")
    parser.add_argument(
        "--unknown_classes",
        default=None,
        help="comma-separated classes of the data the model was not trained on: they are scored for novelty "
        "(1 - cosine to the nearest class mean; Mahalanobis) and left out of the other metrics",
    )
    parser.add_argument(
        "--reference_split",
        default="train",
        help="with --unknown_classes: the split whose known-class clips give the class means (default: train; "
        "with --fold, its other folds)",
    )
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_split_arguments(parser, args)

    from hf_add.evaluation import evaluate_model
    from hf_add.files import write_json
    from hf_add.models.loading import check_model_location, check_saved_weights
    from hf_add.plots import plot_confusion_matrix, plot_geometry_heatmaps

    check_model_location(args.model)
    check_saved_weights(args.model)
    unknown = [name.strip() for name in args.unknown_classes.split(",")] if args.unknown_classes else []
    dataset, reference, audio_column, skipped = load_splits(args, args.reference_split if unknown else None)
    results = evaluate_model(
        args.model, dataset, audio_column=audio_column, label_column="labels", unknown_classes=unknown,
        reference=reference, **embed_kwargs(args),
    )  # fmt: skip
    results["skipped_clips"] = skipped
    print_results(results)
    if skipped:
        print(f"  ({len(skipped)} unusable clip(s) skipped: listed in the warnings above and in --output)")
    if args.output:
        write_json(results, args.output)
        print(f"results: {args.output}")
    if args.heatmap and "geometry" in results:
        geometry = {key: results[key] for key in ("mean_distance", "cv_distance", "accuracy")}
        classes = [c.strip() for c in args.heatmap_classes.split(",")] if args.heatmap_classes else None
        plot_geometry_heatmaps({args.model: geometry}, args.heatmap, results["class_names"], classes=classes)
        print(f"heatmap: {args.heatmap}")
    if args.confusion_matrix and "confusion_matrix" in results:
        plot_confusion_matrix(results["confusion_matrix"], results["class_names"], args.confusion_matrix)
        print(f"confusion matrix: {args.confusion_matrix}")
    return results


def _line(name: str, value) -> str:
    return f"  {name:28s} {value:.4f}" if value is not None and value == value else f"  {name:28s} undefined"


def print_results(results: dict) -> None:
    if "map" in results:  # a multi-label model
        print(f"mAP {100 * results['map']:.2f}% on {results['num_samples']} clips")
        for name in ("micro_f1", "macro_f1"):
            print(_line(name, results[name]))
        return
    print(f"accuracy {100 * results['accuracy']:.2f}% on {results['num_samples']} clips")
    from hf_add.embedding_metrics import REPORTED_METRICS

    for name in ("macro_f1", *REPORTED_METRICS):
        print(_line(name, results[name]))
    for name, value in results["geometry"].items():
        print(_line(name, value))
    if "open_set" in results:
        open_set = results["open_set"]
        print(
            f"open set: {open_set['num_unknown']} clip(s) of {len(open_set['unknown_classes'])} unknown class(es)"
        )
        for score in ("cosine", "mahalanobis"):
            print(_line(f"{score} AUROC", open_set[score]["auroc"]))
            print(_line(f"{score} FPR at 95% TPR", open_set[score]["fpr_at_95_tpr"]))


if __name__ == "__main__":
    main()
