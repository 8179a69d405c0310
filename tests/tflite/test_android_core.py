"""The Android app's ``core`` module (pure Kotlin) against golden vectors written by Python.

There is no Android SDK and no Maven repository in CI, so the real Kotlin compiler comes from npm
(``kotlin-compiler``, pinned in ``tflite/android/ci/package-lock.json``) and JUnit 4 from Debian
(``junit4``, ``libhamcrest-java``); ``.ci/run`` installs both. This test

1. starts compiling ``core`` and its JUnit tests with ``kotlinc`` (in the background: it takes
   ~25-50 s, as long as the rest together);
2. writes golden vectors for the tiny exported model of the ``stream_model`` fixture: for a few
   synthetic WAV files (always) and real RAVDESS files (when ``KERAS_HRF_RAVDESS`` is set), the
   signal, float log-Mel, fixed-length features, normalised features, int8 input, LiteRT's int8
   output and label, ``keras_hrf.device.stream`` windows; plus the mel filters, front-end variants,
   smoothing cases, quantization ties and ``model_meta.json`` variants with Python's verdict;
3. runs the Kotlin tests with ``JUnitCore`` and prints ``Kotlin core: N passed, M failed, K
   skipped`` and the measured differences (``METRIC`` lines) to the CI log.

It skips, saying what to install, only when ``kotlinc``, ``java`` or JUnit are missing.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import time
import types
import wave
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ANDROID = REPO / "tflite" / "android"
CI_DIR = ANDROID / "ci"
KOTLIN_HOME = CI_DIR / "node_modules" / "kotlin-compiler"
JAVA_LIBS = Path("/usr/share/java")
MAIN_CLASS = "org.kerashrf.ser.core.CoreTestMainKt"
RAVDESS_ENV = "KERAS_HRF_RAVDESS"

#: The Kotlin suite has 45 tests; fewer passing means tests were lost (e.g. a class that no longer
#: compiles into the scanned package), not that everything is fine.
MIN_KOTLIN_TESTS = 45
#: Real RAVDESS files among the golden vectors when the corpus is available.
RAVDESS_FILES = 3
#: Stream settings of the timeline golden vectors (those of ``keras-hrf stream``).
STREAM_HOP, STREAM_SMOOTH, STREAM_SMOOTHING = 0.5, 3, "median"
#: A synthetic take the ``stream_model`` fixture did not train on (it uses takes 0-19, see
#: ``STREAM_TRAIN_TAKES`` in tests/conftest.py).
HELD_OUT_TAKE = 20

SUMMARY = re.compile(r"Kotlin core: (\d+) passed, (\d+) failed, (\d+) skipped")


# ------------------------------------------------------------------------------ toolchain


def _toolchain() -> types.SimpleNamespace:
    """Paths of kotlinc, java and the JUnit jars; skip, naming the install step, if missing."""
    kotlinc = KOTLIN_HOME / "bin" / "kotlinc"
    if not kotlinc.is_file():
        pytest.skip(f"kotlinc not installed: run `npm ci --prefix {CI_DIR.relative_to(REPO)}`")
    java = shutil.which("java")
    if java is None:
        pytest.skip("java not found: install a JDK >= 17 (e.g. apt-get install openjdk-17-jdk)")
    junit = JAVA_LIBS / "junit4.jar"
    hamcrest = [
        p for p in (JAVA_LIBS / "hamcrest.jar", JAVA_LIBS / "hamcrest-core.jar") if p.is_file()
    ]
    if not junit.is_file() or not hamcrest:
        pytest.skip("JUnit 4 not installed: apt-get install -y junit4 libhamcrest-java")
    return types.SimpleNamespace(
        kotlinc=kotlinc,
        java=java,
        stdlib=KOTLIN_HOME / "lib" / "kotlin-stdlib.jar",
        test_jars=[junit, *hamcrest],
    )


class _Compilation:
    """``kotlinc`` running in the background; :meth:`wait` returns the class folder."""

    def __init__(self, tools, out: Path):
        self.out = out / "classes"
        self.log = out / "kotlinc.log"
        sources = [
            ANDROID / "core" / "src" / "main" / "kotlin",
            ANDROID / "core" / "src" / "test" / "kotlin",
        ]
        cmd = [
            str(tools.kotlinc),
            # C1 only: kotlinc is a short-lived JVM, and the C2 compiler's warm-up doubled the
            # compile time (measured 53 s -> 26 s on the shared 2-core VM).
            "-J-XX:TieredStopAtLevel=1",
            "-jvm-target",
            "17",
            "-cp",
            os.pathsep.join(str(p) for p in tools.test_jars),
            "-d",
            str(self.out),
            *map(str, sources),
        ]
        self.started = time.perf_counter()
        self._log_file = open(self.log, "wb")  # the child writes it; closed by wait() or stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT)
        self.seconds: float | None = None

    def wait(self, timeout: float = 300) -> Path:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        finally:
            self._log_file.close()
        self.seconds = time.perf_counter() - self.started
        log = self.log.read_text(errors="replace")
        assert rc == 0, f"kotlinc failed (exit {rc}):\n{log[-6000:]}"
        return self.out

    def stop(self) -> None:
        """Kills a compiler still running (the test failed before waiting for it)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()


