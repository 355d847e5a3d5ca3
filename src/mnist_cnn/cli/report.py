"""`mnist-cnn report`: a run's report.html written (again)."""

from __future__ import annotations

from mnist_cnn.cli.common import (
    PROG,
    add_command,
    add_data_dir_option,
    load_keras,
    print_json,
)


def run(args) -> None:
    load_keras(args.run)
    from mnist_cnn.reporting.report import write_report

    path = write_report(args.run, args.data_dir, args.out)
    if args.json:
        print_json({"report": str(path)})
    else:
        print(f"report: {path}")


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "report",
        "write RUN_DIR/report.html: settings, curves, metrics, errors, calibration, filters",
        f"{PROG} report runs/fast-20261121-101500",
        run,
    )
    p.add_argument("run", metavar="RUN_DIR|MODEL")
    p.add_argument(
        "--out", help="the page (default: RUN_DIR/report.html, or MODEL.report.html beside it)"
    )
    add_data_dir_option(p)
