"""Random rotation, zoom, shift, slant and aspect in one resampling, so that training
digits stay sharp; and random pens and pages: thicker, thinner and broken strokes, digits
cut at a box's edge, out-of-focus blur.

Keras's `RandomRotation`, `RandomZoom` and `RandomTranslation` each resample the image
bilinearly, and every resampling blurs a little. Stacked, they train a network on digits
visibly softer than the ones it is tested on: on 2,000 training digits the share of pixels
above 0.9 falls from 8.7% to 3.4% and the inked area grows from 17% to 23% of the image.
Composing the three into one affine matrix per image and resampling once (what Keras's
old `ImageDataGenerator` did) keeps them close to the originals. `RandomStrokes` (for
`robust`) changes what the robustness suite changes that no resampling can: the pen's width,
the gaps where it skipped, and (when asked for) a clipped side or a blur, each read back as
`to_mnist` reads it. Built from `keras.ops`, so it runs under TensorFlow and JAX;
registered, so a saved model containing it loads in Keras's safe mode.
"""

from __future__ import annotations

import math

from mnist_cnn.backend import import_keras

keras = import_keras()  # quietly: TensorFlow's start-up notices muted, as for the command
ops = keras.ops


@keras.saving.register_keras_serializable(package="mnist_cnn")
class RandomAffine(keras.layers.Layer):
    """Rotate, zoom and shift each image at random, in one resampling; identity at inference.

    Each image gets its own angle in +-`rotation` degrees, scale in 1 +- `zoom` and shift
    in +-`shift` of its height and width; uncovered pixels are background (zero). The name
    starts with "Random", like Keras's augmentation layers: that is how export recognises
    the training-only layers to leave out.
    """

    def __init__(
        self,
        rotation: float = 10.0,
        zoom: float = 0.1,
        shift: float = 0.1,
        seed: int | None = None,
        shear: float = 0.0,
        aspect: float = 0.0,
        **kwargs,
    ):
        """`shear`: x moves by up to this much per unit of height, either way (a slant);
        `aspect`: the width alone scaled by up to e^+-aspect (squashed or stretched)."""
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.shift, self.seed = rotation, zoom, shift, seed
        self.shear, self.aspect = shear, aspect
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        height, width = images.shape[1], images.shape[2]
        batch = ops.shape(images)[0]

        def uniform(limit):
            return keras.random.uniform(
                (batch,), minval=-limit, maxval=limit, seed=self.seed_generator
            )

        angle = uniform(math.radians(self.rotation))
        scale = 1.0 + uniform(self.zoom)  # >1 reads a larger window: the digit shrinks
        dx, dy = uniform(self.shift * width), uniform(self.shift * height)
        # Drawn only when asked for, so that a recipe without them draws what it always did.
        shear = uniform(self.shear) if self.shear else None
        widen = ops.exp(uniform(self.aspect)) if self.aspect else None
        transform = affine_transforms(angle, scale, dx, dy, height, width, shear, widen)
        moved = ops.image.affine_transform(
            ops.cast(images, "float32"), transform, interpolation="bilinear", fill_mode="constant"
        )
        return ops.cast(moved, images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rotation": self.rotation,
            "zoom": self.zoom,
            "shift": self.shift,
            "seed": self.seed,
            "shear": self.shear,
            "aspect": self.aspect,
        }


def affine_transforms(angle, scale, dx, dy, height: int, width: int, shear=None, widen=None):
    """One row per image for `ops.image.affine_transform`: output pixel p reads the input at
    centre + A (p - centre) + (dx, dy), with x along the width, where
    A = scale * R(angle) @ diag(1 / widen, 1) @ [[1, shear], [0, 1]]."""
    cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
    a0, a1, a3, a4 = cos, -sin, sin, cos
    if widen is not None:  # reading a narrower window widens the digit
        a0, a3 = a0 / widen, a3 / widen
    if shear is not None:
        a1, a4 = a1 + a0 * shear, a4 + a3 * shear
    cx, cy = (width - 1) / 2, (height - 1) / 2
    zero = ops.zeros_like(cos)
    return ops.stack(
        [a0, a1, cx - a0 * cx - a1 * cy + dx, a3, a4, cy - a3 * cx - a4 * cy + dy, zero, zero],
        axis=1,
    )


