"""`mnist-cnn predict`: digits read from image files, folders, stdin or the test set."""

from __future__ import annotations

import sys
from pathlib import Path

from mnist_cnn import samples
from mnist_cnn.cli.common import (
    PROG,
    PartialFailure,
    UsageError,
    add_address_option,
    add_command,
    add_data_options,
    add_for_option,
    add_min_confidence_option,
    check_min_confidence,
    dataset_for,
    load_keras,
    model_and_purpose,
    model_for,
    print_json,
)


def run(args) -> None:
    _model_or_purpose(args)
    if args.sample:
        args.inputs = [*args.inputs, *(samples.PREFIX + name for name in samples.names())]
    for item in args.inputs:  # a misspelt sample: one line, before Keras loads
        samples.from_input(item)
    if bool(args.index) == bool(args.inputs):
        raise UsageError(
            "give image files, folders, globs, - (stdin) or --sample, or test-set digits "
            "with --index N"
            if not args.index
            else "give either image files or --index, not both"
        )
    check_min_confidence(args.min_confidence)
    model_for(args)
    if not 1 <= args.top_k <= 10:
        raise UsageError(f"--top-k must be between 1 and 10, got {args.top_k}")
    from mnist_cnn.scale import cluster

    address = cluster.address_or_default(args.address)
    local_only = args.index or args.multi or args.show or "-" in args.inputs
    if args.address and local_only:
        raise UsageError(
            "--address reads image files and folders; not --index, --multi, --show or -"
        )
    if address and not local_only:
        cluster.check_ready(address)
        all_read = _predict_on_cluster(args, address)
    else:
        if not str(args.model).endswith(".onnx"):  # ONNX Runtime needs no Keras
            load_keras(args.model, intra_op_threads=1)  # latency-bound: see backend.import_keras
        if args.index:
            _predict_test_digits(args)
            return
        all_read = _predict_files(args)
    if not all_read:
        raise PartialFailure()


def _model_or_purpose(args) -> None:
    """A model named first, or --for handwriting and no model: then the first name is an
    input (a model given as well is an error, not a folder of images to read)."""
    from mnist_cnn import rundir

    if not args.purpose:
        if args.model is None:
            raise UsageError("name a run directory or model file first, or use --for handwriting")
        return
    if args.model is None:
        return
    named = Path(args.model)
    if named.suffix in rundir.MODEL_SUFFIXES or (named / rundir.MODEL).is_file():
        raise model_and_purpose(args)
    args.inputs, args.model = [args.model, *args.inputs], None


def _predict_on_cluster(args, address: str) -> bool:
    """Many files, read by Ray Data across the cluster; the same answers, in the same order."""
    from mnist_cnn import rundir
    from mnist_cnn.inference.classifier import answer, image_files
    from mnist_cnn.scale import cluster

    model = rundir.model_path(args.model, rundir.MODEL_SUFFIXES)
    items = image_files(args.inputs)
    with cluster.connected(address):
        cluster.check_nodes(None, None, None, see=[model, *items[:1]])
        read = cluster.read_files(model, items, turns=args.turns)
    all_read = True
    for item, (probabilities, error) in zip(items, read, strict=True):
        if probabilities is None:
            all_read = False
            _input_error(args, samples.shown_name(item), error)
        else:
            result = answer(probabilities, args.top_k, args.min_confidence)
            _print_answer(args, samples.shown_name(item), result)
    return all_read


def _input_error(args, name: str, error) -> None:
    """One input's error (an imaging.ImageError, or its reason): a JSON line, or one line on
    stderr; the other inputs go on."""
    message = error if isinstance(error, str) else error.reason(name)
    if args.json:
        print_json({"file": name, "error": message})
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
            print_json(result)
        else:
            each = ", ".join(f"{d['digit']}: {d['confidence']:.3f}" for d in result["digits"])
            flag = "  (unsure)" if result["unsure"] else ""
            print(f"{name}: {result['number']}  p={result['confidence']:.3f}  [{each}]{flag}")
    return all_read


def _predict_test_digits(args) -> None:
    from mnist_cnn.data import sources
    from mnist_cnn.inference.classifier import Classifier
    from mnist_cnn.reporting import pictures

    classifier = Classifier(args.model, turns=args.turns)
    _, (x_test, y_test) = sources.load_dataset(dataset_for(args), args.data_dir)
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
            print_json(result)
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
        args.model,
        min_confidence=args.min_confidence,
        top_k=args.top_k,
        threads=1,
        turns=args.turns,
    )
    items = image_files(args.inputs)
    sources = [sys.stdin.buffer.read() if item == "-" else item for item in items]
    names = [samples.shown_name(item) for item in items]
    if args.multi:
        return _predict_numbers(args, classifier, sources, names)
    all_read = True
    for item, name, (prepared, answer) in zip(
        items, names, classifier.predict_images(sources, names), strict=True
    ):
        if answer is None:
            all_read = False
            _input_error(args, name, prepared)
            continue
        shown = None
        if args.show:
            stem = "stdin" if item == "-" else Path(item).stem
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
        print_json(result)
    else:
        verdict = f"unsure (best guess {answer.digit})" if answer.unsure else answer.digit
        if answer.digits_seen > 1:
            verdict = f"unsure: {answer.digits_seen} digits here; add --multi to read the number"
        ranked = ", ".join(f"{d}: {p:.3f}" for d, p in answer.top_k)
        extra = f"  -> {shown}" if shown is not None else ""
        print(f"{name}: {verdict}  p={answer.confidence:.3f}  [{ranked}]{extra}")


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "predict",
        "read digits from image files (any size, photo or scan), or from the test set",
        f"{PROG} predict runs/fast-20261121-101500 my-digit.jpg photos/ 'scans/*.png'\n"
        f"  {PROG} predict runs/fast-20261121-101500 --index 0 --index 7\n"
        f"  {PROG} predict runs/fast-20261121-101500 --sample\n"
        f"  {PROG} predict runs/fast-20261121-101500 samples:photo-of-a-9\n"
        f"  {PROG} predict --for handwriting my-digit.jpg\n\n"
        f"samples (pictures that come with {PROG}): {', '.join(samples.names())}",
        run,
    )
    p.add_argument("model", nargs="?", metavar="RUN_DIR|MODEL")
    p.set_defaults(trailing="inputs")  # more inputs may follow the flags
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="FILE_OR_DIR",
        help="image files, folders of images, globs, - for standard input, or samples:NAME",
    )
    p.add_argument(
        "--sample",
        action="store_true",
        help="read every sample picture that comes with the package (named below)",
    )
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="alternatives to list")
    add_min_confidence_option(p)
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
    add_for_option(p, "with --for: where to look for runs (default: runs/)")
    add_data_options(p, default_dataset=None)
    add_address_option(p, "read a large folder across a Ray cluster (Ray Data)")
