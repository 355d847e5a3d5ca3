"""`mnist-cnn train`: one network (or an ensemble) trained into a run directory.

Its flags (the network, the run, the recipe) are sweep's too: `add_network_options`."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from mnist_cnn.cli.common import (
    PROG,
    Interrupted,
    UsageError,
    add_address_option,
    add_command,
    add_data_options,
    load_keras,
    print_json,
    print_skipped,
)

RUN_FLAGS = {  # train's flags beyond the recipe: flag -> TrainConfig field
    "--arch": "arch",
    "--init": "init",
    "--name": "name",
    "--seed": "seed",
    "--limit": "limit",
    "--ensemble": "ensemble",
    "--mix-mnist": "mix_mnist",
    "--track": "track",
}


def check_train_flags(args) -> None:
    """What can be checked without Keras is answered at once: a bad value or model name,
    values that do not go together, a bad layer list."""
    from mnist_cnn.models import catalogue, layer_list
    from mnist_cnn.models import settings as recipe_settings

    changes = {field: getattr(args, field) for field in recipe_settings.RECIPE_FIELDS}
    run = train_fields(args)
    try:
        recipe_settings.check_changes(changes)
        recipe_settings.check_run(
            *(run[key] for key in ("seed", "limit", "ensemble", "mix_mnist", "dataset")),
            run["data_dir"],
        )
        if args.model:
            recipe_settings.resolve(catalogue.get_entry(args.model).recipe, changes)
    except recipe_settings.SettingsError as exc:
        raise UsageError(str(exc)) from None
    if args.arch is not None and layer_list.python_file(args.arch) is None:
        layer_list.parse(args.arch)
    if run["track"] and importlib.util.find_spec("mlflow") is None:  # found, not imported
        raise UsageError("tracking needs MLflow: pip install 'mnist-cnn[tracking]'")


def train_fields(args) -> dict:
    """The TrainConfig fields the train flags give (verbose aside)."""
    from mnist_cnn.models.settings import RECIPE_FIELDS

    return {
        "model": args.model,
        **{field: getattr(args, field) for field in RUN_FLAGS.values()},
        **{field: getattr(args, field) for field in RECIPE_FIELDS},
        "seed": 42 if args.seed is None else args.seed,
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "out": args.out,
        "mix_mnist": args.mix_mnist or 0,
        "ensemble": 1 if args.ensemble is None else args.ensemble,
        "track": args.track or os.environ.get("MLFLOW_TRACKING_URI") or None,
    }


def given_train_flags(args) -> list[str]:
    """The train flags given on the command line (which --resume refuses)."""
    from mnist_cnn.models.settings import RECIPE_FIELDS, flag

    given = [flag(field) for field in RECIPE_FIELDS if getattr(args, field) is not None]
    return given + [name for name, field in RUN_FLAGS.items() if getattr(args, field) is not None]


def run(args) -> None:
    given = given_train_flags(args)
    if args.resume and (args.model or given):
        raise UsageError(
            "--resume continues a run with its own settings; give no model or "
            f"{', '.join(given) or 'settings'} with it"
        )
    if not args.resume and not args.model and args.arch is None and not args.init:
        raise UsageError(
            "give a model name (see 'mnist-cnn models'), --arch LAYERS|FILE.py, "
            "--init MODEL, or --resume RUN_DIR"
        )
    check_train_flags(args)
    from mnist_cnn.scale import cluster  # after the checks: a bad flag is answered at once

    runner = cluster.ensemble_runner(
        args.address, args.resume, args.ensemble, args.dataset, args.data_dir, args.out
    )
    load_keras()
    from mnist_cnn.training import TrainingInterrupted

    verbose = 1 if sys.stdout.isatty() and not args.json else 2
    try:
        if runner is not None:
            with runner as member_runner:
                result = _train_or_resume(args, verbose, member_runner)
        else:
            result = _train_or_resume(args, verbose, None)
    except TrainingInterrupted as exc:
        print(f"{PROG} train: {exc}", file=sys.stderr, flush=True)
        raise Interrupted() from None
    if result.tracking:  # MLflow stopped answering: the run is whole, its copy there is not
        print(f"{PROG} train: warning: {result.tracking}", file=sys.stderr, flush=True)
    summary = result.summary()
    notes = _notes(summary["run_dir"])
    if notes:  # what was made of a pasted model: lines not read, a softmax added
        summary["notes"] = notes
    if args.json:
        print_json(summary)
        return
    if result.data is not None:
        data = result.data
        print(
            f"data: {data['folder']}: {data['train']} training and {data['test']} test images "
            f"({data['split']})"
        )
        print_skipped([(row["file"], row["error"]) for row in data["skipped"]])
    print(
        f"test accuracy: {summary['test_accuracy']:.2%}  test loss (cross-entropy of the "
        f"calibrated probabilities): {summary['test_loss']:.4f}"
        f"  fit: {summary['train_seconds']:.1f} s"
    )
    print(f"run directory: {summary['run_dir']}")
    for note in notes:
        print(f"note: {note}")


def _notes(run_dir: str) -> list[str]:
    """The notes the network's origin recorded in config.json (a pasted layer list's)."""
    from mnist_cnn import rundir

    entry = rundir.read_json(Path(run_dir) / rundir.CONFIG).get("entry", {})
    return (entry.get("origin") or {}).get("notes", [])


def _train_or_resume(args, verbose, member_runner):
    from mnist_cnn.training import TrainConfig, resume, train

    if args.resume:
        return resume(args.resume, verbose=verbose, member_runner=member_runner)
    config = TrainConfig(**train_fields(args), verbose=verbose)
    return train(config, member_runner=member_runner)


def add_network_options(parser) -> None:
    """What to train and how: train's flags, which sweep takes too (fixed, or --set)."""
    parser.add_argument(
        "model", nargs="?", metavar="NAME", help="catalogue name (see 'mnist-cnn models')"
    )
    parser.add_argument(
        "--arch",
        metavar="LAYERS|FILE.py",
        help="your network instead: a Keras layer list, or a tutorial's Sequential model pasted "
        "whole (read, never run as Python), or FILE.py[:FUNCTION] whose function (default "
        "build) returns a keras.Model",
    )
    parser.add_argument(
        "--init",
        metavar="MODEL",
        help="start from a saved model's network and weights (a run directory, .keras or .h5)",
    )
    parser.add_argument(
        "--name", help="name your network's runs (default: custom; finetune for --init)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: 42)")
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="train on the first N training images only (quick trials)",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        metavar="K",
        help="train K members (seeds S, S+1, ...) and average their probabilities",
    )
    parser.add_argument(
        "--mix-mnist",
        type=int,
        metavar="N",
        help="with --dataset folder:PATH, mix N MNIST training digits in (so as not to forget)",
    )
    parser.add_argument(
        "--track",
        metavar="URI",
        help="log the run to this MLflow tracking server too (default: $MLFLOW_TRACKING_URI "
        "if set; needs pip install 'mnist-cnn[tracking]')",
    )
    add_data_options(parser)
    add_recipe_options(parser)


