"""The `mnist-cnn` command: parse arguments, call the API, print. No logic of its own.

Exit codes: 0 success, 2 bad usage or input, 1 anything else. Errors are one line on
stderr; `--debug` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from mnist_cnn.data import datasets, sources
from mnist_cnn.errors import first_line
from mnist_cnn.rundir import RunError

PROG = "mnist-cnn"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell tool cut off by `| head` returns


class UsageError(Exception):
    """Arguments that parse but do not make sense together."""


class Interrupted(Exception):
    """Stopped by Ctrl-C after saving what can be resumed; the message is already printed."""


# Errors that mean "your input is wrong" (exit 2) rather than "we failed" (exit 1), by the
# module that defines them; a module not yet imported cannot have raised its error.
INPUT_ERRORS = {
    "mnist_cnn.models.catalogue": "UnknownModelError",
    "mnist_cnn.training.train": "TrainingError",
    "mnist_cnn.data.imaging": "ImageError",
    "mnist_cnn.models.layer_list": "LayerListError",
    "mnist_cnn.models.architecture": "ArchitectureError",
    "mnist_cnn.scale.cluster": "ClusterError",
    "mnist_cnn.scale.sweep": "SweepError",
}
# mnist_cnn.export's ExportError is not here: a failed export is our failure (exit 1).


def _input_errors() -> tuple[type[Exception], ...]:
    loaded = [getattr(sys.modules[m], name) for m, name in INPUT_ERRORS.items() if m in sys.modules]
    return (UsageError, datasets.DatasetError, RunError, *loaded)


def _keras(intra_op_threads: int | None = None):
    """Import the backend quietly before any module that needs it."""
    from mnist_cnn.backend import import_keras

    return import_keras(intra_op_threads=intra_op_threads)


def _print_json(obj) -> None:
    print(json.dumps(obj), flush=True)


# --- data ----------------------------------------------------------------------------------


def cmd_data_download(args) -> None:
    folder = datasets.ensure_dataset(args.dataset, args.data_dir)
    if args.json:
        _print_json({"dataset": args.dataset, "folder": str(folder)})
    else:
        print(f"{args.dataset}: four verified files in {folder}")


def cmd_data_info(args) -> None:
    from mnist_cnn.data.sources import load_parts

    classes = datasets.class_names(args.dataset) or datasets.DIGITS
    parts, folder = load_parts(args.dataset, args.data_dir)
    train, test = parts["train"], parts["test"]
    info = {
        "dataset": args.dataset,
        "folder": str(datasets.dataset_dir(args.dataset, args.data_dir)),
        "image_shape": list(train.images.shape[1:]),
        "dtype": str(train.images.dtype),
        "train": {"count": len(train.labels), "per_class": _per_class(train.labels)},
        "test": {"count": len(test.labels), "per_class": _per_class(test.labels)},
    }
    if folder is not None:
        info.update(split=folder.split, skipped=folder.describe()["skipped"])
    if args.json:
        _print_json(info)
        return
    print(args.dataset if folder is not None else f"{args.dataset} in {info['folder']}")
    print(
        f"images: {'x'.join(map(str, info['image_shape']))} {info['dtype']}, "
        f"train {info['train']['count']}, test {info['test']['count']}"
    )
    if folder is not None:
        print(f"split: {folder.split}")
        _print_skipped(folder.skipped)
    print(f"{'class':>14}  {'train':>6} {'share':>6}   {'test':>5} {'share':>6}")
    for c, name in enumerate(classes):
        tr, te = info["train"]["per_class"][c], info["test"]["per_class"][c]
        label = f"{c} {name}" if name != str(c) else str(c)
        share_tr = tr / max(1, info["train"]["count"])
        share_te = te / max(1, info["test"]["count"])
        print(f"{label:>14}  {tr:>6} {share_tr:>6.1%}   {te:>5} {share_te:>6.1%}")


def _per_class(labels) -> list[int]:
    import numpy as np

    return np.bincount(labels, minlength=10).tolist()


def _print_skipped(skipped: list[tuple[str, str]]) -> None:
    """Every file a folder dataset could not use, named on stderr, and their count."""
    for file, why in skipped:
        print(f"{PROG}: skipped {file}: {why}", file=sys.stderr)
    if skipped:
        print(f"skipped: {len(skipped)} file(s) that could not be read (named on stderr)")


def cmd_data_show(args) -> None:
    import numpy as np

    from mnist_cnn.reporting import pictures

    (x_train, y_train), (x_test, y_test) = sources.load_dataset(args.dataset, args.data_dir)
    images, labels = (x_train, y_train) if args.split == "train" else (x_test, y_test)
    if not len(images):
        raise UsageError(f"{args.dataset} has no {args.split} images")
    picks = np.random.default_rng(args.seed).choice(len(images), min(16, len(images)), False)
    out = Path(args.out)
    pictures.sample_grid(images[picks], labels[picks], out, datasets.class_names(args.dataset))
    if args.json:
        _print_json({"path": str(out), "indices": picks.tolist()})
    else:
        print(f"saved {len(picks)} {args.split} samples to {out}")


# --- models, train, evaluate, predict ------------------------------------------------------


def cmd_models(args) -> None:
    if args.name or args.arch is not None:
        _show_network(args)
        return
    from mnist_cnn.models import (
        catalogue,  # the listing is data: no Keras (answers in a fraction of a second)
    )

    rows = [
        {**entry.describe(), "parameters": entry.parameters} for entry in catalogue.ENTRIES.values()
    ]
    if args.json:
        _print_json(rows)
        return
    header = f"{'name':<24} {'params':>8} {'epochs':>6} {'batch':>5} {'loss':<11} "
    print(header + f"{'validation':<45} published")
    for row in rows:
        recipe = row["recipe"]
        print(
            f"{row['name']:<24} {row['parameters']:>8,} {recipe['epochs']:>6} "
            f"{recipe['batch_size']:>5} {recipe['loss']:<11} {row['validation']:<45} "
            f"{row['published']}"
        )
    print("\nValidation never uses the test set; where a tutorial did, a split of train stands in.")
    print("'mnist-cnn models NAME' shows a network layer by layer; --arch LAYERS shows yours.")


def _show_network(args) -> None:
    """One network layer by layer, a catalogue entry's or a pasted list's, without training."""
    from mnist_cnn.models import layer_list

    if args.arch is not None and layer_list.python_file(args.arch) is None:
        layer_list.parse(args.arch)  # a bad list is answered before Keras loads
    _keras()
    from mnist_cnn.models import architecture
    from mnist_cnn.models.settings import as_flags

    entry = architecture.entry_for(args.name, args.arch)
    model = entry.build()
    shown = {
        **entry.describe(),
        "parameters": int(model.count_params()),
        "layers": architecture.describe_layers(model),
    }
    if args.json:
        _print_json(shown)
        return
    print(f"{entry.name}: {entry.summary}")
    print(f"{'layer':<22} {'output shape':<18} {'parameters':>10}")
    for row in shown["layers"]:
        shape = "(" + ", ".join(map(str, row["output_shape"])) + ")"
        print(f"{row['layer']:<22} {shape:<18} {row['parameters']:>10,}")
    print(f"{'total':<41} {shown['parameters']:>10,}")
    print(f"trains with (change any of these flags): {as_flags(shown['recipe'])}")


RUN_FLAGS = {  # train's flags beyond the recipe: flag -> TrainConfig field
    "--arch": "arch",
    "--init": "init",
    "--name": "name",
    "--seed": "seed",
    "--limit": "limit",
    "--ensemble": "ensemble",
    "--mix-mnist": "mix_mnist",
}


def _check_train_flags(args) -> None:
    """What can be checked without Keras is answered at once: a bad value, a bad layer list."""
    from mnist_cnn.models import layer_list
    from mnist_cnn.models.settings import RECIPE_FIELDS, SettingsError, check_changes

    try:
        check_changes({field: getattr(args, field) for field in RECIPE_FIELDS})
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if args.arch is not None and layer_list.python_file(args.arch) is None:
        layer_list.parse(args.arch)


def _train_fields(args) -> dict:
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
    }


def _given_train_flags(args) -> list[str]:
    """The train flags given on the command line (which --resume refuses)."""
    from mnist_cnn.models.settings import RECIPE_FIELDS, flag

    given = [flag(field) for field in RECIPE_FIELDS if getattr(args, field) is not None]
    return given + [name for name, field in RUN_FLAGS.items() if getattr(args, field) is not None]


def cmd_train(args) -> None:
    given = _given_train_flags(args)
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
    _check_train_flags(args)
    runner = _cluster_members(args)
    _keras()
    from mnist_cnn.training.train import TrainingInterrupted

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
    summary = result.summary()
    if args.json:
        _print_json(summary)
        return
    if result.data is not None:
        data = result.data
        print(
            f"data: {data['folder']}: {data['train']} training and {data['test']} test images "
            f"({data['split']})"
        )
        _print_skipped([(row["file"], row["error"]) for row in data["skipped"]])
    print(
        f"test accuracy: {summary['test_accuracy']:.2%}  test loss: {summary['test_loss']:.4f}"
        f"  fit: {summary['train_seconds']:.1f} s"
    )
    print(f"run directory: {summary['run_dir']}")


def _train_or_resume(args, verbose, member_runner):
    from mnist_cnn.training.train import TrainConfig, resume, train

    if args.resume:
        return resume(args.resume, verbose=verbose, member_runner=member_runner)
    config = TrainConfig(**_train_fields(args), verbose=verbose)
    return train(config, member_runner=member_runner)


def _cluster_members(args):
    """With --address (or $RAY_ADDRESS), an ensemble's members train side by side on Ray:
    a context that yields the member runner; else None."""
    from mnist_cnn import rundir
    from mnist_cnn.scale import cluster

    address = cluster.address_or_default(args.address)
    if address is None:
        return None
    if args.resume:
        recorded = rundir.read_json(Path(args.resume) / rundir.CONFIG)
        settings = recorded.get("settings", {})
        ensemble, dataset = settings.get("ensemble"), settings.get("dataset", "mnist")
        data_dir, out = recorded.get("data_dir"), Path(args.resume).resolve().parent
    else:
        ensemble, dataset, data_dir, out = args.ensemble, args.dataset, args.data_dir, args.out
    if not ensemble or ensemble < 2:
        if args.address:
            raise UsageError("--address trains an ensemble's members on Ray; add --ensemble K")
        return None  # $RAY_ADDRESS set, but there is nothing to spread
    _ray_first(address)
    return cluster.members_on(address, dataset, data_dir, Path(out).resolve())


# --- sweep ---------------------------------------------------------------------------------

UNSWEPT = {"out", "data_dir", "resume", "set", "samples", "scheduler", "address", "json"}
EACH_WHOLE = {"arch", "augmentation"}  # values hold commas: one per --set


def _sweep_values(sets: list[str], samples: int | None) -> dict:
    """--set FLAG=V1,V2 (or LOW:HIGH) flags, each value read as `train` reads the flag."""
    from mnist_cnn.scale.sweep import Range

    parser = _Parser(prog=f"{PROG} sweep", add_help=False)
    _add_network_options(parser)
    actions = {"model": next(a for a in parser._actions if a.dest == "model")}
    actions.update(
        (option[2:], action)
        for action in parser._actions
        for option in action.option_strings
        if action.dest not in UNSWEPT and not option.startswith("--no-")
    )

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
        action = actions.get(key.strip().removeprefix("--"))
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


def _absolute(fields: dict) -> dict:
    """Paths in train settings made absolute: trials run elsewhere, in other folders."""
    from mnist_cnn.models import layer_list

    fields = dict(fields)
    for key in ("data_dir", "init", "out"):
        if fields.get(key):
            fields[key] = str(Path(fields[key]).expanduser().resolve())
    python = fields.get("arch") and layer_list.python_file(fields["arch"])
    if python:
        fields["arch"] = f"{Path(python[0]).expanduser().resolve()}:{python[1]}"
    return fields


def _ray_first(address: str | None) -> None:
    """A missing extra or an address that does not answer: one line now, before Keras loads."""
    from mnist_cnn.scale import cluster

    address = cluster.address_or_default(address)
    cluster.import_ray(embedded=address is None)
    if address:
        cluster.probe(address)


def cmd_sweep(args) -> None:
    _ray_first(args.address)
    from mnist_cnn.reporting import sweep_page
    from mnist_cnn.scale import sweep

    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    try:
        if args.resume:
            given = _given_train_flags(args)
            given += ["--set"] * bool(args.set) + ["NAME"] * bool(args.model)
            if given:
                raise UsageError(
                    f"--resume takes up a sweep with its own plan; give no {', '.join(given)}"
                )
            _keras()
            record = sweep.resume_sweep(args.resume, args.address, say)
        else:
            plan, out, name = _sweep_plan(args)
            record = sweep.run_sweep(plan, out, args.address, name, say)
    except sweep.SweepInterrupted as exc:
        print(f"{PROG} sweep: {exc}", file=sys.stderr, flush=True)
        raise Interrupted() from None
    if args.json:
        keys = ("sweep_dir", "status", "trials", "selected", "selected_by")
        _print_json({key: record[key] for key in keys})
        return
    fields = list(record["plan"]["values"])
    print(
        f"{'rank':>4}  {'trial':<12} "
        + " ".join(f"{f.replace('_', '-'):>14}" for f in fields)
        + f" {'validation':>10}  status"
    )
    for rank, trial in enumerate(record["trials"], 1):
        shown = " ".join(f"{_short(trial['settings'].get(f)):>14}" for f in fields)
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


def _short(value) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 14 else text[:13] + "…"


def _sweep_plan(args):
    """The plan (sweep.Plan), where to write it, and its name, from the command line."""
    from mnist_cnn.scale.sweep import Plan

    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples must be at least 1, got {args.samples}")
    if not 1 <= args.cpus_per_trial <= 256:
        raise UsageError(f"--cpus-per-trial must be 1 to 256, got {args.cpus_per_trial}")
    values = _sweep_values(args.set, args.samples)
    if not values:
        raise UsageError("give the settings to sweep: --set FLAG=V1,V2,... (any train flag)")
    base = _train_fields(args)
    if not any(base.get(k) or k in values for k in ("model", "arch", "init")):
        raise UsageError("give a model name, --arch or --init (fixed, or with --set)")
    _check_train_flags(args)
    for text in values.get("arch", []):
        _check_train_flags(argparse.Namespace(**{**vars(args), "arch": text}))
    _keras()
    plan = Plan(_absolute(base), values, args.samples, args.scheduler, args.cpus_per_trial)
    name = args.model or ("models" if "model" in values else args.name or "custom")
    return plan, args.out, name


def _dataset_for(args) -> str:
    """The dataset a model was trained on (from its run), unless --dataset says otherwise."""
    from mnist_cnn import rundir

    return args.dataset or rundir.dataset_of(args.model)


def cmd_evaluate(args) -> None:
    _keras()
    from mnist_cnn import evaluation
    from mnist_cnn.data.sources import load_parts, split_of
    from mnist_cnn.inference.classifier import Classifier

    classifier = Classifier(args.model)
    dataset = _dataset_for(args)
    parts, folder = load_parts(dataset, args.data_dir)
    part = split_of(parts, args.split)
    if not len(part.labels):
        raise UsageError(f"{dataset} has no {args.split} images; try --split all")
    probabilities = classifier.probabilities(part.images)
    metrics = evaluation.evaluate(probabilities, part.labels)
    wrong = evaluation.wrong_files(probabilities, part.labels, part.files)
    if args.json:
        extra = {} if folder is None else {"wrong": wrong, **folder.describe()}
        _print_json(
            {"model": str(classifier.path), "dataset": dataset, "split": args.split}
            | metrics
            | extra
        )
        return
    where = "" if folder is None else f" ({len(part.labels)} images; {folder.split})"
    print(f"{classifier.path} on the {dataset} {args.split} set{where}")
    if folder is not None:
        _print_skipped(folder.skipped)
    print(evaluation.format_metrics(metrics))
    if wrong:
        print(f"\nread wrong ({len(wrong)}):")
        for row in wrong:
            article = "an" if row["label"] == 8 else "a"
            print(
                f"  {row['file']}: {article} {row['label']} read as {row['predicted']} "
                f"(p={row['confidence']:.3f})"
            )


def cmd_predict(args) -> None:
    if bool(args.index) == bool(args.inputs):
        raise UsageError(
            "give image files, folders, globs or - (stdin), or test-set digits with --index N"
            if not args.index
            else "give either image files or --index, not both"
        )
    if not 0.0 <= args.min_confidence <= 1.0:
        raise UsageError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    if not 1 <= args.top_k <= 10:
        raise UsageError(f"--top-k must be between 1 and 10, got {args.top_k}")
    from mnist_cnn.scale.cluster import address_or_default

    address = address_or_default(args.address)
    local_only = args.index or args.multi or args.show or "-" in args.inputs
    if args.address and local_only:
        raise UsageError(
            "--address reads image files and folders; not --index, --multi, --show or -"
        )
    if address and not local_only:
        _ray_first(address)
        all_read = _predict_on_cluster(args, address)
    else:
        if not str(args.model).endswith(".onnx"):  # ONNX Runtime needs no Keras
            _keras(intra_op_threads=1)  # latency-bound: see backend.import_keras
        if args.index:
            _predict_test_digits(args)
            return
        all_read = _predict_files(args)
    if not all_read:
        raise PartialFailure()


def _predict_on_cluster(args, address: str) -> bool:
    """Many files, read by Ray Data across the cluster; the same answers, in the same order."""
    from mnist_cnn import rundir
    from mnist_cnn.inference.classifier import answer, image_files
    from mnist_cnn.scale import cluster

    model = rundir.model_path(args.model, rundir.MODEL_SUFFIXES)
    items = image_files(args.inputs)
    with cluster.connected(address):
        cluster.check_nodes(None, None, None, see=[model, *items[:1]])
        read = cluster.read_files(model, items)
    all_read = True
    for item, (probabilities, error) in zip(items, read, strict=True):
        if probabilities is None:
            all_read = False
            _input_error(args, str(item), error)
        else:
            _print_answer(args, str(item), answer(probabilities, args.top_k, args.min_confidence))
    return all_read


def _input_error(args, name: str, error) -> None:
    """One input's error (an imaging.ImageError, or its reason): a JSON line, or one line on
    stderr; the other inputs go on."""
    message = error if isinstance(error, str) else error.reason(name)
    if args.json:
        _print_json({"file": name, "error": message})
    else:
        print(f"{PROG} predict: {name}: error: {message}", file=sys.stderr)


def _predict_numbers(args, classifier, sources, names) -> bool:
    """--multi: each input is a row of digits; answer the number it spells."""
    from mnist_cnn.data.imaging import ImageError

    all_read = True
    for source, name in zip(sources, names, strict=True):
        try:
            result = {"file": name, **classifier.predict_number(source, name)}
        except ImageError as exc:
            all_read = False
            _input_error(args, name, exc)
            continue
        if args.json:
            _print_json(result)
        else:
            each = ", ".join(f"{d['digit']}: {d['confidence']:.3f}" for d in result["digits"])
            flag = "  (unsure)" if result["unsure"] else ""
            print(f"{name}: {result['number']}  p={result['confidence']:.3f}  [{each}]{flag}")
    return all_read


class PartialFailure(Exception):
    """Some inputs could not be read; each already has its own error line."""


def _predict_test_digits(args) -> None:
    from mnist_cnn.inference.classifier import Classifier
    from mnist_cnn.reporting import pictures

    classifier = Classifier(args.model)
    _, (x_test, y_test) = sources.load_dataset(_dataset_for(args), args.data_dir)
    bad = [i for i in args.index if not 0 <= i < len(x_test)]
    if bad:
        raise UsageError(f"--index {bad[0]} is outside the test set (0..{len(x_test) - 1})")
    out = Path(args.out) if args.out else classifier.path.parent / "predictions"
    probabilities = classifier.probabilities(x_test[args.index])
    for index, probs in zip(args.index, probabilities, strict=True):
        digit = int(probs.argmax())
        path = out / f"test-{index}.png"
        pictures.digit_prediction(
            x_test[index], digit, float(probs[digit]), path, int(y_test[index])
        )
        result = {
            "index": index,
            "label": int(y_test[index]),
            "digit": digit,
            "confidence": float(probs[digit]),
            "probabilities": [round(float(p), 6) for p in probs],
            "image": str(path),
        }
        if args.json:
            _print_json(result)
        else:
            mark = "right" if digit == result["label"] else "WRONG"
            print(
                f"test[{index}]: true {result['label']}, predicted {digit} "
                f"(p={result['confidence']:.4f}) {mark}  -> {path}"
            )


def _predict_files(args) -> bool:
    """Answer every input in one batch; a bad input gets its own error line. True if all read."""
    from PIL import Image

    from mnist_cnn.atomic import atomic_write
    from mnist_cnn.inference.classifier import Classifier, image_files

    classifier = Classifier(
        args.model, min_confidence=args.min_confidence, top_k=args.top_k, threads=1
    )
    items = image_files(args.inputs)
    sources = [sys.stdin.buffer.read() if item == "-" else item for item in items]
    names = ["-" if item == "-" else str(item) for item in items]
    if args.multi:
        return _predict_numbers(args, classifier, sources, names)
    all_read = True
    for name, (prepared, answer) in zip(
        names, classifier.predict_images(sources, names), strict=True
    ):
        if answer is None:
            all_read = False
            _input_error(args, name, prepared)
            continue
        shown = None
        if args.show:
            stem = "stdin" if name == "-" else Path(name).stem
            shown = Path(args.out or "predictions") / f"{stem}.mnist.png"
            atomic_write(shown, lambda tmp, image=prepared.image: Image.fromarray(image).save(tmp))
        _print_answer(args, name, answer, shown)
    return all_read


def _print_answer(args, name: str, answer, shown: Path | None = None) -> None:
    """One file's answer: a JSON line, or `NAME: DIGIT  p=...  [top k]`."""
    result = {"file": name, **answer.to_dict()}
    if shown is not None:
        result["show"] = str(shown)
    if args.json:
        _print_json(result)
    else:
        verdict = f"unsure (best guess {answer.digit})" if answer.unsure else answer.digit
        ranked = ", ".join(f"{d}: {p:.3f}" for d, p in answer.top_k)
        extra = f"  -> {shown}" if shown is not None else ""
        print(f"{name}: {verdict}  p={answer.confidence:.3f}  [{ranked}]{extra}")


