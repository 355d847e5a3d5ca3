"""How models hold up on digits as people write them: the robustness suite, side by side.

Every model reads the same suite (`mnist_cnn.reporting.robustness`: MNIST test digits changed in
named ways at three strengths, put on a page and read back through `imaging.to_mnist`, the
path `predict` takes). Prints one Markdown table: a column per model, a row per change and
strength, then the unchanged page, the mean over every change (to two places: the
handwriting issue's 98.5% line must be read without rounding) and the worst.

    python benchmarks/robustness.py RUN_OR_MODEL [...] [--per-change 500] [--seed 0]
                                    [--split test|validation] [--for handwriting]

`RUN+RUN+...` is an ensemble of those runs: the mean of their probabilities, as `train
--ensemble` makes one (member i is the single run with seed + i). Its MNIST test accuracy
is measured here, once, and its fit is the sum of its members'.

`--split validation` builds the suite from the validation digits (the last 5% of train,
every catalogue recipe's split that selects) instead of the test digits: what a model made
for handwriting is chosen on, so that the test digits are read once per finished model.
The summary's accuracy column is then every model's on those validation digits, not MNIST
test: an ensemble put together to be compared is not read on test while it is chosen.

`--for handwriting` reads every model a second time as `predict --for handwriting` reads
it (each digit also turned by `handwriting.TURNS`, the probabilities averaged): a column
and a summary row more each, whose MNIST test accuracy is measured here the same way.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mnist_cnn.backend import import_keras, versions

import_keras()

from mnist_cnn import rundir  # noqa: E402
from mnist_cnn.data import sources  # noqa: E402
from mnist_cnn.inference import handwriting  # noqa: E402
from mnist_cnn.inference.classifier import Classifier  # noqa: E402
from mnist_cnn.models.settings import added_later  # noqa: E402
from mnist_cnn.reporting import robustness  # noqa: E402
from mnist_cnn.training import split_validation  # noqa: E402
from mnist_cnn.training.config import comparable  # noqa: E402

VALIDATION = 0.05
OTHER_SOURCES = ("box-filled", "coarse-binary", "clipped", "blunt")  # summary columns
TURNED = " --for handwriting"  # a model read as `predict --for handwriting` reads it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="run directories or model files")
    parser.add_argument("--per-change", type=int, default=500, help="test digits per entry")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    parser.add_argument(
        "--for",
        dest="purpose",
        choices=handwriting.PURPOSES,
        help="also read each model as predict --for reads it",
    )
    args = parser.parse_args()
    if args.purpose:
        args.models = [m + suffix for m in args.models for suffix in ("", TURNED)]
    (x_train, y_train), (x_test, y_test) = sources.load_dataset("mnist")
    if args.split == "validation":
        _, (x_test, y_test) = split_validation(x_train, y_train, VALIDATION)
    started = time.perf_counter()
    suite = robustness.build_suite(x_test, y_test, args.per_change, args.seed)
    built = time.perf_counter() - started
    results = {}
    for model in args.models:
        results[model] = robustness.score(suite, _probabilities(model))
    info = versions()
    print(
        f"{info['machine']}, {info['cpu_count']} CPU cores; Keras {info['keras']} on "
        f"{info['backend']}; {args.per_change} {args.split} digits per change and strength (seed "
        f"{args.seed}); the suite took {built:.0f} s to build.\n"
    )
    names = list(results)
    shown = shown_names(names)
    print("| change (strength) | " + " | ".join(f"`{shown[n]}`" for n in names) + " |")
    print("| --- |" + " ---: |" * len(names))
    first = results[names[0]]["rows"]
    for index, row in enumerate(first):
        label = (
            "none (the page as it is)"
            if row["change"] == "none"
            else (f"{row['change']} ({row['strength']:g})")
        )
        cells = [f"{results[n]['rows'][index]['accuracy']:.1%}" for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(
        "| **mean of the changes** | "
        + " | ".join(f"**{results[n]['mean']:.2%}**" for n in names)
        + " |"
    )
    print(
        "| worst | "
        + " | ".join(
            f"{results[n]['worst']['accuracy']:.1%} ({results[n]['worst']['change']} "
            f"{results[n]['worst']['strength']:g})"
            for n in names
        )
        + " |"
    )
    summary(args.models, results, (x_test, y_test) if args.split == "validation" else None)
    return 0


def shown_names(models: list[str]) -> dict[str, str]:
    """Each model's name as shown (here and in handwriting.py): its runs' folder names, or
    as many path parts more as it takes to tell them apart (two seeds trained at the same
    second share a name)."""
    for depth in range(1, 1 + max(len(Path(m).parts) for m in models)):
        names = {
            model: "+".join("/".join(Path(m).parts[-depth:]) for m in members_of(model))
            + (TURNED if model.endswith(TURNED) else "")
            for model in models
        }
        if len(set(names.values())) == len(models):
            return names
    return {model: model for model in models}


def _recipe(config: dict) -> str:
    """A run's settings but its seed: runs with the same one are seeds of one recipe (a
    strength or recipe field recorded as 0 or not recorded at all is the same)."""
    recorded = {**config["settings"], **added_later(config["settings"])}  # fields it predates
    settings = {k: comparable(k, v) for k, v in recorded.items() if k != "seed"}
    return json.dumps(settings, sort_keys=True, default=str)


def _difference(first: str, other: str) -> str:
    """How one recipe differs from another, as the flags would say it: `augment
    clip=0.3,blur=0.15; epochs 10`."""
    a, b = json.loads(first), json.loads(other)
    said = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) == b.get(key):
            continue
        if key == "augmentation" and isinstance(b.get(key), dict):
            before = a.get(key) if isinstance(a.get(key), dict) else {}
            changed = {k: v for k, v in b[key].items() if before.get(k) != v}
            gone = [k for k in before if k not in b[key]]
            strengths = [f"{k}={v:g}" for k, v in changed.items()] + [f"{k}=0" for k in gone]
            said.append("augment " + ",".join(strengths))
        else:
            said.append(f"{key.replace('_', '-')} {b.get(key)}")
    return "; ".join(said)


def members_of(model: str) -> list[str]:
    """The run directories or model files of `A+B...` (and of `A --for handwriting`)."""
    return model.removesuffix(TURNED).split("+")


def classifiers(model: str, threads: int | None = None) -> list[Classifier]:
    """A Classifier per member of `A+B...`, reading as `--for handwriting` reads digits when
    the name ends so; also handwriting.py's."""
    turns = handwriting.TURNS if model.endswith(TURNED) else ()
    return [Classifier(member, threads=threads, turns=turns) for member in members_of(model)]