@pytest.fixture(scope="module")
def toolchain():
    return _toolchain()


@pytest.fixture(scope="module")
def kotlin_build(toolchain, tmp_path_factory):
    """Starts compiling ``core`` + tests now; the test waits for it after writing the vectors."""
    build = _Compilation(toolchain, tmp_path_factory.mktemp("kotlin_core"))
    yield build
    build.stop()


# -------------------------------------------------------------------------- golden vectors


def _f32(path: Path, values) -> str:
    np.asarray(values, dtype="<f4").tofile(path)
    return path.name


def _f64(path: Path, values) -> str:
    np.asarray(values, dtype="<f8").tofile(path)
    return path.name


def _i8(path: Path, values) -> str:
    np.asarray(values, dtype=np.int8).tofile(path)
    return path.name


def _write_wav(path: Path, pcm: np.ndarray) -> None:
    """16-bit mono 16 kHz PCM with the standard-library writer (plain 44-byte header)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def _to_pcm(signal: np.ndarray) -> np.ndarray:
    # As data_prep.synthetic writes its corpus.
    return np.clip(np.round(np.asarray(signal) * 32767.0), -32768, 32767).astype(np.int16)


def _synthetic_pcm(stream_model) -> dict[str, np.ndarray]:
    """Held-out synthetic utterances of the model's emotions, and edge cases."""
    utt = {e: _to_pcm(stream_model.utterance(e, HELD_OUT_TAKE)) for e in stream_model.labels}
    first = utt[stream_model.labels[0]]
    return {
        **{f"synthetic_{e}": pcm for e, pcm in utt.items()},
        # Two emotions back to back: several stream windows and a segment boundary.
        "synthetic_two_emotions": np.concatenate(
            [utt[stream_model.labels[0]], utt[stream_model.labels[1]]]
        ),
        # Digital silence first: rows at the log floor.
        "synthetic_silence_first": np.concatenate([np.zeros(8000, np.int16), first[:16000]]),
        # Shorter than one window (1 s): padded with silence rows.
        "synthetic_short": first[:6400].copy(),
        # Shorter than one frame (512 samples): zero-padded to one frame.
        "synthetic_tiny": first[4000:4300].copy(),
    }


def _ravdess_pcm() -> dict[str, np.ndarray]:
    """A few real RAVDESS files (FLAC, 16-bit mono 16 kHz) when the corpus is available."""
    import soundfile as sf

    root = os.environ.get(RAVDESS_ENV)
    if not root or not Path(root).is_dir():
        return {}
    files = sorted(Path(root).glob("Actor_*/*.flac")) + sorted(Path(root).glob("Actor_*/*.wav"))
    if not files:
        return {}
    out = {}
    for i in np.linspace(0, len(files) - 1, RAVDESS_FILES).round().astype(int):
        data, rate = sf.read(str(files[i]), dtype="int16", always_2d=True)
        if rate == 16000 and data.shape[1] == 1:  # the lossless int16 samples, unchanged
            out[f"ravdess_{files[i].stem}"] = data[:, 0]
    return out