@keras.saving.register_keras_serializable(package="mnist_cnn")
class RandomStrokes(keras.layers.Layer):
    """Pens and paper at random: each digit's strokes made thicker or thinner, and gaps cut
    across them; identity at inference.

    `stroke`: each image's ink moves toward its 3x3 dilation (thicker) or erosion (thinner)
    by a share in +-`stroke`, so a fraction of a pixel is possible. `erase`: the chance that
    an image gets up to four gaps, discs of 1.5 pixels' radius centred on its ink. People's
    pens are wider and narrower than MNIST's, and strokes break where the pen skipped.
    `clip`: the chance that an image loses up to CLIP_SHARE of its ink's extent at one
    side, as a digit written across the edge of a form's box does, and is enlarged back to
    its size, as the reader enlarges it. `blur`: the chance that an image is blurred, as an
    out-of-focus photo is, by a Gaussian of BLUR_SIGMAS pixels (drawn per image), and its
    faint edge dropped and its ink stretched back to full strength, as the reader does.
    """

    STRENGTHS = ("stroke", "erase", "clip", "blur")  # its settings in a recipe's augmentation
    GAPS = 4
    RADIUS = 1.5
    CLIP_SHARE = 0.3
    INK = 0.25  # of the image's largest value: what counts as ink for the clip's extent
    BLUR_SIGMAS = (0.5, 2.5)  # the blur's sigma, in pixels, drawn uniformly between these
    BLUR_FLOOR = 0.2  # of the blurred image's largest value: below it, paper (to_mnist's cut)

    def __init__(
        self,
        stroke: float = 0.0,
        erase: float = 0.0,
        seed=None,
        clip: float = 0.0,
        blur: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.stroke, self.erase, self.clip, self.seed = stroke, erase, clip, seed
        self.blur = blur
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        x = ops.cast(images, "float32")
        batch = ops.shape(x)[0]
        if self.stroke:
            share = keras.random.uniform(
                (batch, 1, 1, 1), -self.stroke, self.stroke, seed=self.seed_generator
            )
            thicker = ops.max_pool(x, 3, strides=1, padding="same")
            thinner = -ops.max_pool(-x, 3, strides=1, padding="same")
            x = x + ops.where(share > 0, share * (thicker - x), -share * (thinner - x))
        if self.erase:
            x = x * self._gaps(x, batch)
        if self.clip:  # drawn only when asked for: recipes without it draw what they did
            x = self._clipped(x, batch)
        if self.blur:  # drawn only when asked for, as the clip
            x = self._blurred(x, batch)
        return ops.cast(x, images.dtype)

    def _blurred(self, x, batch):
        """The digits picked blurred by their own sigma (a separable Gaussian, a tap per
        pixel of shift), then read as `to_mnist` reads a blurred page: the faint edge cut at
        BLUR_FLOOR and the rest stretched back to the digit's own largest value."""
        low, high = self.BLUR_SIGMAS
        sigma = keras.random.uniform((batch, 1), low, high, seed=self.seed_generator)
        reach = math.ceil(3 * high)
        offsets = ops.arange(-reach, reach + 1, dtype="float32")[None, :]
        taps = ops.exp(-0.5 * (offsets / sigma) ** 2)
        taps = taps / ops.sum(taps, axis=1, keepdims=True)  # (batch, 2 * reach + 1)

        def along(image, axis):  # one pass of the separable Gaussian, along rows or columns
            size, pads = image.shape[axis], [(0, 0)] * 4
            pads[axis] = (reach, reach)
            padded = ops.pad(image, pads)
            return sum(
                taps[:, k, None, None, None] * padded[(slice(None),) * axis + (slice(k, k + size),)]
                for k in range(2 * reach + 1)
            )

        soft = along(along(x, 1), 2)
        top = ops.max(soft, axis=(1, 2, 3), keepdims=True)
        floor = self.BLUR_FLOOR * top
        stretched = ops.clip((soft - floor) / ops.maximum(top - floor, 1e-6), 0.0, 1.0)
        read = stretched * ops.max(x, axis=(1, 2, 3), keepdims=True)
        chosen = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < self.blur
        return ops.where(chosen, read, x)

    def _clipped(self, x, batch):
        """The digits picked lose a band at one side of their ink's extent; what is left is
        enlarged back to the ink's longer side and moved to its centre of mass. `to_mnist`
        fits a cut digit to MNIST's box the same way, so the network trains on what the
        reader hands it (a cut alone, not enlarged, taught clipped digits for broken ones)."""
        height, width = x.shape[1], x.shape[2]
        threshold = self.INK * ops.max(x, axis=(1, 2, 3), keepdims=True)
        top, bottom, left, right = _extent(x > threshold)
        share = keras.random.uniform((batch, 1, 1, 1), 0, self.CLIP_SHARE, seed=self.seed_generator)
        side = keras.random.randint((batch, 1, 1, 1), 0, 4, seed=self.seed_generator)
        y = ops.arange(height, dtype="float32")[None, :, None, None]
        x_ = ops.arange(width, dtype="float32")[None, None, :, None]
        tall, wide = share * (bottom - top + 1), share * (right - left + 1)
        cut = ops.where(
            side == 0,
            y < top + tall,
            ops.where(
                side == 1,
                y > bottom - tall,
                ops.where(side == 2, x_ < left + wide, x_ > right - wide),
            ),
        )
        chosen = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < self.clip
        left_over = x * (1.0 - ops.cast(cut, "float32"))
        top2, bottom2, left2, right2 = _extent(left_over > threshold)
        longer = ops.maximum(bottom - top, right - left) + 1
        scale = longer / (ops.maximum(bottom2 - top2, right2 - left2) + 1)  # >= 1
        (cy, cx), (cy2, cx2) = _centre_of_mass(x), _centre_of_mass(left_over)
        # output pixel p reads the cut digit at its centre + (p - the old centre) / scale
        flat = [ops.reshape(v, (-1,)) for v in (scale, cx, cy, cx2, cy2)]
        scale, cx, cy, cx2, cy2 = flat
        zero = ops.zeros_like(scale)
        transform = ops.stack(
            [1 / scale, zero, cx2 - cx / scale, zero, 1 / scale, cy2 - cy / scale, zero, zero],
            axis=1,
        )
        refitted = ops.image.affine_transform(
            left_over, transform, interpolation="bilinear", fill_mode="constant"
        )
        return ops.where(chosen, refitted, x)

    def _gaps(self, x, batch):
        """1 where the ink stays, 0 inside the gaps (none for the images spared)."""
        height, width = x.shape[1], x.shape[2]
        ink = ops.reshape(x, (batch, height * width))
        picks = keras.random.categorical(
            ops.log(ink + 1e-6), self.GAPS, seed=self.seed_generator
        )  # (batch, gaps): where on the ink each gap is centred
        rows = ops.cast(picks // width, "float32")[:, :, None, None]
        cols = ops.cast(picks % width, "float32")[:, :, None, None]
        grid_y = ops.arange(height, dtype="float32")[None, None, :, None]
        grid_x = ops.arange(width, dtype="float32")[None, None, None, :]
        inside = (grid_y - rows) ** 2 + (grid_x - cols) ** 2 <= self.RADIUS**2
        count = keras.random.randint((batch, 1), 1, self.GAPS + 1, seed=self.seed_generator)
        used = ops.arange(self.GAPS)[None, :] < count  # (batch, gaps)
        gapped = ops.logical_and(
            ops.logical_and(inside, used[:, :, None, None]),
            (keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < self.erase),
        )
        return 1.0 - ops.cast(ops.any(gapped, axis=1), "float32")[..., None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "stroke": self.stroke,
            "erase": self.erase,
            "clip": self.clip,
            "blur": self.blur,
            "seed": self.seed,
        }


def _extent(inked):
    """First and last inked row and column of each image, each (batch, 1, 1, 1) (the whole
    image for one with no ink)."""
    height, width = inked.shape[1], inked.shape[2]
    rows = ops.cast(ops.any(inked, axis=(2, 3)), "float32")  # (batch, height)
    cols = ops.cast(ops.any(inked, axis=(1, 3)), "float32")  # (batch, width)

    def ends(line, size):
        first = ops.cast(ops.argmax(line, axis=1), "float32")
        last = size - 1 - ops.cast(ops.argmax(ops.flip(line, axis=1), axis=1), "float32")
        return first[:, None, None, None], last[:, None, None, None]

    return (*ends(rows, height), *ends(cols, width))


def _centre_of_mass(x):
    """Each image's centre of mass (row, column), each (batch, 1, 1, 1)."""
    height, width = x.shape[1], x.shape[2]
    mass = ops.sum(x, axis=(1, 2, 3), keepdims=True) + 1e-6
    y = ops.arange(height, dtype="float32")[None, :, None, None]
    x_ = ops.arange(width, dtype="float32")[None, None, :, None]
    return ops.sum(x * y, axis=(1, 2, 3), keepdims=True) / mass, ops.sum(
        x * x_, axis=(1, 2, 3), keepdims=True
    ) / mass


def is_augmentation(layer) -> bool:
    """Keras's random layers and ours: training-only, identity at inference."""
    return type(layer).__name__.startswith("Random")


def without_augmentation(network: keras.Model) -> keras.Model:
    """The network without its augmentation layers: the same layers and weights otherwise.

    Only a chain of layers (a Sequential, or a functional model in which every layer takes
    one tensor) can lose layers this way; augmentation inside a branching model is left
    where it is (identity at inference all the same).
    """
    layers = [layer for layer in network.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not any(is_augmentation(layer) for layer in layers) or not _is_chain(network, layers):
        return network
    return keras.Sequential(
        [keras.Input(shape=network.inputs[0].shape[1:])]
        + [layer for layer in layers if not is_augmentation(layer)],
        name=network.name,
    )


def _is_chain(network: keras.Model, layers: list) -> bool:
    if isinstance(network, keras.Sequential):
        return True
    one_each = all(not isinstance(layer.input, (list, tuple, dict)) for layer in layers)
    return len(network.inputs) == 1 and len(network.outputs) == 1 and one_each