# --- report and compare --------------------------------------------------------------------


def cmd_report(args) -> None:
    _keras()
    from mnist_cnn.reporting.report import write_report

    path = write_report(args.run, args.data_dir, args.out)
    if args.json:
        _print_json({"report": str(path)})
    else:
        print(f"report: {path}")


def cmd_robustness(args) -> None:
    _keras()
    from mnist_cnn import evaluation, rundir
    from mnist_cnn.inference.classifier import Classifier
    from mnist_cnn.reporting import robustness

    if args.per_change < 1:
        raise UsageError(f"--per-change {args.per_change}: give at least 1 digit per change")
    dataset = rundir.dataset_of(args.run)
    if dataset != "mnist":
        raise UsageError(
            f"{args.run} was trained on {dataset}; the robustness suite changes MNIST digits"
        )
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
        _print_json({"model": str(classifier.path)} | results)
        return
    print(
        f"{classifier.path}: {results['per_change']} MNIST test digits per change "
        f"(seed {args.seed}), each drawn on a page and read back as predict reads it"
    )
    print(robustness.table(results))


def cmd_compare(args) -> None:
    _keras()
    from mnist_cnn.reporting.compare import compare_runs, format_table

    comparison = compare_runs(args.runs, args.out, args.data_dir)
    if args.json:
        _print_json(comparison.summary())
    else:
        print(format_table(comparison))
        print(f"compare page: {comparison.page}")


