"""The `mnist-cnn` command: the top parser, which registers each command's own module,
and `main`, which runs one and turns its errors into one line and an exit code.

Exit codes: 0 success, 2 bad usage or input, 1 anything else. Errors are one line on
stderr; `--debug` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from mnist_cnn.cli import (
    compare,
    data,
    evaluate,
    export,
    models,
    predict,
    report,
    robustness,
    serve,
    sweep,
    train,
)
from mnist_cnn.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Interrupted,
    Parser,
    PartialFailure,
    input_errors,
)
from mnist_cnn.errors import first_line

COMMANDS = (models, train, sweep, evaluate, predict, report, robustness, compare, export, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Train, understand and use CNNs on handwritten digits.",
        epilog=f"example:\n  {PROG} train keras-example",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and backend logs")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    data.add_parser(sub)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read as people write it: files may follow the flags too
    (`predict RUN --multi a.png b.png`), which argparse alone leaves over."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        listed = getattr(args, "trailing", None)
        if listed is None or any(word.startswith("-") for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, listed, [*getattr(args, listed), *extra])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.debug:
        os.environ["MNIST_CNN_DEBUG"] = "1"
    waits = _say_before_waits(args)
    try:
        args.func(args)
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Interrupted:
        return EXIT_INTERRUPTED
    except PartialFailure:
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`| head`): as a shell tool, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        code = EXIT_USAGE if isinstance(exc, input_errors()) else EXIT_FAILURE
        message = first_line(exc)
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return code
    finally:
        if waits is not None:
            logging.getLogger("mnist_cnn").removeHandler(waits)


def _say_before_waits(args) -> logging.Handler | None:
    """The package logs a line (INFO, logger "mnist_cnn") before each wait of seconds with
    nothing else to show: loading TensorFlow, building the robustness suite, testing and
    writing the report. The command shows them on stderr, except under --json."""
    if getattr(args, "json", False):
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    logger = logging.getLogger("mnist_cnn")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def run() -> None:
    """The `mnist-cnn` program: `main`, then exit. After a command that loaded TensorFlow
    (and no Ray), without Python's and TensorFlow's teardown: about 1 s of the user's wait
    (measured: 1.0 to 1.1 s from the last line printed to the shell's prompt). Every file is
    written, renamed and closed by then, and the output is flushed here."""
    code = main()
    if "tensorflow" in sys.modules and "ray" not in sys.modules:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a reader that went away (`| head`): nothing more can be said
            pass
        os._exit(code)
    sys.exit(code)
