"""Measure training throughput (images/s) of chapter architectures on this machine."""

import json
import time

import keras
import numpy as np

from cifar_lessons.models import augmentation_block, build_cnn


def measure(model_kwargs, batch_size, precision="float32", steps=12, augment=False):
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_cnn(**model_kwargs, augmentation=augmentation_block() if augment else None)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    x = np.random.randint(0, 256, (batch_size * (steps + 3), 32, 32, 3)).astype("float32")
    y = np.random.randint(0, 10, len(x))
    model.fit(x[: batch_size * 3], y[: batch_size * 3], batch_size=batch_size, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x[batch_size * 3:], y[batch_size * 3:], batch_size=batch_size, epochs=1, verbose=0)
    return batch_size * steps / (time.perf_counter() - start)


if __name__ == "__main__":
    small = dict(widths=(32, 64, 64), convs_per_stage=1, dense_units=64)
    vgg = dict(widths=(32, 64, 128), convs_per_stage=2, dense_units=128)
    vgg_bn = dict(vgg, batch_norm=True)
    for label, kwargs, batch, precision, augment in [
        ("small", small, 128, "float32", False),
        ("vgg", vgg, 128, "float32", False),
        ("vgg_bn", vgg_bn, 128, "float32", False),
        ("vgg_bn", vgg_bn, 256, "float32", False),
        ("vgg_bn", vgg_bn, 512, "float32", False),
        ("vgg_bn", vgg_bn, 256, "mixed_bfloat16", False),
        ("vgg_bn_aug", vgg_bn, 256, "float32", True),
    ]:
        rate = measure(kwargs, batch, precision, augment=augment)
        print(json.dumps(dict(model=label, batch=batch, precision=precision, images_per_s=round(rate))), flush=True)