# --- export --------------------------------------------------------------------------------


def cmd_export(args) -> None:
    _keras()
    from mnist_cnn.inference.export import export_model

    target, parity = export_model(args.model, args.format, args.out, args.data_dir)
    if args.json:
        _print_json({"format": args.format, "path": str(target), "parity": parity.to_dict()})
        return
    print(
        f"parity on {parity.digits:,} test digits: max probability difference "
        f"{parity.max_difference:.2e} (allowed 1e-04), {parity.disagreements} digits differ"
    )
    if parity.trained_max_difference is not None:
        print(
            f"  (float32 export against the mixed-precision model as trained: "
            f"{parity.trained_max_difference:.2e}, {parity.trained_disagreements} digits differ)"
        )
    print(f"exported {args.format}: {target}")


# --- serve ---------------------------------------------------------------------------------


def cmd_serve(args) -> None:
    if not 0 < args.max_body_mb <= 1024:
        raise UsageError(f"--max-body-mb must be between 0 and 1024, got {args.max_body_mb}")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise UsageError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers must be between 1 and 64, got {args.workers}")
    if args.workers > 1 and args.port == 0:
        raise UsageError("--port 0 (any free port) works with one worker only")
    from mnist_cnn import rundir

    model = rundir.model_path(args.model or rundir.newest_run(args.runs), rundir.MODEL_SUFFIXES)
    if model.suffix != ".onnx":
        _keras(intra_op_threads=1)  # requests run side by side, one core each
    from mnist_cnn.server import serve

    print(f"serving {model} at http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    serve(
        model,
        args.host,
        args.port,
        max_body=int(args.max_body_mb * 1024 * 1024),
        min_confidence=args.min_confidence,
        workers=args.workers,
    )


