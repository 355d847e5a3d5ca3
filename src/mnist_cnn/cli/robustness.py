"""`mnist-cnn robustness`: accuracy on test digits changed as people write them."""

from __future__ import annotations

from mnist_cnn.cli.common import (
    PROG,
    UsageError,
    add_command,
    add_data_dir_option,
    load_keras,
    print_json,
)


def run(args) -> None:
    from mnist_cnn import rundir

    if args.per_change < 1:
        raise UsageError(f"--per-change {args.per_change}: give at least 1 digit per change")
    dataset = rundir.dataset_of(args.run)
    if dataset != "mnist":
        raise UsageError(
            f"{args.run} was trained on {dataset}; the robustness suite changes MNIST digits"
        )
    load_keras(args.run)
    from mnist_cnn import evaluation
    from mnist_cnn.data import sources
    from mnist_cnn.inference.classifier import Classifier
    from mnist_cnn.reporting import robustness

    classifier = Classifier(args.run)
    _, (x_test, y_test) = sources.load_dataset("mnist", args.data_dir)
    model = classifier.model  # the report's own path to the answers, so its figures match
    forward = (
        classifier.probabilities
        if model is None
        else (lambda digits: evaluation.predict_probabilities(model, digits))
    )
    suite = robustness.cached_suite(x_test, y_test, args.per_change, args.seed)
    results = robustness.score(suite, forward)
    if args.json:
        print_json({"model": str(classifier.path)} | results)
        return
    print(
        f"{classifier.path}: {results['per_change']} MNIST test digits per change "
        f"(seed {args.seed}), each drawn on a page and read back as predict reads it"
    )
    print(robustness.table(results))


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "robustness",
        "accuracy on test digits changed as people write them (rotated, slanted, thick, "
        "faint, noisy ...), read back through predict's preprocessing",
        f"{PROG} robustness runs/fast-20261121-101500 --per-change 500",
        run,
    )
    p.add_argument("run", metavar="RUN_DIR|MODEL")
    p.add_argument(
        "--per-change",
        type=int,
        default=100,
        metavar="N",
        help="test digits per change and strength (default: 100, as in the report)",
    )
    p.add_argument("--seed", type=int, default=0, help="which digits (default: 0, as the report)")
    add_data_dir_option(p)
