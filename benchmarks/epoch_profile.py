"""Where an epoch of `best` goes on this CPU, and what the cheaper ways to run it buy.

1. The whole training step, as `mnist-cnn train best` runs it (`model.fit` on the digits,
   augmentation in front, mixed bfloat16, Adam, `steps_per_execution` 8), then the same
   step changed one or two things at a time: float32, XLA (`jit_compile`), no augmentation,
   the augmentation in a tf.data pipeline ahead of the model, a batch of 256, Keras's own
   batch norm instead of the fused one `train` uses (models/batch_norm.py). Each is a warm
   `fit` over `--steps` batches, all variants timed in turns, round after round, and given
   as ms per 128 digits, so that the rows compare.
2. The step taken apart: the augmentation alone, each layer of the network forward and
   backward on its own input (what a convolution or a batch norm costs), the optimizer's
   update of every weight, and the input pipeline (slicing and batching the arrays); and
   each batch norm beside Keras's own on the same maps.
   The parts do not add up to the step exactly: the step fuses and overlaps some of them.

Every timing is the median of `--repeats` rounds; a variant against today's step is the
median of their ratios round by round. Prints Markdown tables.

    python benchmarks/epoch_profile.py [--model best] [--steps 8] [--repeats 30]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import numpy as np

from mnist_cnn.backend import import_keras, versions

keras = import_keras()

import tensorflow as tf  # noqa: E402  (this profile is of the TensorFlow backend)

from mnist_cnn.data import NUM_CLASSES, datasets, sources  # noqa: E402
from mnist_cnn.models import catalogue, networks  # noqa: E402
from mnist_cnn.models.augmentation import RandomAffine, RandomStrokes  # noqa: E402
from mnist_cnn.models.batch_norm import BatchNormalization  # noqa: E402
from mnist_cnn.training import TrainConfig, fit, resolve_settings  # noqa: E402

BATCH = 128


def settings_for(model: str, **changes) -> dict:
    return resolve_settings(TrainConfig(model=model, **changes))


@contextlib.contextmanager
def keras_batch_norm():
    """Networks built meanwhile get Keras's own batch norm, as before 2026-12-03."""
    networks.BatchNormalization = keras.layers.BatchNormalization
    try:
        yield
    finally:
        networks.BatchNormalization = BatchNormalization


def prepared(
    model: str, x, y, steps: int, jit="auto", ahead=False, pipeline=False, unfused=False, **changes
):
    """A warm `model.fit` over `steps` batches, ready to time, and the digits it sees.
    `ahead`: the recipe's augmentation runs in a tf.data pipeline ahead of the model (on
    other threads) instead of inside it, and the model is built without it. `pipeline`: the
    same tf.data pipeline with the augmentation left in the model, which tells the two
    changes apart (the arrays' path through Keras, and where the augmentation runs).
    `unfused`: the network built with Keras's own batch norm."""
    settings = settings_for(model, **changes)
    keras.utils.set_random_seed(1)
    entry = catalogue.get_entry(model)
    if ahead:
        front = [layer for layer in fit.build(entry, settings).layers if _augmenting(layer)]
        settings = {**settings, "augmentation": None}
    with keras_batch_norm() if unfused else contextlib.nullcontext():
        network = fit.build(entry, settings)
    fit.compile_model(network, settings, steps_per_epoch=steps, jit_compile=jit)
    batch = settings["batch_size"]
    n = steps * batch
    labels = keras.utils.to_categorical(y[:n], NUM_CLASSES)
    if ahead or pipeline:
        data = tf.data.Dataset.from_tensor_slices((x[:n], labels)).batch(batch)
        if ahead:
            data = data.map(
                lambda a, b: (_through(front, a), b), num_parallel_calls=tf.data.AUTOTUNE
            )
        data = data.prefetch(tf.data.AUTOTUNE)
        run = lambda: network.fit(data, epochs=1, verbose=0)  # noqa: E731
    else:
        run = lambda: network.fit(x[:n], labels, batch_size=batch, epochs=1, verbose=0)  # noqa: E731
    run()  # traces, warms up
    return run, n


def steps_ms(variants: dict, x, y, steps: int, repeats: int, model: str) -> dict:
    """Median ms per 128 digits of each variant's fit, timed in turns, round after round,
    and the median of its ratios to the first variant's time in the same round. This VM's
    speed changes by 2-4x within seconds (a NumPy matrix product, alone: 0.39 to 1.49 s), so
    short rounds and ratios within a round are what compare. A variant that cannot run maps
    to its error."""
    runs, times = {}, {}
    for label, change in variants.items():
        try:
            runs[label] = prepared(model, x, y, steps, **change)
            times[label] = []
        except Exception as exc:  # XLA may refuse an op: say so, keep going
            first = str(exc).strip().splitlines()[0][:60]
            times[label] = f"fails: {type(exc).__name__}: {first}"
    ratios = {label: [] for label in runs}
    first = next(iter(runs))
    for _ in range(repeats):
        for label, (run, n) in runs.items():
            started = time.perf_counter()
            run()
            times[label].append((time.perf_counter() - started) / n * BATCH * 1000)
            ratios[label].append(times[label][-1] / times[first][-1])
    return {
        label: t if isinstance(t, str) else (statistics.median(t), statistics.median(ratios[label]))
        for label, t in times.items()
    }


def _augmenting(layer) -> bool:
    return isinstance(layer, (RandomAffine, RandomStrokes))


def _through(layers, images):
    for layer in layers:
        images = layer(images, training=True)
    return images