def _meta_variants(meta_doc: dict, out: Path) -> tuple[list[dict], list[dict]]:
    """``model_meta.json`` variants and Python's verdict (``load_meta``) on each."""
    from keras_hrf.device import MetaError, load_meta

    def edited(fn):
        doc = copy.deepcopy(meta_doc)
        fn(doc)
        return doc

    valid = {
        "htk_mel": edited(lambda d: d["feature_params"].update(mel="htk")),
        "crop_start_pad_zero": edited(
            lambda d: d["feature_params"].update(crop="start", pad_value=0.0)
        ),
    }
    invalid = {
        # name: (document or text, a word the Kotlin error must contain)
        "missing_input_scale": (edited(lambda d: d["input"].pop("scale")), "input.scale"),
        "missing_ops": (edited(lambda d: d.pop("ops")), "ops"),
        "newer_schema": (edited(lambda d: d.update(schema_version=99)), "schema_version"),
        "misspelt_param": (edited(lambda d: d["feature_params"].update(n_mel=64)), "n_mel"),
        "n_fft_not_pow2": (edited(lambda d: d["feature_params"].update(n_fft=500)), "n_fft"),
        "bad_crop": (edited(lambda d: d["feature_params"].update(crop="middle")), "crop"),
        "label_missing": (edited(lambda d: d["labels"].pop()), "labels"),
        "normalizer_short": (
            edited(lambda d: [d["normalizer"][k].pop() for k in ("mean", "std")]),
            "mel bands",
        ),
        "zero_std": (edited(lambda d: d["normalizer"]["std"].__setitem__(0, 0.0)), "std > 0"),
        "truncated": (json.dumps(meta_doc)[:200], "not valid JSON"),
        "not_an_object": ([meta_doc], "expected a JSON object"),
    }
    valid_out, invalid_out = [], []
    for name, doc in valid.items():
        path = out / f"meta_valid_{name}.json"
        path.write_text(json.dumps(doc, indent=2))
        m = load_meta(path)  # Python accepts it
        p = m.feature_params
        valid_out.append(
            {
                "name": name,
                "file": path.name,
                "feature_params": {
                    "mel": p.mel,
                    "crop": p.crop,
                    "fill_value": p.fill_value,
                    "frames": p.frames,
                },
            }
        )
    for name, (doc, expect) in invalid.items():
        path = out / f"meta_invalid_{name}.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
        with pytest.raises(MetaError):  # Python rejects it: so must Kotlin
            load_meta(path)
        invalid_out.append({"name": name, "file": path.name, "expect": expect})
    return valid_out, invalid_out


def _frontend_variants(meta_doc: dict, signal: np.ndarray, out: Path) -> list[dict]:
    """Log-Mel of one signal under other feature parameters, each with a meta Kotlin can load."""
    from data_prep.features import FeatureParams, fix_length, log_mel

    variants = {
        "htk_power2_40mels": FeatureParams(
            mel="htk", power=2.0, n_mels=40, fmin=50.0, fmax=7600.0, frames=60
        ),
        "center_nfft1024": FeatureParams(
            n_fft=1024, win_length=1024, hop_length=256, center=True, n_mels=80, frames=200
        ),
        "small_start_pad0": FeatureParams(
            n_fft=256,
            win_length=200,
            hop_length=80,
            n_mels=32,
            crop="start",
            pad_value=0.0,
            frames=50,
            log_offset=1e-3,
        ),
    }
    result = []
    for name, p in variants.items():
        doc = copy.deepcopy(meta_doc)
        doc["feature_params"] = p.to_dict()
        doc["normalizer"].update(mean=[0.0] * p.n_mels, std=[1.0] * p.n_mels)
        doc["input"]["shape"] = [1, p.frames, p.n_mels]
        meta_path = out / f"variant_{name}.json"
        meta_path.write_text(json.dumps(doc, indent=2))
        full = log_mel(signal, p)
        result.append(
            {
                "name": name,
                "meta": meta_path.name,
                "frames_full": int(full.shape[0]),
                "logmel_full": _f32(out / f"variant_{name}.logmel.f32", full),
                "features": _f32(out / f"variant_{name}.features.f32", fix_length(full, p)),
            }
        )
    return result


def _smoothing_cases(labels) -> list[dict]:
    """Random posteriors (and exact ties) through ``smooth_posteriors`` and ``segments_from``."""
    from keras_hrf.device import stream

    rng = np.random.default_rng(9)
    logits = rng.normal(0, 1.5, (11, len(labels)))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ties = np.array([[0.4, 0.4, 0.2]] * 3 + [[0.2, 0.4, 0.4]] * 2 + [[1 / 3] * 3] * 2)
    cases = []
    for posteriors in (p.astype(np.float32), ties[:, : len(labels)].astype(np.float32)):
        centres = 0.5 + 0.5 * np.arange(len(posteriors))
        duration = float(centres[-1] + 1.0)
        for smooth in (1, 2, 3, 4, 5):
            for mode in ("median", "ema"):
                s = stream.smooth_posteriors(posteriors, smooth, mode)
                segs = stream.segments_from(s, centres, labels, duration)
                cases.append(
                    {
                        "smooth": smooth,
                        "mode": mode,
                        "labels": list(labels),
                        "posteriors": posteriors.tolist(),
                        "smoothed": s.tolist(),
                        "centres": centres.tolist(),
                        "duration": duration,
                        "segments": [
                            {
                                "label": g.label,
                                "start": g.start,
                                "end": g.end,
                                "confidence": g.confidence,
                                "windows": g.windows,
                            }
                            for g in segs
                        ],
                    }
                )
    return cases


