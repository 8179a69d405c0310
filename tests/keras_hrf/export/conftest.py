"""Session fixtures of the export tests: the synthetic corpus normalised, and a briefly trained
light model of every family with its int8 flatbuffer (shared with the firmware tests)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from support.models import perturb, train_briefly
from support.shared import once_per_run

from keras_hrf import models, reparam, tflite

FAMILIES = list(models.FAMILIES)


@pytest.fixture(scope="session")
def corpus(synthetic_features):
    """Normalised synthetic features, labels, and what produced them."""
    from data_prep.features import Normalizer

    feats, manifest, params = synthetic_features
    normalizer = Normalizer.fit(feats, params)
    labels = sorted(manifest["emotion"].unique())
    y = np.array([labels.index(e) for e in manifest["emotion"]])
    return {
        "x": normalizer.transform(feats),
        "y": y,
        "labels": labels,
        "manifest": manifest,
        "params": params,
        "normalizer": normalizer,
    }


@pytest.fixture(scope="session")
def light(corpus, tmp_path_factory):
    """Per family: trained+merged HRF light model, a plain light model, their int8 models.

    Built once per test run (~1 min on 2 cores): test_export.py and test_firmware_report.py
    both use it, and may run on different xdist workers.
    """
    x, y, n = corpus["x"], corpus["y"], len(corpus["labels"])

    def build():
        out = {}
        for family in FAMILIES:
            hrf = train_briefly(
                models.build(family, "light", hrf=True, num_classes=n, seed=0), x, y
            )
            merged = reparam.merge(hrf)
            plain = perturb(models.build(family, "light", num_classes=n, seed=1))
            out[family] = {
                "merged": merged,
                "plain": plain,
                "int8": tflite.convert(merged, x, num_samples=48),
                "plain_int8": tflite.convert(plain, x, num_samples=8),  # ops and size only
            }
        return out

    def save(out, folder):
        for family, m in out.items():
            for key in ("merged", "plain"):
                m[key].save(folder / f"{family}_{key}.keras")
            for key in ("int8", "plain_int8"):
                (folder / f"{family}_{key}.tflite").write_bytes(m[key])

    def load(folder):
        return {
            family: {
                **{
                    k: keras.models.load_model(folder / f"{family}_{k}.keras")
                    for k in ("merged", "plain")
                },
                **{
                    k: (folder / f"{family}_{k}.tflite").read_bytes()
                    for k in ("int8", "plain_int8")
                },
            }
            for family in FAMILIES
        }

    return once_per_run(tmp_path_factory, "export_light_models", build, save, load)
