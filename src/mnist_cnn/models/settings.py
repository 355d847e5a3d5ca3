"""The settings a run trains with: a recipe, and the user's changes to it, checked.

Every field of a recipe can be changed from the command (`--optimizer adamw`,
`--augment rotation=15`, ...), for catalogue entries and your own networks alike. A bad
value, from the command or from a damaged config.json, gets one line that names the flag
and what it accepts. A leaf module (no Keras, nothing else of the package), so that the
command can offer and check every setting before the backend loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

from mnist_cnn.data import datasets


@dataclass(frozen=True)
class Augmentation:
    """Each training digit turned, scaled and moved at random, in one resampling: up to
    `rotation` degrees either way, a scale of 1 +- `zoom` and a shift of +-`shift` of its size;
    slanted by up to +-`shear` (x per unit of height) and its width alone scaled by up to
    e^+-`aspect`. Then its strokes made thicker or thinner by up to `stroke` of a pixel's
    dilation, for a share `erase` of the digits, gaps cut across the ink, and for a share
    `clip`, up to 30% of the ink's extent cut off at one side and the rest enlarged back to
    the ink's size, as the reader enlarges a cut digit; for a share `blur`, a Gaussian blur
    of 0.5 to 2.5 pixels, read back as the reader reads a blurred photo."""

    rotation: float = 10.0
    zoom: float = 0.1
    shift: float = 0.1
    shear: float = 0.0
    aspect: float = 0.0
    stroke: float = 0.0
    erase: float = 0.0
    clip: float = 0.0
    blur: float = 0.0


@dataclass(frozen=True)
class Recipe:
    """How an entry is trained: the settings its source published (or ours, for our entries)."""

    epochs: int
    batch_size: int
    validation_split: float
    loss: str  # "sparse" (integer labels) or "categorical" (one-hot labels)
    optimizer: str = "adam"
    learning_rate: float = 1e-3  # the peak rate, under a schedule
    schedule: str = "constant"  # or "one-cycle": linear warm-up, then cosine decay to zero
    warmup: float = 0.0  # fraction of all steps spent warming up, for "one-cycle"
    steps_per_execution: int = 1  # batches per compiled call; more hides per-step overhead
    label_smoothing: float = 0.0  # with the "categorical" loss
    precision: str = "float32"  # a Keras dtype policy, e.g. "mixed_bfloat16"
    select_best: bool = False  # keep the epoch with the lowest validation loss
    augmentation: Augmentation | None = None  # training only; None: the digits as they are
    batch_norm_refresh: int = 0  # after fit, batch norm's statistics on this many clean digits


# --optimizer NAME -> its class in keras.optimizers (with Keras's defaults besides the rate)
OPTIMIZERS = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "rmsprop": "RMSprop",
    "nadam": "Nadam",
    "adamax": "Adamax",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
}
SCHEDULES = ("constant", "one-cycle")
LOSSES = ("sparse", "categorical")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))
AUGMENT_ON, AUGMENT_OFF = "on", "off"
MAX_ROTATION = 180.0


class SettingsError(ValueError):
    """A setting that cannot be trained with; the message names its flag."""


# --- one name per setting ------------------------------------------------------------------
# config.json keeps its keys (learning_rate, select_best, augmentation: old runs still load);
# what people read and type is the flag's name and value (learning-rate 0.001, select-best no,
# augment off), written here once for the report, compare, sweep and `sweep --set`.

# Recipe fields that runs recorded before them lack, with the value those runs trained with.
ADDED_LATER = {"batch_norm_refresh": 0}


def added_later(settings: dict) -> dict:
    """The recipe fields a run recorded before they existed lacks, as those runs trained."""
    return {key: value for key, value in ADDED_LATER.items() if key not in settings}


RUN_SETTINGS = ("seed", "dataset", "limit", "ensemble", "mix_mnist")  # config.json, beyond a recipe
FLAG_NAMES = {"augmentation": "augment"}  # config key -> flag name, where not key with dashes
WHEN_UNSET = {"limit": "all", "augmentation": AUGMENT_OFF}  # what an unset (None) value means


def flag_name(key: str) -> str:
    """A config.json settings key as the flag that sets it, without dashes: learning-rate."""
    return FLAG_NAMES.get(key, key.replace("_", "-"))


def flag(field: str) -> str:
    """The command-line flag of a recipe field: --learning-rate."""
    return "--" + flag_name(field)


def key_of(name: str) -> str:
    """The config key a setting's name means, given as the flag (learning-rate, --augment)
    or as the config key (learning_rate, augmentation): both are the same setting."""
    name = name.strip().removeprefix("--")
    by_flag = {flag: key for key, flag in FLAG_NAMES.items()}
    return by_flag.get(name, name.replace("-", "_"))


def shown_value(key: str, value) -> str:
    """A setting's value as its flag takes it: 0.001, select-best no, augment off or
    rotation=10,zoom=0.1."""
    if value is None:
        return WHEN_UNSET.get(key, "—")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "augmentation" and isinstance(value, dict):
        return ",".join(f"{k}={v:g}" for k, v in value.items() if v) or AUGMENT_OFF
    return f"{value:g}" if isinstance(value, float) else str(value)


def shown_settings(settings: dict) -> list[tuple[str, str]]:
    """config.json's settings as (flag name, flag value) pairs, in the order recorded."""
    return [(flag_name(key), shown_value(key, value)) for key, value in settings.items()]


