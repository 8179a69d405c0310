"""extract over a manifest: cache, atomic entries, bad files, helper processes, real data."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from support.signals import REPO, P, reference_log_mel, speechlike

from data_prep.errors import AudioError
from data_prep.features import (
    FeatureParams,
    cache_folder,
    cache_key,
    extract,
    features_of,
    fix_length,
    log_mel,
)
from data_prep.features.cache import atomic_write_bytes
from data_prep.features.pool import (
    _init_worker,
    _main_module_hidden,
    _pool_context,
    _warm_up,
    _worker_modules,
    run_tasks,
)

# ---------------------------------------------------------------- extract


def test_extract_shape_dtype_and_values(good_manifest, tmp_path):
    feats, out = extract(good_manifest, P, workers=1, progress=False)
    assert feats.shape == (4, 300, 64) and feats.dtype == np.float32
    assert out["label"].tolist() == list("abcd") and out.attrs["bad_files"] == []
    for i, path in enumerate(good_manifest["path"]):
        y, _ = sf.read(path, dtype="float32")
        ref = reference_log_mel(y, P)
        n = ref.shape[0]
        if n >= 300:
            ref = ref[(n - 300) // 2 :][:300]
        else:
            ref = np.concatenate([ref, np.full((300 - n, 64), np.log(1e-6))])
        np.testing.assert_allclose(feats[i], ref, rtol=0, atol=1e-5)


def test_extract_cache_hit_and_invalidation(good_manifest, tmp_path):
    # Private copies: one file is rewritten below.
    copies = []
    for src in good_manifest["path"]:
        dst = tmp_path / Path(src).name
        dst.write_bytes(Path(src).read_bytes())
        copies.append(str(dst))
    good_manifest = good_manifest.assign(path=copies)
    cache = tmp_path / "cache"
    first, _ = extract(good_manifest, P, cache_dir=cache, workers=1, progress=False)
    folder = cache_folder(cache, P)
    entries = sorted(folder.glob("*.npy"))
    assert len(entries) == 4
    assert json.loads((folder / "params.json").read_text())["params"] == P.to_dict()
    stamps = {e: e.stat().st_mtime_ns for e in entries}

    # Replace one entry with a recognisable (valid) array: a cache hit must return it verbatim,
    # which proves the second call read the cache instead of recomputing.
    marked = entries[0]
    np.save(marked, np.full((300, 64), 1.25, np.float32))
    stamps[marked] = marked.stat().st_mtime_ns
    second, out2 = extract(good_manifest, P, cache_dir=cache, workers=1, progress=False)
    assert out2.attrs["extract_stats"]["from_cache"] == 4
    assert out2.attrs["extract_stats"]["computed"] == 0
    assert {e: e.stat().st_mtime_ns for e in folder.glob("*.npy")} == stamps  # nothing rewritten
    assert sum(np.all(second[i] == 1.25) for i in range(4)) == 1
    untouched = [i for i in range(4) if not np.all(second[i] == 1.25)]
    np.testing.assert_array_equal(second[untouched], first[untouched])

    # A parameter change uses a new folder and recomputes everything.
    p40 = FeatureParams(n_mels=40)
    feats40, _ = extract(good_manifest, p40, cache_dir=cache, workers=1, progress=False)
    assert feats40.shape == (4, 300, 40)
    assert cache_folder(cache, p40) != folder
    assert len(list(cache_folder(cache, p40).glob("*.npy"))) == 4

    # Rewriting an audio file changes its identity (size / mtime), so it is recomputed.
    path = good_manifest["path"][1]
    old_key = cache_key(path)
    sf.write(path, speechlike(16000, 2.5, seed=42), 16000, subtype="PCM_16")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert cache_key(path) != old_key
    third, _ = extract(good_manifest, P, cache_dir=cache, workers=1, progress=False)
    y, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(third[1], fix_length(log_mel(y, P), P), atol=1e-5)
    assert len(list(folder.glob("*.npy"))) == 5


KILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from data_prep.features.cache import atomic_write_bytes

    def write(f):
        f.write(b"\\x93NUMPY" + b"\\x00" * 1000)  # the first part of an entry ...
        f.flush()
        os._exit(9)  # ... then the process dies, like a kill -9 mid-write

    atomic_write_bytes(Path(sys.argv[1]), write)
    """
)