def _quantize_cases() -> dict:
    """Exact ties, clamping and random values through Python's ``quantize``."""
    from data_prep import int8 as quant

    scale, zp = 0.25, -3
    x = np.concatenate(
        [
            np.arange(-40, 41) * 0.125,  # x / 0.25 = k / 2: every other value is a tie
            [-1000.0, 1000.0, 31.5, 31.625, -32.75, -33.0],
            np.random.default_rng(3).normal(0, 12, 200),
        ]
    ).astype(np.float32)
    return {
        "scale": scale,
        "zero_point": zp,
        "x": x.tolist(),
        "q": quant.quantize(x, scale, zp).tolist(),
    }


def write_golden(stream_model, out: Path) -> dict:
    """Write every golden vector into ``out``; returns the index (also ``out/golden.json``)."""
    from data_prep import int8 as quant
    from data_prep.audio import load_audio
    from data_prep.features import fix_length, log_mel, mel_filters, window
    from keras_hrf.device import FILES, load_meta, stream
    from keras_hrf.device.runtimes import run_litert

    export = Path(stream_model.export_dir)
    shutil.copy(export / FILES["meta"], out / "model_meta.json")
    shutil.copy(export / FILES["int8"], out / "model_int8.tflite")
    meta = load_meta(export)
    meta_doc = json.loads((export / FILES["meta"]).read_text())
    params = meta.feature_params
    int8_bytes = (export / FILES["int8"]).read_bytes()

    pcm = {**_synthetic_pcm(stream_model), **_ravdess_pcm()}
    files = []
    for name, samples in pcm.items():
        wav = out / f"{name}.wav"
        _write_wav(wav, samples)
        # Read back the way the training pipeline reads audio (libsndfile: int16 / 32768).
        signal = load_audio(wav, params.sample_rate, min_duration=0.0)
        full = log_mel(signal, params)
        feats = fix_length(full, params)
        x = meta.features_to_input(feats)  # [1, frames, n_mels] int8
        output = run_litert(int8_bytes, x)[0][0]
        logits = meta.logits(output).astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()

        # The stream: keras_hrf.device.stream for windows and centres; the int8 rows of the whole
        # recording through the training front-end, padded like the stream pads.
        st = stream.classify_stream(
            signal, meta, hop=STREAM_HOP, smooth=STREAM_SMOOTH, smoothing=STREAM_SMOOTHING
        )
        rows = quant.quantize(
            meta.normalizer.transform(full), meta.input_scale, meta.input_zero_point
        )
        if len(rows) < params.frames:
            floor = quant.quantize(
                meta.normalizer.transform(np.full((1, params.n_mels), params.fill_value)),
                meta.input_scale,
                meta.input_zero_point,
            )
            rows = np.concatenate([rows, np.repeat(floor, params.frames - len(rows), axis=0)])
        files.append(
            {
                "name": name,
                "source": name.split("_")[0],
                "wav": wav.name,
                "samples": int(signal.size),
                "signal": _f32(out / f"{name}.signal.f32", signal),
                "frames_full": int(full.shape[0]),
                "logmel_full": _f32(out / f"{name}.logmel.f32", full),
                "features": _f32(out / f"{name}.features.f32", feats),
                "normalized": _f32(
                    out / f"{name}.normalized.f32", meta.normalizer.transform(feats)
                ),
                "input": _i8(out / f"{name}.input.i8", x[0]),
                "output": _i8(out / f"{name}.output.i8", output),
                "label": meta.label_of(output),
                "label_index": int(np.asarray(output).argmax()),
                "probabilities": probs.tolist(),
                "stream": {
                    "hop": STREAM_HOP,
                    "smooth": STREAM_SMOOTH,
                    "smoothing": STREAM_SMOOTHING,
                    "hop_rows": max(1, round(STREAM_HOP * params.sample_rate / params.hop_length)),
                    "centres": st.centres.tolist(),
                    "window_seconds": st.window,
                    "hop_seconds": st.hop,
                    "duration": st.duration,
                    "rows": _i8(out / f"{name}.rows.i8", rows),
                },
            }
        )

    valid, invalid = _meta_variants(meta_doc, out)
    variant_signal = load_audio(out / files[0]["wav"], params.sample_rate, min_duration=0.0)
    variant_signal = variant_signal[:20800]  # 1.3 s
    index = {
        "model_meta": "model_meta.json",
        "meta_expect": {
            "labels": list(meta.labels),
            "input_shape": list(meta.input_shape),
            "input_scale": meta.input_scale,
            "input_zero_point": meta.input_zero_point,
            "output_scale": meta.output_scale,
            "output_zero_point": meta.output_zero_point,
            "frames": params.frames,
            "n_mels": params.n_mels,
            "fill_value": params.fill_value,
            "arena_recommended_bytes": meta.arena_bytes,
            "ops": list(meta.ops),
            "normalizer_mean": [float(v) for v in meta.normalizer.mean],
            "normalizer_std": [float(v) for v in meta.normalizer.std],
        },
        "window": _f64(out / "window.f64", window(params)),
        "mel_filters": _f32(out / "mel_filters.f32", mel_filters(params)),
        "files": files,
        "meta_valid": valid,
        "meta_invalid": invalid,
        "variant_signal": _f32(out / "variant_signal.f32", variant_signal),
        "frontend_variants": _frontend_variants(meta_doc, variant_signal, out),
        "smoothing": _smoothing_cases(meta.labels),
        "quantize_cases": _quantize_cases(),
    }
    (out / "golden.json").write_text(json.dumps(index, indent=1))
    return index