def parse_augmentation(text: str) -> dict | None:
    """`on` (Deotte's strengths), `off`, or named strengths: `rotation=15,zoom=0.1,shift=0.1`.

    Strengths left unnamed are 0, so what is written is what trains.
    """
    text = text.strip()
    if text == AUGMENT_ON:
        return asdict(Augmentation())
    if text == AUGMENT_OFF:
        return None
    strengths = dict.fromkeys(asdict(Augmentation()), 0.0)
    for item in text.split(","):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or key not in strengths:
            raise SettingsError(
                f"--augment {text!r}: write 'on', 'off' or strengths such as "
                f"'rotation=10,zoom=0.1,shift=0.1' (keys: {', '.join(strengths)})"
            )
        try:
            strengths[key] = float(value)
        except ValueError:
            raise SettingsError(f"--augment: {key}={value.strip()!r} is not a number") from None
    return _checked_augmentation(strengths)


def _checked_augmentation(value) -> dict | None:
    if value is None:
        return None
    known = asdict(Augmentation())
    if not isinstance(value, dict) or set(value) - set(known):
        raise SettingsError(f"--augment must be on, off or strengths of {', '.join(known)}")
    strengths = {**dict.fromkeys(known, 0.0), **value}
    for key, number in strengths.items():
        if key == "rotation":
            ok, bound = _is_number(number) and 0 <= number <= MAX_ROTATION, "0 to 180 degrees"
        else:
            ok, bound = _is_number(number) and 0 <= number < 1, "at least 0 and below 1"
        if not ok:
            raise SettingsError(f"--augment: {key} must be {bound}, got {number!r}")
        strengths[key] = float(number)
    return strengths if any(strengths.values()) else None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _choice(field: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"{flag(field)} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _whole(minimum: int) -> Callable[[str, object], int]:
    """The check of a whole-number setting of at least `minimum`."""

    def check(field: str, value) -> int:
        if not is_whole(value) or value < minimum:
            raise SettingsError(
                f"{flag(field)} must be a whole number of at least {minimum}, got {value!r}"
            )
        return value

    return check


_at_least_one = _whole(1)


def _fraction(field: str, value) -> float:
    if not _is_number(value) or not 0.0 <= value < 1.0:
        raise SettingsError(f"{flag(field)} must be in [0, 1), got {value!r}")
    return value


def _rate(field: str, value) -> float:
    if not _is_number(value) or not 0.0 < value <= 10.0:
        raise SettingsError(f"{flag(field)} must be a number above 0 (at most 10), got {value!r}")
    return value


def _switch(field: str, value) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{flag(field)} is on or off (true or false), got {value!r}")
    return value


CHECKS = {
    "epochs": _at_least_one,
    "batch_size": _at_least_one,
    "validation_split": _fraction,
    "loss": lambda field, value: _choice(field, value, LOSSES),
    "optimizer": lambda field, value: _choice(field, value, tuple(OPTIMIZERS)),
    "learning_rate": _rate,
    "schedule": lambda field, value: _choice(field, value, SCHEDULES),
    "warmup": _fraction,
    "steps_per_execution": _at_least_one,
    "label_smoothing": _fraction,
    "precision": lambda field, value: _choice(field, value, PRECISIONS),
    "select_best": _switch,
    "augmentation": lambda field, value: _checked_augmentation(
        parse_augmentation(value) if isinstance(value, str) else value
    ),
    "batch_norm_refresh": _whole(0),
}
assert set(CHECKS) == set(RECIPE_FIELDS), "every recipe field has its check"


def as_flags(settings: dict) -> str:
    """A recipe as the train flags that would set it, e.g. "--epochs 15 --batch-size 128 ..."."""
    words = []
    for field in RECIPE_FIELDS:
        value = settings[field]
        if field == "select_best":
            words.append("--select-best" if value else "--no-select-best")
        else:
            words.append(f"{flag(field)} {shown_value(field, value)}")
    return " ".join(words)


def check_changes(changes: dict) -> None:
    """Check each given value on its own (None: not given), before any recipe is at hand:
    what the command can say at once, before the backend loads."""
    for field, value in changes.items():
        if value is not None:
            CHECKS[field](field, value)


def resolve(recipe: Recipe, changes: dict) -> dict:
    """The recipe as a plain dict, with `changes` (field -> value; None: keep) applied and
    every field checked. Augmentation may be given as text (`on`, `rotation=15`, ...)."""
    settings = asdict(recipe)
    unknown = set(changes) - set(RECIPE_FIELDS)
    if unknown:
        raise SettingsError(f"no recipe setting called {', '.join(sorted(unknown))}")
    settings.update({key: value for key, value in changes.items() if value is not None})
    settings = {field: CHECKS[field](field, settings[field]) for field in RECIPE_FIELDS}
    if settings["loss"] == "sparse" and settings["label_smoothing"]:
        raise SettingsError(
            "--label-smoothing needs --loss categorical (Keras's sparse loss has none)"
        )
    return settings


MNIST_TRAIN = 60_000


def check_run(seed=42, limit=None, ensemble=1, mix_mnist=0, dataset="mnist", data_dir=None) -> None:
    """Check a run's own settings (beyond its recipe), with no Keras: the command answers a
    bad one at once, and `train()` from Python gets the same words."""
    if not is_whole(seed):
        raise SettingsError(f"--seed must be a whole number, got {seed!r}")
    if limit is not None and (not is_whole(limit) or limit < 10):
        raise SettingsError(f"--limit must be at least 10 images, got {limit!r}")
    if not is_whole(ensemble) or ensemble < 1:
        raise SettingsError(f"--ensemble must be at least 1, got {ensemble!r}")
    if not isinstance(dataset, str) or not isinstance(data_dir, (str, type(None))):
        raise SettingsError("--dataset and --data-dir must be text")
    if not is_whole(mix_mnist) or not 0 <= mix_mnist <= MNIST_TRAIN:
        raise SettingsError(f"--mix-mnist must be 0 to {MNIST_TRAIN:,}, got {mix_mnist!r}")
    if mix_mnist and datasets.folder_of(dataset) is None:
        raise SettingsError("--mix-mnist mixes MNIST into --dataset folder:PATH; give one")
