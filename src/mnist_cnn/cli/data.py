"""`mnist-cnn data download|info|show`: fetch and verify, count, and look at a dataset."""

from __future__ import annotations

from pathlib import Path

from mnist_cnn.cli.common import (
    PROG,
    Parser,
    UsageError,
    add_command,
    add_data_options,
    print_json,
    print_skipped,
)
from mnist_cnn.data import datasets


def download(args) -> None:
    folder = datasets.ensure_dataset(args.dataset, args.data_dir)
    if args.json:
        print_json({"dataset": args.dataset, "folder": str(folder)})
    else:
        print(f"{args.dataset}: four verified files in {folder}")


def info(args) -> None:
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
        print_json(info)
        return
    print(args.dataset if folder is not None else f"{args.dataset} in {info['folder']}")
    print(
        f"images: {'x'.join(map(str, info['image_shape']))} {info['dtype']}, "
        f"train {info['train']['count']}, test {info['test']['count']}"
    )
    if folder is not None:
        print(f"split: {folder.split}")
        print_skipped(folder.skipped)
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


def show(args) -> None:
    import numpy as np

    from mnist_cnn.data import sources
    from mnist_cnn.reporting import pictures

    (x_train, y_train), (x_test, y_test) = sources.load_dataset(args.dataset, args.data_dir)
    images, labels = (x_train, y_train) if args.split == "train" else (x_test, y_test)
    if not len(images):
        raise UsageError(f"{args.dataset} has no {args.split} images")
    picks = np.random.default_rng(args.seed).choice(len(images), min(16, len(images)), False)
    out = Path(args.out)
    pictures.sample_grid(images[picks], labels[picks], out, datasets.class_names(args.dataset))
    if args.json:
        print_json({"path": str(out), "indices": picks.tolist()})
    else:
        print(f"saved {len(picks)} {args.split} samples to {out}")


def add_parser(sub) -> None:
    data = sub.add_parser(
        "data",
        help="download, describe and show datasets",
        description="download, describe and show datasets",
    )
    data_sub = data.add_subparsers(
        dest="data_command", required=True, metavar="ACTION", parser_class=Parser
    )
    p = add_command(
        data_sub,
        "download",
        "fetch and verify a dataset into the cache",
        f"{PROG} data download --dataset fashion-mnist",
        download,
    )
    add_data_options(p, folders=False)
    p = add_command(data_sub, "info", "counts and class balance", f"{PROG} data info", info)
    add_data_options(p)
    p = add_command(
        data_sub,
        "show",
        "save a 4x4 grid of digits titled with their labels",
        f"{PROG} data show --out samples.png",
        show,
    )
    add_data_options(p)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--seed", type=int, default=0, help="which digits to pick (default: 0)")
    p.add_argument("--out", default="samples.png", help="PNG to write (default: samples.png)")
