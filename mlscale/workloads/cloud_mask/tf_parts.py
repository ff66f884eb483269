"""TensorFlow half of cloud-mask: the same U-Net, loss and accuracy as `torch_parts`, in Keras layers
and TF ops (channels last, the layout Keras convolutions use on the CPU).

Convolutions are `same`-padded 3x3 with ReLU and He-normal kernels (the seed's `he_normal`), zero
biases; 2x2 max-pooling; 2x nearest upsampling; 1x1 head giving logits. 1,948,609 parameters at
width 32. The loss is `tf.nn.weighted_cross_entropy_with_logits` with pos_weight 0.5 on the patch
less its border, as in the seed's TensorFlow code.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import mlscale.engines.tensorflow  # noqa: F401  (quiet TensorFlow start-up, before the import)


def build_model(channels: int, width: int, seed: int, channels_last: bool = True) -> keras.Model:
    """The U-Net; always channels last (`channels_last` is there to match `torch_parts.build_model`)."""
    keras.utils.set_random_seed(seed)  # the same initial weights on every rank and in every run
    layers = keras.layers

    def block(x, filters: int):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal")(x)
        return x

    inputs = keras.Input((None, None, channels))
    x, skips = inputs, []
    for filters in (width, 2 * width, 4 * width):
        x = block(x, filters)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = block(x, 8 * width)
    for filters, skip in zip((4 * width, 2 * width, width), reversed(skips)):
        x = block(layers.Concatenate()([layers.UpSampling2D(2)(x), skip]), filters)
    return keras.Model(inputs, layers.Conv2D(1, 1)(x), name="unet")


def adam(params, lr: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=lr)  # the seed's Adam; Keras finds the variables itself


def inner(t: tf.Tensor, border: int) -> tf.Tensor:
    """An (N, P, P, 1) map cropped by `border` pixels per side."""
    return t[:, border : tf.shape(t)[1] - border, border : tf.shape(t)[2] - border, :] if border else t


def loss(logits: tf.Tensor, labels: tf.Tensor, border: int, pos_weight: float) -> tf.Tensor:
    bce = tf.nn.weighted_cross_entropy_with_logits(inner(labels, border), inner(logits, border), pos_weight)
    return tf.reduce_mean(bce)


def accuracy(logits: tf.Tensor, labels: tf.Tensor, border: int) -> tf.Tensor:
    hit = tf.cast(inner(logits, border) > 0, tf.float32) == inner(labels, border)
    return tf.reduce_mean(tf.cast(hit, tf.float32))


def to_tensor(array: np.ndarray, nhwc: bool = True) -> tf.Tensor:
    assert nhwc, "Keras convolutions here take NHWC batches"
    return tf.convert_to_tensor(array)


def move(t: tf.Tensor, device) -> tf.Tensor:
    """Onto the rank's device (the engine's DeviceChoice: the one visible GPU, or the CPU)."""
    with tf.device("/GPU:0" if getattr(device, "type", "cpu") == "cuda" else "/CPU:0"):
        return tf.identity(t)


def predict(model: keras.Model, patches: tf.Tensor, batch: int) -> np.ndarray:
    """(n, P, P) cloud probabilities for (n, P, P, 9) patches, `batch` at a time."""
    out = [tf.sigmoid(model(patches[i : i + batch], training=False))[..., 0] for i in range(0, len(patches), batch)]
    return tf.concat(out, 0).numpy()