# --- parser --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command and how to get help."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _dataset(text: str) -> str:
    try:
        return datasets.dataset_name(text)
    except datasets.DatasetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_data_options(parser, default_dataset: str | None = "mnist", folders: bool = True) -> None:
    names = ", ".join(datasets.DATASETS) + (", or folder:PATH (your own images)" if folders else "")
    parser.add_argument(
        "--dataset",
        default=default_dataset,
        type=_dataset if folders else str,
        choices=None if folders else list(datasets.DATASETS),
        metavar="NAME" if folders else None,
        help=f"{names} (default: {default_dataset or 'the one the run used'})",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"data folder (default: ${datasets.DATA_ENV} or ~/.cache/mnist-cnn)",
    )


def _add_recipe_options(parser) -> None:
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


def _add_network_options(parser) -> None:
    """What to train and how: train's flags, which sweep takes too (fixed, or --set)."""
    parser.add_argument(
        "model", nargs="?", metavar="NAME", help="catalogue name (see 'mnist-cnn models')"
    )
    parser.add_argument(
        "--arch",
        metavar="LAYERS|FILE.py",
        help="your network instead: a Keras layer list as tutorials write it (read, never run "
        "as Python), or FILE.py[:FUNCTION] whose function (default build) returns a keras.Model",
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
    _add_data_options(parser)
    _add_recipe_options(parser)


def _add_address_option(parser, what: str) -> None:
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help=f"{what}: Ray's address (auto, HOST:PORT or ray://HOST:10001; default "
        "$RAY_ADDRESS); needs mnist-cnn[cluster]",
    )


