"""Keras layer names and Keras 1 and 2 spellings, as layer lists use them; no Keras here.

Tutorials were written for the Keras of their day. Keras 3 took out some spellings that
Keras 2 still understood (Convolution2D(32, 3, 3), border_mode=, AveragePooling2D() with no
pool_size); `modernised` writes a call the way Keras 3 takes it, for the network Keras 2
would have built. The known names let a misspelt one get "did you mean" before Keras loads.
"""

from __future__ import annotations

import difflib

# keras.layers classes that a layer list may not name: they wrap code (Lambda, TFSMLayer,
# the Torch/JAX/Flax wrappers), wrap other layers (a nested call), or read files.
REFUSED_LAYERS = frozenset(
    {"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer", "Layer", "Wrapper"}
    | {"Bidirectional", "TimeDistributed", "RNN", "StackedRNNCells", "Pipeline"}
    | {"TextVectorization", "StringLookup", "IntegerLookup", "Hashing"}
)
# keras.layers' single-input layers (Keras 3.15), to suggest a name before Keras loads; a
# name not here is still looked up in keras.layers itself (architecture.py).
KNOWN_LAYERS = frozenset(
    """Activation ActivityRegularization AlphaDropout AveragePooling1D AveragePooling2D
    AveragePooling3D AvgPool1D AvgPool2D AvgPool3D BatchNormalization CenterCrop Conv1D
    Conv1DTranspose Conv2D Conv2DTranspose Conv3D Conv3DTranspose Convolution1D Convolution2D
    Convolution3D Cropping1D Cropping2D Cropping3D Dense DepthwiseConv1D DepthwiseConv2D
    Dropout ELU EinsumDense Flatten GaussianDropout GaussianNoise GlobalAveragePooling1D
    GlobalAveragePooling2D GlobalAveragePooling3D GlobalAvgPool2D GlobalMaxPool2D
    GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization Identity Input
    InputLayer LayerNormalization LeakyReLU MaxPool1D MaxPool2D MaxPool3D MaxPooling1D
    MaxPooling2D MaxPooling3D PReLU Permute RandomRotation RandomTranslation RandomZoom ReLU
    Rescaling Reshape Resizing SeparableConv1D SeparableConv2D Softmax SpatialDropout1D
    SpatialDropout2D SpatialDropout3D UnitNormalization UpSampling1D UpSampling2D UpSampling3D
    ZeroPadding1D ZeroPadding2D ZeroPadding3D""".split()
)
# Keras 1 and 2 spellings that Keras 3 no longer takes, and what Keras 2 built for them.
RENAMED_LAYERS = {
    "Deconvolution2D": "Conv2DTranspose",
    "Deconv2D": "Conv2DTranspose",
    "Deconvolution3D": "Conv3DTranspose",
    "Deconv3D": "Conv3DTranspose",
}
RENAMED_ARGUMENTS = {  # Keras 1 keywords, which Keras 2 still converted
    "border_mode": "padding",
    "subsample": "strides",
    "nb_filter": "filters",
    "output_dim": "units",
    "init": "kernel_initializer",
    "W_regularizer": "kernel_regularizer",
    "b_regularizer": "bias_regularizer",
    "bias": "use_bias",
    "dim_ordering": "data_format",
}
DATA_FORMATS = {"tf": "channels_last", "th": "channels_first"}
DROPPED_ARGUMENTS = {"BatchNormalization": {"fused"}, "Embedding": {"input_length"}}
POOLING_DEFAULTS = {  # Keras 2's pool_size when none was given; Keras 3 requires one
    **dict.fromkeys(("AveragePooling1D", "AvgPool1D", "MaxPooling1D", "MaxPool1D"), 2),
    **dict.fromkeys(("AveragePooling2D", "AvgPool2D", "MaxPooling2D", "MaxPool2D"), (2, 2)),
    **dict.fromkeys(("AveragePooling3D", "AvgPool3D", "MaxPooling3D", "MaxPool3D"), (2, 2, 2)),
}
CONVOLUTIONS_2D = ("Conv2D", "Convolution2D")


def suggestion(name: str, names) -> str | None:
    """The allowed name meant by a misspelt one (Conv2d, Maxpooling2D, Dense2), if clear."""
    by_case = {known.lower(): known for known in names}
    if name.lower() in by_case:
        return by_case[name.lower()]
    close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.7)
    return close[0] if close else None


def modernised(name: str, args: tuple, kwargs: dict) -> tuple[str, tuple, dict]:
    """A layer call as Keras 2 read it, in Keras 3's terms: the network Keras 2 would build.

    Keras 1 keywords (border_mode=, output_dim=...), Convolution2D(32, 3, 3), a pooling
    layer without pool_size, and arguments Keras 3 dropped (BatchNormalization(fused=)).
    """
    name = RENAMED_LAYERS.get(name, name)
    kwargs = {RENAMED_ARGUMENTS.get(key, key): value for key, value in kwargs.items()}
    if "data_format" in kwargs:
        kwargs["data_format"] = DATA_FORMATS.get(kwargs["data_format"], kwargs["data_format"])
    if name == "Dropout" and "p" in kwargs:
        kwargs["rate"] = kwargs.pop("p")
    for key in DROPPED_ARGUMENTS.get(name, ()):
        kwargs.pop(key, None)
    if name in CONVOLUTIONS_2D:
        if len(args) == 3 and all(type(a) is int for a in args):  # Keras 1: filters, rows, cols
            args = (args[0], (args[1], args[2]))
        if "nb_row" in kwargs and "nb_col" in kwargs:
            kwargs["kernel_size"] = (kwargs.pop("nb_row"), kwargs.pop("nb_col"))
    if name in POOLING_DEFAULTS and not args and "pool_size" not in kwargs:
        kwargs["pool_size"] = POOLING_DEFAULTS[name]
    return name, args, kwargs