def add_recipe_options(parser) -> None:
    """One flag for every field of a recipe (settings.Recipe); unset keeps the entry's."""
    from mnist_cnn.models import settings

    recipe = parser.add_argument_group(
        "recipe", "change any setting of the recipe (default: the entry's; see 'models NAME')"
    )
    recipe.add_argument("--epochs", type=int)
    recipe.add_argument("--batch-size", type=int)
    recipe.add_argument(
        "--validation-split", type=float, metavar="F", help="fraction of train held out"
    )
    recipe.add_argument("--loss", choices=settings.LOSSES, help="integer or one-hot labels")
    recipe.add_argument("--optimizer", choices=list(settings.OPTIMIZERS))
    recipe.add_argument("--learning-rate", type=float, metavar="LR", help="the peak, if scheduled")
    recipe.add_argument(
        "--schedule", choices=settings.SCHEDULES, help="one-cycle: warm up, then cosine to zero"
    )
    recipe.add_argument("--warmup", type=float, metavar="F", help="share of steps warming up")
    recipe.add_argument("--label-smoothing", type=float, metavar="F")
    recipe.add_argument("--precision", choices=settings.PRECISIONS, help="a Keras dtype policy")
    recipe.add_argument(
        "--steps-per-execution", type=int, metavar="N", help="batches per compiled call"
    )
    recipe.add_argument(
        "--select-best",
        action=argparse.BooleanOptionalAction,
        help="keep the epoch of lowest validation loss",
    )
    recipe.add_argument(
        "--augment",
        dest="augmentation",
        metavar="SPEC",
        help="random rotation, zoom and shift while training: on, off, or strengths such "
        "as rotation=10,zoom=0.1,shift=0.1",
    )
    recipe.add_argument(
        "--batch-norm-refresh",
        type=int,
        metavar="N",
        help="after fit, measure batch norm's statistics again on N clean training digits "
        "(0: keep the running averages of training)",
    )


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "train",
        "train a network (the catalogue's or yours) and write a run directory",
        f"{PROG} train keras-example --epochs 3\n"
        f"  {PROG} train --arch \"Conv2D(32, (3,3), activation='relu'), MaxPooling2D((2,2)), "
        f"Flatten(), Dense(10, activation='softmax')\" --epochs 5\n"
        f"  {PROG} train --arch my_net.py:build --optimizer sgd --learning-rate 0.05\n"
        f"  {PROG} train --init my_model.h5 --dataset folder:my-digits",
        run,
    )
    add_network_options(p)
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last completed epoch, with its settings",
    )
    p.add_argument("--out", default="runs", help="folder for run directories (default: runs/)")
    add_address_option(p, "train an ensemble's members side by side on a Ray cluster")
