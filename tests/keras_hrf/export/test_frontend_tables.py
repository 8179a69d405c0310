"""``frontend_tables.h/.c`` of an export: they hold the Python front-end's tables exactly, compile
as C and C++, refuse to pair with another export's model, and ``audio_main.cc`` compiles
against them (TFLM and CMSIS-DSP from the declaration-only stubs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from support.tflm import include_args, needs_cmsis_dsp, needs_gxx, needs_tflm

from data_prep.device_frontend import fold_input_quantization, mel_tables
from data_prep.features import FeatureParams, Normalizer
from keras_hrf import tflite
from keras_hrf.export import csource, frontend_tables

AUDIO_MAIN = Path(__file__).parents[3] / "tflite" / "micro" / "audio_main.cc"


def _compiler(cmd: list[str], source: Path, *include_dirs: Path):
    args = [*cmd, "-Wall", "-Wextra", "-Werror", "-c", str(source), "-o", os.devnull]
    for d in include_dirs:
        args += ["-I", str(d)]
    return subprocess.run(args + include_args(dsp=True), capture_output=True, text=True)


def _array(text: str, name: str, dtype) -> np.ndarray:
    body = re.search(rf"\b{name}\[\]\s*=\s*\{{(.*?)\}};", text, re.S)
    assert body, f"no array {name}"
    values = [v for v in re.split(r"[,\s]+", body.group(1)) if v]
    if np.dtype(dtype).kind == "f":
        return np.asarray([float(v.rstrip("f")) for v in values], dtype=dtype)
    return np.asarray([int(v) for v in values], dtype=dtype)


def test_tables_hold_the_python_front_ends_values(stream_model):
    meta = tflite.load_meta(stream_model.export_dir)
    source = (stream_model.export_dir / "frontend_tables.c").read_text()
    header = (stream_model.export_dir / "frontend_tables.h").read_text()
    t = mel_tables(meta.feature_params)
    a, b = fold_input_quantization(
        meta.normalizer.mean, meta.normalizer.std, meta.input_scale, meta.input_zero_point
    )
    expected = {
        "g_frontend_window": t.window,
        "g_frontend_filter_pos": t.filter_pos,
        "g_frontend_filter_len": t.filter_len,
        "g_frontend_filter_coefs": t.filter_coefs,
        "g_frontend_dct_identity": t.dct,
        "g_frontend_input_a": a,
        "g_frontend_input_b": b,
        "g_frontend_norm_mean": meta.normalizer.mean,
        "g_frontend_norm_std": meta.normalizer.std,
        "g_frontend_window_q15": t.window_q15,
        "g_frontend_filter_coefs_q15": t.filter_coefs_q15,
        "g_frontend_q15_shift": t.q15_shift,
        "g_frontend_dct_identity_q15": t.dct_q15,
    }
    for name, values in expected.items():
        # Bit-exact: "%.9e" round-trips float32.
        np.testing.assert_array_equal(_array(source, name, values.dtype), values, err_msg=name)
    p = meta.feature_params
    for macro, value in [("N_FFT", p.n_fft), ("HOP_LENGTH", p.hop_length), ("FRAMES", p.frames)]:
        assert f"#define KERAS_HRF_FRONTEND_{macro} {value}\n" in header
    assert f"#define KERAS_HRF_FRONTEND_INPUT_ZERO_POINT {meta.input_zero_point}\n" in header
    # The folded quantization's measured disagreement with the two-step path is stated.
    differing, total, _ = frontend_tables.folded_mismatch(meta.raw)
    assert f"// {differing} of {total} int8 values differ from the two-step path" in header
    print(f"\nfolded vs two-step quantization on the sweep: {differing} of {total} differ")


@needs_gxx
@needs_tflm
@needs_cmsis_dsp
def test_tables_and_audio_main_compile(stream_model):
    out = stream_model.export_dir
    result = _compiler(["g++", "-std=c++17"], out / "frontend_tables.c", out)
    assert result.returncode == 0, result.stderr
    if shutil.which("gcc"):
        result = _compiler(["gcc", "-std=c11", "-x", "c"], out / "frontend_tables.c", out)
        assert result.returncode == 0, result.stderr
    result = _compiler(["g++", "-std=c++17"], AUDIO_MAIN, out)
    assert result.returncode == 0, result.stderr


@needs_gxx
def test_tables_refuse_another_exports_model(stream_model, tmp_path):
    # model_data.h of a model with 300 frames next to tables made for 100.
    shutil.copy(stream_model.export_dir / "frontend_tables.h", tmp_path)
    shutil.copy(stream_model.export_dir / "frontend_tables.c", tmp_path)
    meta = tflite.load_meta(stream_model.export_dir)
    (tmp_path / "model_data.h").write_text(
        csource.model_data_h(
            num_bytes=16,
            arena_bytes=1024,
            arena_min=1000,
            input_shape=[1, 300, 64],
            input_scale=meta.input_scale,
            input_zero_point=meta.input_zero_point,
            output_scale=0.1,
            output_zero_point=0,
            num_classes=3,
        )
    )
    result = _compiler(["g++", "-std=c++17"], tmp_path / "frontend_tables.c", tmp_path)
    assert result.returncode != 0
    assert "disagree on the number of frames" in result.stderr


@needs_gxx
def test_unsupported_features_give_a_compile_error_not_wrong_tables(tmp_path):
    params = FeatureParams(power=2.0)
    norm = Normalizer(mean=np.zeros(64), std=np.ones(64))
    meta = {
        "feature_params": params.to_dict(),
        "normalizer": norm.to_dict(),
        "input": {"scale": 0.05, "zero_point": 0},
    }
    texts = frontend_tables.sources(meta)
    (tmp_path / "frontend_tables.c").write_text(texts["frontend_c"])
    result = _compiler(["g++", "-std=c++17"], tmp_path / "frontend_tables.c", tmp_path)
    assert result.returncode != 0 and "power == 1.0" in result.stderr