def timed(function, repeats: int, calls: int = 10) -> float:
    """Median ms of one call of a compiled `function`, warm."""
    function()
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            result = function()
        np.asarray(tf.nest.flatten(result)[0])  # wait for the work to finish
        rounds.append((time.perf_counter() - started) / calls)
    return statistics.median(rounds) * 1000


def parts(model: str, x, repeats: int, keras_own: list) -> list[tuple[str, float]]:
    """ms per batch of 128 for the augmentation, each layer (forward and backward) and Adam;
    `keras_own` gets (maps, ms, ms with Keras's own batch norm) for each batch norm."""
    settings = settings_for(model)
    keras.utils.set_random_seed(1)
    network = fit.build(catalogue.get_entry(model), settings)
    batch = tf.constant(x[:BATCH])
    rows = []
    activations = batch
    for layer in network.layers:
        inputs = activations
        if _augmenting(layer):

            @tf.function
            def forward(layer=layer, inputs=inputs):
                return layer(inputs, training=True)

            rows.append((f"augmentation: {type(layer).__name__}", timed(forward, repeats)))
        else:

            @tf.function
            def forward_backward(layer=layer, inputs=inputs):
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    out = layer(inputs, training=True)
                    total = tf.reduce_sum(tf.cast(out, tf.float32))
                return tape.gradient(total, [inputs, *layer.trainable_weights])

            shape = "x".join(str(d) for d in layer.output.shape[1:])
            rows.append((f"{type(layer).__name__} -> {shape}", timed(forward_backward, repeats)))
            if isinstance(layer, BatchNormalization):  # and Keras's own, on the same maps
                own = keras.layers.BatchNormalization.from_config(layer.get_config())
                own.build(inputs.shape)
                keras_own.append(
                    (shape, rows[-1][1], timed(lambda o=own: forward_backward(o), repeats))
                )
        activations = layer(inputs, training=False)
    optimizer = keras.optimizers.Adam(1e-3)
    weights = network.trainable_weights
    gradients = [tf.ones_like(w) * 1e-3 for w in weights]
    optimizer.build(weights)

    @tf.function
    def update():
        optimizer.apply_gradients(zip(gradients, weights, strict=True))
        return weights[0]

    rows.append((f"Adam update of {network.count_params():,} weights", timed(update, repeats)))
    return rows


def pipeline_ms(x, y, repeats: int, steps: int = 48) -> float:
    """ms per batch to slice and batch the arrays as Keras's array adapter does."""
    labels = keras.utils.to_categorical(y[: steps * BATCH], NUM_CLASSES)
    data = tf.data.Dataset.from_tensor_slices((x[: steps * BATCH], labels)).batch(BATCH)
    rounds = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        for _ in data:
            pass
        rounds.append((time.perf_counter() - started) / steps)
    return statistics.median(rounds[1:]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="best")
    parser.add_argument("--steps", type=int, default=8, help="batches per timed round")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    (x_train, y_train), _ = sources.load_dataset("mnist")
    x = datasets.normalise(x_train)
    about = ", ".join(f"{k} {v}" for k, v in versions().items())
    print(
        f"{os.uname().machine}, {os.cpu_count()} CPU cores; {about}; `{args.model}`, "
        f"{args.steps} batches a round, median of {args.repeats} rounds.\n"
    )
    variants = {
        "as `train` runs it (mixed bfloat16)": {},
        "Keras's own batch norm (as before 2026-12-03)": dict(unfused=True),
        "Keras's own batch norm, float32": dict(unfused=True, precision="float32"),
        "float32": dict(precision="float32"),
        "XLA (`jit_compile`)": dict(jit=True),
        "no augmentation": dict(augmentation="off"),
        "no augmentation, XLA": dict(augmentation="off", jit=True),
        "no augmentation, float32": dict(augmentation="off", precision="float32"),
        "the arrays as a tf.data pipeline, augmentation in the model": dict(pipeline=True),
        "augmentation ahead of the model (tf.data, other threads)": dict(ahead=True),
        "augmentation ahead of the model, XLA": dict(ahead=True, jit=True),
        "batch 256": dict(batch_size=256),
    }
    measured = steps_ms(variants, x, y_train, args.steps, args.repeats, args.model)
    today = measured["as `train` runs it (mixed bfloat16)"][0]
    print("| the training step | ms per 128 digits | against today (in the same round) |")
    print("| --- | ---: | ---: |")
    for label, got in measured.items():
        if isinstance(got, str):
            print(f"| {label} | {got} | |")
            continue
        ms, ratio = got
        epoch = ms * len(x) * 0.95 / BATCH / 1000
        print(f"| {label} | {ms:.1f} (epoch {epoch:.0f} s) | {ratio:.2f}x |")
    print("\n| part of the step (128 digits) | ms | share of today's step |")
    print("| --- | ---: | ---: |")
    keras_own: list = []
    rows = parts(args.model, x, args.repeats, keras_own)
    rows.append(
        ("input pipeline (slice and batch the arrays)", pipeline_ms(x, y_train, args.repeats))
    )
    for label, ms in rows:
        print(f"| {label} | {ms:.2f} | {ms / today:.0%} |")
    print(
        f"| the parts together | {sum(ms for _, ms in rows):.1f} | "
        f"{sum(ms for _, ms in rows) / today:.0%} |"
    )
    print("\n| batch norm, forward and backward (128 digits) | fused ms | Keras's own ms | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for shape, fused, own in keras_own:
        print(f"| {shape} | {fused:.2f} | {own:.2f} | {fused / own:.2f}x |")
    fused, own = (sum(row[i] for row in keras_own) for i in (1, 2))
    print(f"| all of them | {fused:.2f} | {own:.2f} | {fused / own:.2f}x |")


if __name__ == "__main__":
    main()
