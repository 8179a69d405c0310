"""model_meta.json: one dataclass writes and reads it, and reading needs no TensorFlow or Keras."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_reading_meta_imports_neither_tensorflow_nor_keras(exported_meta_dir):
    code = (
        "import sys\n"
        "from keras_hrf.device import load_meta\n"
        f"meta = load_meta({str(exported_meta_dir)!r})\n"
        "x = meta.features_to_input(__import__('numpy').zeros(meta.input_shape[1:3], 'float32'))\n"
        "assert x.shape == meta.input_shape and x.dtype.name == 'int8'\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print('loaded:', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_written_document_is_the_dataclass(exported_meta_dir):
    from keras_hrf.device import ModelMeta, load_meta

    doc = json.loads((exported_meta_dir / "model_meta.json").read_text())
    meta = load_meta(exported_meta_dir)
    assert meta.to_dict() == doc  # written and read through the same schema
    assert ModelMeta.from_dict(meta.to_dict()).to_dict() == doc
    assert meta.schema_version == 1 and meta.path == exported_meta_dir


@pytest.fixture(scope="module")
def exported_meta_dir(stream_model):
    return stream_model.export_dir