# ------------------------------------------------------------------------------------ tests


def test_kotlin_compiler_is_pinned_by_a_lockfile():
    """The CI compiler is one exact version, locked with its integrity hash."""
    package = json.loads((CI_DIR / "package.json").read_text())
    lock = json.loads((CI_DIR / "package-lock.json").read_text())
    version = package["devDependencies"]["kotlin-compiler"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"pin an exact version, not {version!r}"
    locked = lock["packages"]["node_modules/kotlin-compiler"]
    assert locked["version"] == version and locked["integrity"].startswith("sha512-")


def test_kotlin_core_against_python_golden_vectors(
    toolchain, kotlin_build, stream_model, tmp_path, capsys
):
    # KERAS_HRF_GOLDEN_OUT keeps the vectors, e.g. for `./gradlew :core:test -PkerasHrfGolden=DIR`.
    keep = os.environ.get("KERAS_HRF_GOLDEN_OUT")
    golden_dir = Path(keep) if keep else tmp_path
    golden_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    golden = write_golden(stream_model, golden_dir)
    golden_s = time.perf_counter() - t0
    sources = {f["source"] for f in golden["files"]}
    assert "synthetic" in sources
    if os.environ.get(RAVDESS_ENV):
        assert "ravdess" in sources, f"{RAVDESS_ENV} is set but no RAVDESS file was usable"

    classes = kotlin_build.wait()
    t1 = time.perf_counter()
    classpath = os.pathsep.join(map(str, [classes, toolchain.stdlib, *toolchain.test_jars]))
    proc = subprocess.run(
        [toolchain.java, "-XX:TieredStopAtLevel=1", "-cp", classpath, MAIN_CLASS],
        env={**os.environ, "KERAS_HRF_GOLDEN": str(golden_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    run_s = time.perf_counter() - t1
    out = proc.stdout + proc.stderr
    summary = SUMMARY.search(out)
    metrics = [line for line in out.splitlines() if line.startswith("METRIC ")]
    with capsys.disabled():  # the count belongs in the CI log even when the test passes
        print()
        for line in metrics:
            print(f"  {line}")
        print(
            f"  golden vectors: {len(golden['files'])} files ({', '.join(sorted(sources))}) in "
            f"{golden_s:.1f} s; kotlinc {kotlin_build.seconds:.1f} s; JUnit {run_s:.1f} s"
        )
        print(f"  {summary.group(0) if summary else 'Kotlin core: no summary line'}")
    assert summary, f"no summary line from the Kotlin test runner (exit {proc.returncode}):\n{out}"
    passed, failed, skipped = map(int, summary.groups())
    failures = "\n".join(line for line in out.splitlines() if line.startswith(("FAIL", "----")))
    assert failed == 0, f"{failed} Kotlin test(s) failed:\n{out[-8000:]}"
    assert skipped == 0, f"{skipped} Kotlin test(s) skipped although golden vectors exist:\n{out}"
    assert passed >= MIN_KOTLIN_TESTS, f"only {passed} Kotlin tests passed:\n{failures or out}"
    assert proc.returncode == 0, out[-4000:]
