"""`mnist-cnn sweep`: many variants of a train command on Ray, ranked on validation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_cnn.cli.common import (
    PROG,
    Interrupted,
    Parser,
    UsageError,
    add_address_option,
    add_command,
    load_keras,
    print_json,
)
from mnist_cnn.cli.train import (
    add_network_options,
    check_train_flags,
    given_train_flags,
    train_fields,
)

UNSWEPT = {"out", "data_dir", "resume", "set", "samples", "scheduler", "address", "json", "track"}


EACH_WHOLE = {"arch", "augmentation"}  # values hold commas: one per --set


def _sweep_values(sets: list[str], samples: int | None) -> dict:
    """--set FLAG=V1,V2 (or LOW:HIGH) flags, each value read as `train` reads the flag."""
    from mnist_cnn.models import settings
    from mnist_cnn.scale.sweep import Range

    parser = Parser(prog=f"{PROG} sweep", add_help=False)
    add_network_options(parser)
    actions = {"model": next(a for a in parser._actions if a.dest == "model")}
    actions.update(
        (option[2:], action)
        for action in parser._actions
        for option in action.option_strings
        if action.dest not in UNSWEPT and not option.startswith("--no-")
    )
    by_key = {action.dest: action for action in actions.values()}  # config.json's keys too

    def read(action, text: str):
        if isinstance(action, argparse.BooleanOptionalAction):
            if text.lower() not in ("true", "false", "yes", "no", "on", "off"):
                raise UsageError(f"--set {action.dest.replace('_', '-')}: give true or false")
            return text.lower() in ("true", "yes", "on")
        argv = [text] if action.dest == "model" else [action.option_strings[0], text]
        return getattr(parser.parse_args(argv), action.dest)

    values: dict = {}
    for item in sets:
        key, equals, text = item.partition("=")
        action = actions.get(key.strip().removeprefix("--")) or by_key.get(settings.key_of(key))
        if not equals or action is None or not text.strip():
            known = ", ".join(sorted(actions))
            raise UsageError(f"--set {item!r}: give FLAG=V1,V2,... with FLAG one of: {known}")
        field = action.dest
        numeric = action.type in (int, float)
        if numeric and ":" in text:
            low, _, high = text.partition(":")
            low, high = read(action, low.strip()), read(action, high.strip())
            if samples is None:
                raise UsageError(f"--set {item}: a LOW:HIGH range needs --samples N")
            if not low < high:
                raise UsageError(f"--set {item}: LOW must be below HIGH")
            values[field] = Range(low, high)
            continue
        parts = [text] if field in EACH_WHOLE else text.split(",")
        given = values.setdefault(field, [])
        if isinstance(given, Range):
            raise UsageError(f"--set {item}: {key} is already a range")
        given += [read(action, part.strip()) for part in parts if part.strip()]
    return {k: list(dict.fromkeys(v)) if isinstance(v, list) else v for k, v in values.items()}


def run(args) -> None:
    from mnist_cnn.scale import cluster

    cluster.check_ready(args.address)
    from mnist_cnn.reporting import sweep_page
    from mnist_cnn.scale import sweep

    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    try:
        if args.resume:
            given = given_train_flags(args)
            given += ["--set"] * bool(args.set) + ["NAME"] * bool(args.model)
            if given:
                raise UsageError(
                    f"--resume takes up a sweep with its own plan; give no {', '.join(given)}"
                )
            load_keras()
            record = sweep.resume_sweep(args.resume, args.address, say)
        else:
            plan, out, name = _sweep_plan(args)
            record = sweep.run_sweep(plan, out, args.address, name, say)
    except sweep.SweepInterrupted as exc:
        print(f"{PROG} sweep: {exc}", file=sys.stderr, flush=True)
        raise Interrupted() from None
    if record.get("tracking"):  # MLflow stopped answering: the sweep is whole, its copy is not
        print(f"{PROG} sweep: warning: {record['tracking']}", file=sys.stderr, flush=True)
    if args.json:
        keys = ("sweep_dir", "status", "trials", "selected", "selected_by")
        print_json({key: record[key] for key in keys})
        return
    from mnist_cnn.models.settings import flag_name

    fields = list(record["plan"]["values"])
    print(
        f"{'rank':>4}  {'trial':<12} "
        + " ".join(f"{flag_name(f):>14}" for f in fields)
        + f" {'validation':>10}  status"
    )
    for rank, trial in enumerate(record["trials"], 1):
        shown = " ".join(f"{_short(f, trial['settings'].get(f)):>14}" for f in fields)
        accuracy = trial["val_accuracy"]
        print(
            f"{rank:>4}  {trial['trial_id']:<12} {shown} "
            f"{'-' if accuracy is None else f'{accuracy:.2%}':>10}  {trial['status']}"
        )
    selected = record["selected"]
    print(
        f"selected (on validation): {selected['trial_id']}, validation "
        f"{selected['val_accuracy']:.2%}; test accuracy, read once: {selected['test_accuracy']:.2%}"
    )
    print(f"selected run: {selected['run_dir']}")
    print(f"sweep page: {Path(record['sweep_dir']) / sweep_page.PAGE}")


def _short(key: str, value) -> str:
    from mnist_cnn.models.settings import shown_value

    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else shown_value(key, value)
    return text if len(text) <= 14 else text[:13] + "…"


def _sweep_plan(args):
    """The plan (sweep.Plan), where to write it, and its name, from the command line."""
    from mnist_cnn.scale import sweep
    from mnist_cnn.scale.sweep import Plan

    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples must be at least 1, got {args.samples}")
    if not 1 <= args.cpus_per_trial <= 256:
        raise UsageError(f"--cpus-per-trial must be 1 to 256, got {args.cpus_per_trial}")
    values = _sweep_values(args.set, args.samples)
    if not values:
        raise UsageError("give the settings to sweep: --set FLAG=V1,V2,... (any train flag)")
    base = train_fields(args)
    if not any(base.get(k) or k in values for k in ("model", "arch", "init")):
        raise UsageError("give a model name, --arch or --init (fixed, or with --set)")
    check_train_flags(args)
    for text in values.get("arch", []):
        check_train_flags(argparse.Namespace(**{**vars(args), "arch": text}))
    load_keras()
    plan = Plan(
        sweep.absolute_paths(base), values, args.samples, args.scheduler, args.cpus_per_trial
    )
    name = args.model or ("models" if "model" in values else args.name or "custom")
    return plan, args.out, name


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "sweep",
        "train many variants at once on Ray (a grid or random samples of any train flags), "
        "rank them on validation, and test the best once",
        f"{PROG} sweep conv32-conv64-dropout --set learning-rate=0.0003,0.001,0.003 "
        f"--set batch-size=32,128 --epochs 5\n"
        f"  {PROG} sweep keras-example --set learning-rate=0.0001:0.01 "
        f"--set batch-size=32:256 --samples 8 --scheduler asha --epochs 6\n"
        f"  {PROG} sweep --resume runs/sweep-keras-example-20261122-101500",
        run,
    )
    add_network_options(p)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FLAG=V1,V2,...",
        help="a train flag to sweep (repeat for more): its values, or LOW:HIGH with --samples; "
        "for arch and augment one value per --set (repeat the flag for more)",
    )
    p.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="sample N trials at random (ranges log-uniform for rates) instead of the grid",
    )
    p.add_argument("--scheduler", choices=["asha"], help="stop poor trials early (Tune's ASHA)")
    p.add_argument(
        "--cpus-per-trial", type=int, default=1, metavar="N", help="CPUs each trial holds"
    )
    p.add_argument(
        "--resume",
        metavar="SWEEP_DIR",
        help="take up a sweep that was stopped or whose driver died",
    )
    p.add_argument(
        "--out",
        default="runs",
        help="where the sweep's folder goes (default: runs/); on a "
        "cluster, storage that every node sees",
    )
    add_address_option(p, "run on this Ray cluster (default: an embedded Ray on this machine)")