def averaged(members: list[Classifier]):
    """The probabilities of one Classifier, or the mean of several (an ensemble's)."""
    each = [member.probabilities for member in members]  # bound now: callers may replace one
    if len(each) == 1:
        return each[0]
    return lambda images: np.mean([probabilities(images) for probabilities in each], axis=0)


@functools.cache  # the suite and the ensemble's test accuracy read through the same models
def _probabilities(model: str):
    """A model's probabilities, or an ensemble's (`A+B`): the mean of its members'."""
    return averaged(classifiers(model))


def _measured_here(model: str, digits=None) -> tuple[float, float]:
    """The accuracy of an ensemble or a turned reading on MNIST test (read once, here), or
    on `digits` (images, labels) when given, and its members' fit, in minutes."""
    if digits is None:
        _, digits = sources.load_dataset("mnist")
    images, labels = digits
    predicted = _probabilities(model)(images).argmax(axis=1)
    runs = [rundir.run_dir_of(member) for member in members_of(model)]
    fit = sum(rundir.read_json(run / rundir.METRICS)["train_seconds"] for run in runs) / 60
    return float(np.mean(predicted == labels)), fit


def _middle(result: dict, change: str) -> float:
    """A change's accuracy at its middle strength."""
    rows = [row for row in result["rows"] if row["change"] == change]
    return rows[len(rows) // 2]["accuracy"]


def summary(models: list[str], results: dict, validation=None) -> None:
    """Per catalogue model (runs grouped by their config's model and settings): seeds,
    each change of other collections at its middle strength, the suite's mean (mean,
    lowest), and each run's MNIST test accuracy and fit time, read from its metrics.json.
    What `robust`'s goals are judged on. Given `validation` (images, labels), every
    model's accuracy there instead of on test."""
    groups: dict[str, list[str]] = {}
    recipes: dict[str, str] = {}  # a model's first recipe; runs of another get their own row

    def _named(name: str, recipe: str, entry: str) -> str:
        """The name, with how the recipe differs from the entry's first one seen (seeds of
        one recipe share a row)."""
        first = recipes.setdefault(entry, recipe)
        return name if recipe == first else f"{name} ({_difference(first, recipe)})"

    for model in models:
        members = members_of(model)
        turned = TURNED if model.endswith(TURNED) else ""
        run = rundir.run_dir_of(members[0])
        name = Path(members[0]).name
        if len(members) > 1:  # as `train --ensemble` makes it only if one recipe trained all
            configs = [rundir.read_json(rundir.run_dir_of(m) / rundir.CONFIG) for m in members]
            entry = configs[0]["model"]
            name = _named(f"{entry} --ensemble {len(members)}", _recipe(configs[0]), entry)
            one_recipe = len({_recipe(config) for config in configs}) == 1
            if not one_recipe or name + turned in groups:  # of mixed settings, or seen
                name = f"ensemble of {shown_names(models)[model].removesuffix(turned)}"
            groups[name + turned] = [model]
            continue
        if run:
            config = rundir.read_json(run / rundir.CONFIG)
            name = _named(config["model"], _recipe(config), config["model"])
        groups.setdefault(name + turned, []).append(model)
    middles = [f"{name} {robustness.CHANGES[name][1][1]:g}" for name in OTHER_SOURCES]
    print(
        "\n| model | runs (seeds) | "
        + "".join(f"{middle} | " for middle in middles)
        + "suite mean: mean (lowest) | "
        + ("MNIST validation" if validation else "MNIST test")
        + ": mean (lowest) | fit min: mean (longest) |"
    )
    print("| --- | --- |" + " ---: |" * (len(middles) + 3))
    for name, members in groups.items():
        means = [results[m]["mean"] for m in members]
        runs = [rundir.run_dir_of(members_of(m)[0]) for m in members]
        metrics = [rundir.read_json(r / rundir.METRICS) for r in runs if r]
        seeds = [rundir.read_json(r / rundir.CONFIG)["settings"].get("seed") for r in runs if r]
        tests = [m["test_accuracy"] for m in metrics]
        fits = [m["train_seconds"] / 60 for m in metrics]
        if "+" in members[0]:  # one ensemble: its own test accuracy, its members' seeds
            test, fit = _measured_here(members[0], validation)
            tests, fits = [test], [fit]
            seeds = [
                rundir.read_json(rundir.run_dir_of(m) / rundir.CONFIG)["settings"].get("seed")
                for m in members_of(members[0])
            ]
        elif members[0].endswith(TURNED) or validation:  # metrics.json's is test, unturned
            tests = [_measured_here(m, validation)[0] for m in members]
        print(
            f"| `{name}` | {len(seeds)} ({', '.join(map(str, seeds))}) "
            + "".join(
                f"| {statistics.mean(_middle(results[m], change) for m in members):.1%} "
                for change in OTHER_SOURCES
            )
            + f"| {statistics.mean(means):.2%} ({min(means):.2%}) "
            + (f"| {statistics.mean(tests):.2%} ({min(tests):.2%}) " if tests else "| — ")
            + (f"| {statistics.mean(fits):.1f} ({max(fits):.1f}) |" if fits else "| — |")
        )


if __name__ == "__main__":
    sys.exit(main())
