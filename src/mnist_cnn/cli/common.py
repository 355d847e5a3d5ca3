"""What every command shares: the program's name, exit codes, errors, printing, and the
options that several commands take (written once here)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from mnist_cnn.backend import import_keras
from mnist_cnn.data import datasets
from mnist_cnn.inference import MIN_CONFIDENCE
from mnist_cnn.rundir import RunError

PROG = "mnist-cnn"
log = logging.getLogger("mnist_cnn.cli")  # a line on stderr before a wait (main sets it up)
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell tool cut off by `| head` returns


class UsageError(Exception):
    """Arguments that parse but do not make sense together."""


class Interrupted(Exception):
    """Stopped by Ctrl-C after saving what can be resumed; the message is already printed."""


class PartialFailure(Exception):
    """Some inputs could not be read; each already has its own error line."""


# Errors that mean "your input is wrong" (exit 2) rather than "we failed" (exit 1), by the
# module that defines them; a module not yet imported cannot have raised its error.
INPUT_ERRORS = {
    "mnist_cnn.models.catalogue": "UnknownModelError",
    "mnist_cnn.training.config": "TrainingError",
    "mnist_cnn.data.imaging": "ImageError",
    "mnist_cnn.models.layer_list": "LayerListError",
    "mnist_cnn.models.loading": "ArchitectureError",
    "mnist_cnn.scale.cluster": "ClusterError",
    "mnist_cnn.scale.sweep": "SweepError",
    "mnist_cnn.samples": "SampleError",
}


def input_errors() -> tuple[type[Exception], ...]:
    loaded = [getattr(sys.modules[m], name) for m, name in INPUT_ERRORS.items() if m in sys.modules]
    return (UsageError, datasets.DatasetError, RunError, *loaded)


def print_json(obj) -> None:
    print(json.dumps(obj), flush=True)


def print_skipped(skipped: list[tuple[str, str]]) -> None:
    """Every file a folder dataset could not use, named on stderr, and their count."""
    for file, why in skipped:
        print(f"{PROG}: skipped {file}: {why}", file=sys.stderr)
    if skipped:
        print(f"skipped: {len(skipped)} file(s) that could not be read (named on stderr)")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command and how to get help."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def dataset_type(text: str) -> str:
    try:
        return datasets.dataset_name(text)
    except datasets.DatasetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_data_options(parser, default_dataset: str | None = "mnist", folders: bool = True) -> None:
    names = ", ".join(datasets.DATASETS) + (", or folder:PATH (your own images)" if folders else "")
    parser.add_argument(
        "--dataset",
        default=default_dataset,
        type=dataset_type if folders else str,
        choices=None if folders else list(datasets.DATASETS),
        metavar="NAME" if folders else None,
        help=f"{names} (default: {default_dataset or 'the one the run used'})",
    )
    add_data_dir_option(
        parser, f"data folder (default: ${datasets.DATA_ENV} or ~/.cache/mnist-cnn)"
    )


def add_address_option(parser, what: str) -> None:
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help=f"{what}: Ray's address (auto, HOST:PORT or ray://HOST:10001; default "
        "$RAY_ADDRESS); needs mnist-cnn[cluster]",
    )


def add_command(sub, name: str, help_text: str, example: str, func):
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument(  # where people type it: after the command, as well as before
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and backend logs",
    )
    parser.set_defaults(func=func)
    return parser


def dataset_for(args) -> str:
    """The dataset a model was trained on (from its run), unless --dataset says otherwise."""
    from mnist_cnn import rundir

    return args.dataset or rundir.dataset_of(args.model)


def add_data_dir_option(parser, help_text: str = "data folder (default: as for train)") -> None:
    parser.add_argument("--data-dir", metavar="DIR", help=help_text)


def add_min_confidence_option(parser) -> None:
    """predict's and serve's --min-confidence: one default, so they and the page agree."""
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=MIN_CONFIDENCE,
        metavar="P",
        help=f"answers below this confidence are marked unsure (default: {MIN_CONFIDENCE}, "
        "for predict, serve and the page alike; 0: never)",
    )


def add_for_option(parser, runs_help: str | None = None) -> None:
    """predict's and serve's `--for handwriting`: the model chosen for a use, not named."""
    from mnist_cnn.inference.handwriting import PURPOSES

    parser.add_argument(
        "--for",
        dest="purpose",
        choices=PURPOSES,
        help="use the run under --runs that reads people's handwriting best (the best "
        "robustness-suite mean its training measured), instead of naming one, and read "
        "each digit turned a little either way as well",
    )
    parser.set_defaults(turns=())
    if runs_help:
        parser.add_argument("--runs", default="runs", help=runs_help)


def model_and_purpose(args) -> UsageError:
    """The error for a model named together with --for, which chooses the model itself."""
    return UsageError(
        f"give a model ({args.model}) or --for {args.purpose}, not both: "
        f"--for {args.purpose} chooses the run under --runs itself"
    )


def model_for(args) -> dict | None:
    """With --for: set args.model to the chosen run and args.turns to the angles it reads
    digits at too, say which on stderr, and return what was chosen and why (the server
    shows it, and its workers read the turns from it); without, None."""
    if not args.purpose:
        return None
    from mnist_cnn.inference.handwriting import run_for_handwriting

    choice = run_for_handwriting(args.runs)
    args.model, args.turns = str(choice.run), choice.turns
    print(f"{PROG} {args.command}: {choice.describe()}", file=sys.stderr, flush=True)
    return choice.to_dict()


def check_min_confidence(value: float) -> None:
    """predict's and serve's --min-confidence: a probability."""
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"--min-confidence must be between 0 and 1, got {value}")


def load_keras(*models, intra_op_threads: int | None = None) -> None:
    """Check that the runs or model files named exist (a wrong path is answered at once, not
    after seconds of loading), then load Keras, saying so: it takes seconds."""
    from mnist_cnn import rundir

    for model in models:
        rundir.model_path(model, rundir.MODEL_SUFFIXES)
    if "keras" not in sys.modules:
        log.info("loading TensorFlow ...")
    import_keras(intra_op_threads=intra_op_threads)