def _command(sub, name: str, help_text: str, example: str, func):
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Train, understand and use CNNs on handwritten digits.",
        epilog=f"example:\n  {PROG} train keras-example",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and backend logs")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    data = sub.add_parser(
        "data",
        help="download, describe and show datasets",
        description="download, describe and show datasets",
    )
    data_sub = data.add_subparsers(
        dest="data_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    p = _command(
        data_sub,
        "download",
        "fetch and verify a dataset into the cache",
        f"{PROG} data download --dataset fashion-mnist",
        cmd_data_download,
    )
    _add_data_options(p, folders=False)
    p = _command(data_sub, "info", "counts and class balance", f"{PROG} data info", cmd_data_info)
    _add_data_options(p)
    p = _command(
        data_sub,
        "show",
        "save a 4x4 grid of digits titled with their labels",
        f"{PROG} data show --out samples.png",
        cmd_data_show,
    )
    _add_data_options(p)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--seed", type=int, default=0, help="which digits to pick (default: 0)")
    p.add_argument("--out", default="samples.png", help="PNG to write (default: samples.png)")

    p = _command(
        sub,
        "models",
        "list the catalogue, or show one network layer by layer (yours with --arch)",
        f"{PROG} models\n  {PROG} models keras-example\n"
        f"  {PROG} models --arch \"Conv2D(32, (3,3), activation='relu'), MaxPooling2D((2,2)), "
        f"Flatten(), Dense(10, activation='softmax')\"",
        cmd_models,
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="a catalogue entry to show")
    p.add_argument("--arch", metavar="LAYERS|FILE.py", help="your network, as for train --arch")

    p = _command(
        sub,
        "train",
        "train a network (the catalogue's or yours) and write a run directory",
        f"{PROG} train keras-example --epochs 3\n"
        f"  {PROG} train --arch \"Conv2D(32, (3,3), activation='relu'), MaxPooling2D((2,2)), "
        f"Flatten(), Dense(10, activation='softmax')\" --epochs 5\n"
        f"  {PROG} train --arch my_net.py:build --optimizer sgd --learning-rate 0.05\n"
        f"  {PROG} train --init my_model.h5 --dataset folder:my-digits",
        cmd_train,
    )
    _add_network_options(p)
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last completed epoch, with its settings",
    )
    p.add_argument("--out", default="runs", help="folder for run directories (default: runs/)")
    _add_address_option(p, "train an ensemble's members side by side on a Ray cluster")

    p = _command(
        sub,
        "sweep",
        "train many variants at once on Ray (a grid or random samples of any train flags), "
        "rank them on validation, and test the best once",
        f"{PROG} sweep conv32-conv64-dropout --set learning-rate=0.0003,0.001,0.003 "
        f"--set batch-size=32,128 --epochs 5\n"
        f"  {PROG} sweep keras-example --set learning-rate=0.0001:0.01 "
        f"--set batch-size=32:256 --samples 8 --scheduler asha --epochs 6\n"
        f"  {PROG} sweep --resume runs/sweep-keras-example-20261122-101500",
        cmd_sweep,
    )
    _add_network_options(p)
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
    _add_address_option(p, "run on this Ray cluster (default: an embedded Ray on this machine)")

    p = _command(
        sub,
        "evaluate",
        "test loss, accuracy, per-class scores and confusion matrix (and, for a folder of your "
        "digits, the files read wrong)",
        f"{PROG} evaluate runs/keras-example-20261121-101500\n"
        f"  {PROG} evaluate my_model.h5 --dataset folder:my-digits --split all",
        cmd_evaluate,
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL.keras|MODEL.h5")
    p.add_argument(
        "--split",
        choices=["test", "train", "all"],
        default="test",
        help="which part of the dataset to score (default: test)",
    )
    _add_data_options(p, default_dataset=None)

    p = _command(
        sub,
        "predict",
        "read digits from image files (any size, photo or scan), or from the test set",
        f"{PROG} predict runs/fast-20261121-101500 my-digit.jpg photos/ 'scans/*.png'\n"
        f"  {PROG} predict runs/fast-20261121-101500 --index 0 --index 7",
        cmd_predict,
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL")
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="FILE_OR_DIR",
        help="image files, folders of images, globs, or - for standard input",
    )
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="alternatives to list")
    p.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        metavar="P",
        help="answers below this confidence are marked unsure (default: 0)",
    )
    p.add_argument(
        "--multi",
        action="store_true",
        help="each image is a row of digits (a house number, a year): read the whole number",
    )
    p.add_argument(
        "--show",
        action="store_true",
        help="save the 28x28 image the model saw, as OUT/NAME.mnist.png",
    )
    p.add_argument(
        "--index",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="a test-set index; repeat for more",
    )
    p.add_argument(
        "--out",
        help="folder for the PNGs (default: predictions/; for --index, "
        "predictions/ beside the model)",
    )
    _add_data_options(p, default_dataset=None)
    _add_address_option(p, "read a large folder across a Ray cluster (Ray Data)")

    p = _command(
        sub,
        "report",
        "write RUN_DIR/report.html: settings, curves, metrics, errors, calibration, filters",
        f"{PROG} report runs/fast-20261121-101500",
        cmd_report,
    )
    p.add_argument("run", metavar="RUN_DIR|MODEL")
    p.add_argument(
        "--out", help="the page (default: RUN_DIR/report.html, or MODEL.report.html beside it)"
    )
    p.add_argument("--data-dir", metavar="DIR", help="data folder (default: as for train)")

    p = _command(
        sub,
        "robustness",
        "accuracy on test digits changed as people write them (rotated, slanted, thick, "
        "faint, noisy ...), read back through predict's preprocessing",
        f"{PROG} robustness runs/fast-20261121-101500 --per-change 500",
        cmd_robustness,
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
    p.add_argument("--data-dir", metavar="DIR", help="data folder (default: as for train)")

    p = _command(
        sub,
        "compare",
        "compare runs: a table here, and an HTML page with curves and disagreements",
        f"{PROG} compare runs/fast-20261121-101500 runs/keras-example-20261121-102000",
        cmd_compare,
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR|MODEL")
    p.add_argument("--out", default="compare.html", help="the page (default: compare.html)")
    p.add_argument("--data-dir", metavar="DIR", help="data folder (default: as for train)")

    p = _command(
        sub,
        "export",
        "export a model to ONNX, SavedModel or TFLite, checked against Keras on 1,000 digits",
        f"{PROG} export runs/fast-20261121-101500 --format onnx",
        cmd_export,
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL")
    p.add_argument("--format", required=True, choices=["onnx", "saved_model", "tflite"])
    p.add_argument(
        "--out",
        help="where to write it (default: model.onnx, saved_model/ or model.tflite "
        "beside the model)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="data folder for the parity digits")

    p = _command(
        sub,
        "serve",
        "the draw-a-digit page and the HTTP API (POST /api/predict, GET /api/model, /docs)",
        f"{PROG} serve runs/fast-20261121-101500 --port 8000",
        cmd_serve,
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="RUN_DIR|MODEL",
        help="the model to serve (default: the newest run under --runs)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--runs", default="runs", help="where to look for the newest run (default: runs/)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with its own copy of the model (default: 1)",
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=5.0,
        metavar="MB",
        help="refuse request bodies larger than this with 413 (default: 5)",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        default=0.6,
        metavar="P",
        help="answers below this confidence are shown as unsure (default: 0.6)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug:
        os.environ["MNIST_CNN_DEBUG"] = "1"
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
        code = EXIT_USAGE if isinstance(exc, _input_errors()) else EXIT_FAILURE
        message = first_line(exc)
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return code


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


if __name__ == "__main__":
    run()