def test_interrupted_write_leaves_no_corrupt_entry(good_manifest, tmp_path):
    cache = tmp_path / "cache"
    reference, _ = extract(good_manifest, P, workers=1, progress=False)
    folder = cache_folder(cache, P)
    folder.mkdir(parents=True)
    entry = folder / f"{cache_key(good_manifest['path'][0])}.npy"

    # A writer killed mid-write leaves only a temporary file; the entry itself never exists.
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(entry)], cwd=REPO, capture_output=True
    )
    assert proc.returncode == 9, proc.stderr.decode()
    assert not entry.exists()
    leftovers = list(folder.glob(".tmp-*"))
    assert len(leftovers) == 1

    # A truncated entry (e.g. a disk fault) is also treated as a miss and overwritten.
    entry2 = folder / f"{cache_key(good_manifest['path'][1])}.npy"
    np.save(entry2, reference[1])
    entry2.write_bytes(entry2.read_bytes()[:500])

    feats, _ = extract(good_manifest, P, cache_dir=cache, workers=1, progress=False)
    np.testing.assert_array_equal(feats, reference)
    assert entry.exists() and np.array_equal(np.load(entry), reference[0])
    assert np.array_equal(np.load(entry2), reference[1])

    # Temporaries from killed runs are removed once they are clearly stale.
    old = time.time() - 2 * 3600
    os.utime(leftovers[0], (old, old))
    extract(good_manifest, P, cache_dir=cache, workers=1, progress=False)
    assert not leftovers[0].exists()


def test_atomic_write_removes_temp_on_error(tmp_path):
    target = tmp_path / "x.json"

    def fail(f):
        f.write(b"{")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_bytes(target, fail)
    assert list(tmp_path.iterdir()) == []


def test_48k_stereo_equals_16k_mono(tmp_path, audio_dir):
    mono16 = speechlike(16000, 2.0, seed=11)
    s48 = speechlike(48000, 2.0, seed=11)
    # Different channels whose mean is the signal.
    diff = 0.2 * np.sin(2 * np.pi * 300 * np.arange(s48.size) / 48000).astype(np.float32)
    sf.write(tmp_path / "m16.wav", mono16, 16000, subtype="FLOAT")
    sf.write(tmp_path / "s48.wav", np.stack([s48 + diff, s48 - diff], 1), 48000, subtype="FLOAT")
    manifest = pd.DataFrame({"path": [str(tmp_path / "m16.wav"), str(tmp_path / "s48.wav")]})
    feats, _ = extract(manifest, FeatureParams(frames=190), workers=1, progress=False)
    # 190 frames = all complete frames, edges included. The bands that hold the signal (< 7 kHz)
    # agree to 5e-4 (0.05 % in energy); the near-empty top bands, where the resampler's
    # transition band sits, still to 2e-3.
    err = np.abs(feats[0] - feats[1])
    centres = librosa.mel_frequencies(n_mels=64 + 2, fmin=0.0, fmax=8000.0)[1:-1]
    assert err[:, centres < 6800.0].max() < 5e-4, err.max(0)
    assert err.max() < 2e-3, err.max(0)


def test_bad_files_are_skipped_with_reasons(good_manifest, audio_dir):
    bad_names = ["silent.wav", "corrupt.wav", "nan.wav", "tiny_0p02s.wav", "missing.wav"]
    paths = [str(audio_dir / n) for n in bad_names[:2]] + list(good_manifest["path"][:2])
    paths += [str(audio_dir / n) for n in bad_names[2:]] + list(good_manifest["path"][2:])
    manifest = pd.DataFrame({"path": paths, "i": range(len(paths))})
    manifest.attrs["bad_files"] = ["from the loader"]
    with pytest.warns(UserWarning, match="skipped 5 of 9"):
        feats, out = extract(manifest, P, workers=1, progress=False)
    assert feats.shape == (4, 300, 64)
    assert out["path"].tolist() == list(good_manifest["path"])
    assert out.index.tolist() == [0, 1, 2, 3]
    reference, _ = extract(good_manifest, P, workers=1, progress=False)
    np.testing.assert_array_equal(feats, reference)
    bad = out.attrs["bad_files"]
    assert bad[0] == "from the loader"
    reasons = {Path(b.path).name: b.reason for b in bad[1:]}
    assert set(reasons) == set(bad_names)
    assert reasons["silent.wav"].startswith("silent audio")
    assert reasons["corrupt.wav"].startswith("unreadable or corrupt")
    assert "NaN/inf" in reasons["nan.wav"]
    assert reasons["tiny_0p02s.wav"].startswith("too short")
    assert reasons["missing.wav"].startswith("file not found")
    assert not any(r.startswith(str(audio_dir)) for r in reasons.values())  # no path repeated


def test_on_error_raise_names_the_file(good_manifest, audio_dir):
    manifest = pd.DataFrame({"path": [*good_manifest["path"], str(audio_dir / "silent.wav")]})
    with pytest.raises(AudioError, match=r"silent\.wav: silent audio"):
        extract(manifest, P, workers=1, on_error="raise", progress=False)


def test_start_end_columns_are_honoured(audio_dir):
    path = str(audio_dir / "long_4s.wav")
    manifest = pd.DataFrame(
        {"path": [path, path, path], "start": [0.5, np.nan, 1.0], "end": [1.5, np.nan, np.nan]}
    )
    feats, _ = extract(manifest, P, workers=1, progress=False)
    # allclose, not equal: extract pins BLAS to one thread, and the thread count changes the
    # summation order of the mel product by an ulp.
    np.testing.assert_allclose(feats[0], features_of(path, P, start=0.5, end=1.5), atol=1e-5)
    np.testing.assert_allclose(feats[1], features_of(path, P), atol=1e-5)
    np.testing.assert_allclose(feats[2], features_of(path, P, start=1.0), atol=1e-5)
    assert not np.array_equal(feats[0], feats[1])


