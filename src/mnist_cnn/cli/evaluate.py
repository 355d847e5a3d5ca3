"""`mnist-cnn evaluate`: a model's scores on a dataset's test (or train) part."""

from __future__ import annotations

from mnist_cnn.cli.common import (
    PROG,
    add_command,
    add_data_options,
    dataset_for,
    load_keras,
    print_json,
    print_skipped,
)


def run(args) -> None:
    load_keras(args.model)
    from mnist_cnn import evaluation
    from mnist_cnn.inference.scoring import score

    scores = score(args.model, dataset_for(args), args.split, args.data_dir)
    result, folder, wrong = scores.summary, scores.folder, scores.wrong
    if args.json:
        print_json(result)
        return
    where = "" if folder is None else f" ({scores.digits} images; {folder.split})"
    print(f"{result['model']} on the {result['dataset']} {args.split} set{where}")
    if folder is not None:
        print_skipped(folder.skipped)
    print(evaluation.format_metrics(result, scores.temperature))
    if wrong:
        print(f"\nread wrong ({len(wrong)}):")
        for row in wrong:
            article = "an" if row["label"] == 8 else "a"
            print(
                f"  {row['file']}: {article} {row['label']} read as {row['predicted']} "
                f"(p={row['confidence']:.3f})"
            )


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "evaluate",
        "test loss, accuracy, per-class scores and confusion matrix (and, for a folder of your "
        "digits, the files read wrong)",
        f"{PROG} evaluate runs/keras-example-20261121-101500\n"
        f"  {PROG} evaluate my_model.h5 --dataset folder:my-digits --split all",
        run,
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL.keras|MODEL.h5")
    p.add_argument(
        "--split",
        choices=["test", "train", "all"],
        default="test",
        help="which part of the dataset to score (default: test)",
    )
    add_data_options(p, default_dataset=None)
