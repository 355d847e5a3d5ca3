"""`mnist-cnn compare`: runs side by side, a table here and a page with curves."""

from __future__ import annotations

from mnist_cnn.cli.common import (
    PROG,
    add_command,
    add_data_dir_option,
    load_keras,
    print_json,
)


def run(args) -> None:
    load_keras(*args.runs)
    from mnist_cnn.reporting.compare import compare_runs, format_table

    comparison = compare_runs(args.runs, args.out, args.data_dir)
    if args.json:
        print_json(comparison.summary())
    else:
        print(format_table(comparison))
        print(f"compare page: {comparison.page}")


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "compare",
        "compare runs: a table here, and an HTML page with curves and disagreements",
        f"{PROG} compare runs/fast-20261121-101500 runs/keras-example-20261121-102000",
        run,
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR|MODEL")
    p.set_defaults(trailing="runs")  # more runs may follow the flags
    p.add_argument("--out", default="compare.html", help="the page (default: compare.html)")
    add_data_dir_option(p)