def test_invalid_extract_arguments(good_manifest):
    with pytest.raises(ValueError, match="'path' column"):
        extract(pd.DataFrame({"file": []}), P)
    with pytest.raises(ValueError, match="on_error"):
        extract(good_manifest, P, on_error="ignore")
    with pytest.raises(ValueError, match="workers"):
        extract(good_manifest, P, workers=0, progress=False)


def test_empty_manifest():
    feats, out = extract(pd.DataFrame({"path": []}), P, progress=False)
    assert feats.shape == (0, 300, 64) and len(out) == 0


@pytest.fixture(scope="module")
def warm_pool():
    """Two spawned helpers that have finished their warm-up (librosa imported)."""
    pool = cf.ProcessPoolExecutor(2, mp_context=_pool_context(), initializer=_init_worker)
    with _main_module_hidden():
        pids = {f.result() for f in [pool.submit(_warm_up) for _ in range(2)]}
    assert len(pids) >= 1
    yield pool
    pool.shutdown()


def test_helpers_are_clean(warm_pool):
    info = [warm_pool.submit(_worker_modules).result() for _ in range(4)]
    # No TensorFlow, and no user script re-imported as the helpers' main module.
    assert all(not i["tensorflow"] and i["main_file"] is None for i in info), info
    assert all(i["blas_threads"] == 1 for i in info), info  # no oversubscription
    assert all(i["pid"] != os.getpid() for i in info)


def test_caller_and_helpers_share_the_work(good_manifest, warm_pool):
    paths = list(good_manifest["path"]) * 12
    tasks = [(i, p, None, None, None) for i, p in enumerate(paths)]
    results = list(run_tasks(tasks, P, 3, executor=warm_pool))
    assert sorted(r[0] for r in results) == list(range(len(paths)))  # each task exactly once
    by_helper = sum(r[3] for r in results)
    assert 0 < by_helper < len(paths), by_helper  # both sides computed chunks
    reference, _ = extract(good_manifest, P, workers=1, progress=False)
    for index, feats, reason, _ in results:
        assert reason is None
        np.testing.assert_array_equal(feats, reference[index % 4])


def test_extract_with_workers_matches_sequential(good_manifest, tmp_path):
    manifest = pd.concat([good_manifest] * 3, ignore_index=True)
    seq, _ = extract(manifest, P, workers=1, progress=False)
    par, out = extract(manifest, P, workers=2, cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(par, seq)
    assert len(out) == 12 and len(list(cache_folder(tmp_path / "c", P).glob("*.npy"))) == 4
    stats = out.attrs["extract_stats"]
    assert stats["workers"] == 2 and stats["computed"] == 12 and stats["from_cache"] == 0


MAIN_SCRIPT = textwrap.dedent(
    """
    # A user script whose top level must not run again in the workers (it stands for
    # `import tensorflow` at the top of a training script).
    import os, sys
    with open(sys.argv[2], "a") as f:
        f.write(f"{os.getpid()}\\n")

    import pandas as pd
    from data_prep.features import extract

    if __name__ == "__main__":
        m = pd.DataFrame({"path": sys.argv[3:] * 4})
        feats, out = extract(m, workers=2, progress=False)
        print(feats.shape)
    """
)


def test_workers_do_not_reimport_the_main_script(good_manifest, tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text(MAIN_SCRIPT)
    log = tmp_path / "imports.log"
    proc = subprocess.run(
        [sys.executable, str(script), "x", str(log), *good_manifest["path"]],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path[1:]])},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(16, 300, 64)" in proc.stdout
    assert len(log.read_text().split()) == 1  # only the parent ran the top level


# ---------------------------------------------------------------- real data


def test_ravdess_files(ravdess_root, tmp_path):
    files = sorted((ravdess_root / "Actor_01").glob("*.flac"))[:3]
    files += sorted((ravdess_root / "Actor_02").glob("*.flac"))[:3]
    assert len(files) == 6, f"expected RAVDESS FLAC files under {ravdess_root}/Actor_01"
    manifest = pd.DataFrame({"path": [str(f) for f in files]})
    feats, out = extract(manifest, P, cache_dir=tmp_path, workers=1, progress=False)
    assert feats.shape == (6, 300, 64) and len(out) == 6 and out.attrs["bad_files"] == []
    assert np.all(np.isfinite(feats))
    y, rate = sf.read(files[0], dtype="float32")
    assert rate == 16000
    ref = reference_log_mel(y, P)
    first = (ref.shape[0] - 300) // 2
    np.testing.assert_allclose(feats[0], ref[first : first + 300], rtol=0, atol=1e-5)
    # RAVDESS contains runs of exact digital zeros: the floor is really hit.
    assert np.mean(feats == np.float32(P.floor)) > 0.01
