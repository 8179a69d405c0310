"""The experiment grid and feature extraction on a real Ray cluster: two nodes on loopback
(``ray start --head`` and ``ray start --address``, one CPU each), started here and stopped at the
end. Ray is a dependency of the ``ray`` extra that CI installs, so a missing or broken Ray fails
these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

#: A tiny grid: 3 folds of one variant (HRF: the merge runs on the worker too), 2 epochs, a
#: 16-wide ConvTransformer, no device export. Three runs: one finishes before the interrupt,
#: a worker is killed in one of the others (two nodes run two at a time).
GRID = [
    "--families", "conv_transformer", "--variants", "light+hrf", "--seeds", "1",
    "--folds", "3", "--epochs", "2", "--no-export",
    "--model-option", "d_model=16", "--model-option", "ffn_dim=32",
    "--model-option", "num_heads=2", "--model-option", "num_blocks=1",
]  # fmt: skip
RUNS = [f"runs/conv_transformer/light_hrf/fold{f}_seed0" for f in (0, 1, 2)]
RAY = str(Path(sys.executable).parent / "ray")
TIMEOUT = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """``HOST:PORT`` of a two-node Ray cluster on loopback (one CPU per node)."""
    port = _free_port()
    # A short folder of its own, not pytest's: Ray puts its Unix sockets under it, and a socket
    # path may not exceed 107 bytes (pytest-xdist's /tmp/pytest-of-USER/pytest-N/popen-gwK/...
    # plus Ray's session_DATE_TIME_PID/sockets/plasma_store.1 did).
    tmp = Path(tempfile.mkdtemp(prefix="ray-"))
    # Ray's token authentication with a token of this cluster's own, for the nodes, the
    # drivers started by the tests and this process: a user's ~/.ray/auth_token would otherwise
    # switch the head to token mode and leave the second node without the token.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    import ray  # noqa: F401  (fails, not skips, without the extra; after the token: Ray reads it once)

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    head = [RAY, "start", "--head", "--port", str(port), "--include-dashboard=false"]
    head += ["--temp-dir", str(tmp)]

    def ray_cli(*args):
        proc = subprocess.run(args, env=env, timeout=180, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(args)}:\n{(proc.stdout + proc.stderr)[-3000:]}"

    try:
        ray_cli(*head, *common)
        ray_cli(RAY, "start", "--address", f"127.0.0.1:{port}", *common)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, timeout=180, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _reproduce(root, cache, out, *extra) -> list[str]:
    return [
        sys.executable, "-m", "keras_hrf.cli", "--threads", "1", "reproduce",
        "--corpus", "synthetic", "--root", str(root), "--cache", str(cache),
        "--out", str(out), *GRID, *extra,
    ]  # fmt: skip


def _metrics(out: Path) -> dict:
    return {r: json.loads((out / r / "metrics.json").read_text()) for r in RUNS}


@pytest.fixture(scope="module")
def local_grid(synthetic_root, tmp_path_factory):
    """The grid with the default executor, in a fresh interpreter that never imports Ray."""
    base = tmp_path_factory.mktemp("local")
    out, cache = base / "out", base / "cache"
    probe = (
        "import sys\n"
        "from keras_hrf.cli import main\n"
        f"code = main({_reproduce(synthetic_root, cache, out)[3:]!r})\n"
        "assert 'ray' not in sys.modules, 'the local executor imported ray'\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, cache


def test_local_executor_is_the_default_and_imports_no_ray(local_grid):
    out, _ = local_grid
    assert all((out / r / "metrics.json").is_file() for r in RUNS)
    assert not any((out / r / "log.txt").exists() for r in RUNS)  # nothing new in its folders


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_ray_grid_resumes_survives_a_dead_worker_and_matches_local(
    ray_cluster, local_grid, synthetic_root, tmp_path
):
    """Interrupt the driver after its first finished run, rerun it and kill a worker mid-run:
    every run exists exactly once, the first ones untouched, all metrics equal to the local
    executor's, every folder with its worker's log."""
    _, cache = local_grid
    out = tmp_path / "out"
    cmd = _reproduce(synthetic_root, cache, out, "--executor", "ray", "--address", ray_cluster)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    finished = lambda: [r for r in RUNS if (out / r / "metrics.json").is_file()]  # noqa: E731
    _wait_for(lambda: finished() or first.poll() is not None, TIMEOUT, "the first run")
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130, first.stderr.read()[-2000:]
    done = finished()
    assert 1 <= len(done) < len(RUNS)
    # Only complete run folders: no half-written one, no leftover temporary folder.
    for r in RUNS:
        assert (out / r / "metrics.json").is_file() or not (out / r).exists()
    stamps = {r: (out / r / "metrics.json").stat().st_mtime_ns for r in done}

    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Kill the worker process of a running run once (Ray names it after the task).
    killed = False
    deadline = time.monotonic() + TIMEOUT
    while second.poll() is None and time.monotonic() < deadline and not killed:
        pids = subprocess.run(
            ["pgrep", "-f", "ray::_ray_task"], capture_output=True, text=True
        ).stdout.split()
        if pids:
            time.sleep(2)  # let it start training
            os.kill(int(pids[0]), signal.SIGKILL)
            killed = True
        time.sleep(0.3)
    stdout, stderr = second.communicate(timeout=TIMEOUT)
    assert second.returncode == 0, stderr[-3000:]
    assert killed, "no worker was running a run to kill"
    assert not re.search(r"^reproduce: .* failed", stdout, re.M)  # Ray retried the killed run
    assert finished() == RUNS
    assert {r: (out / r / "metrics.json").stat().st_mtime_ns for r in done} == stamps
    assert not list(out.glob("runs/*/*/.*tmp*"))
    local, ray_ = _metrics(local_grid[0]), _metrics(out)
    for r in RUNS:
        for part in ("test", "val", "test_merged"):
            assert ray_[r][part] == local[r][part], (r, part)
        assert ray_[r]["epochs_run"] == local[r]["epochs_run"]
        assert "trained on host" in (out / r / "log.txt").read_text()
        hist_local = (local_grid[0] / r / "history.csv").read_text()
        assert (out / r / "history.csv").read_text() == hist_local


def test_a_bad_address_or_missing_resources_fail_fast(local_grid, synthetic_root, capsys):
    from keras_hrf.cli import main

    _, cache = local_grid
    argv = _reproduce(synthetic_root, cache, "/nonexistent/out")[3:]
    started = time.monotonic()
    assert main([*argv, "--executor", "ray", "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "no Ray cluster answers at 127.0.0.1:1" in err
    assert "log-Mel" not in err  # refused before any feature was read
    assert time.monotonic() - started < 60
    assert main([*argv, "--address", "127.0.0.1:1"]) == 2
    assert "--address only apply with --executor ray" in capsys.readouterr().err


def test_the_cluster_refuses_a_run_larger_than_a_node(
    ray_cluster, local_grid, synthetic_root, capsys
):
    from keras_hrf.cli import main

    _, cache = local_grid
    argv = _reproduce(synthetic_root, cache, "/nonexistent/out")[3:]
    code = main([*argv, "--executor", "ray", "--address", ray_cluster, "--gpus-per-run", "1"])
    assert code == 2
    assert "one task asks for 1 CPUs and 1 GPUs" in capsys.readouterr().err
    # Two 1-CPU nodes make 2 CPUs, but no node fits a 2-CPU run: refused, not queued forever.
    code = main([*argv, "--executor", "ray", "--address", ray_cluster, "--cpus-per-run", "2"])
    assert code == 2
    assert "the largest has 1 CPUs" in capsys.readouterr().err
    assert main([*argv, "--executor", "ray", "--cpus-per-run", "0"]) == 2
    assert "--cpus-per-run must be > 0" in capsys.readouterr().err


def test_feature_extraction_on_ray_writes_the_same_cache_and_reports_bad_files(
    ray_cluster, synthetic_root, tmp_path
):
    from data_prep import load_corpus
    from data_prep.features import FeatureParams, extract

    manifest = load_corpus("synthetic", synthetic_root).iloc[:40].reset_index(drop=True)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not a wave file")
    manifest.loc[len(manifest)] = {**manifest.iloc[0].to_dict(), "path": str(bad)}
    params = FeatureParams()
    with pytest.warns(UserWarning, match="skipped 1 of 41"):
        local, m_local = extract(manifest, params, cache_dir=tmp_path / "a", progress=False)
    with pytest.warns(UserWarning, match="skipped 1 of 41"):
        remote, m_remote = extract(
            manifest,
            params,
            cache_dir=tmp_path / "b",
            progress=False,
            executor="ray",
            address=ray_cluster,
        )
    np.testing.assert_array_equal(remote, local)
    assert m_remote.attrs["extract_stats"]["executor"] == "ray"
    assert [b.path for b in m_remote.attrs["bad_files"]] == [str(bad)]
    entries = lambda d: sorted(p.name for p in d.rglob("*.npy"))  # noqa: E731
    assert entries(tmp_path / "b") == entries(tmp_path / "a") and len(entries(tmp_path / "a")) == 40


def test_quantization_study_fine_tunes_on_ray_as_locally(
    ray_cluster, local_grid, synthetic_root, tmp_path
):
    """The study's QAT fine-tunings as Ray tasks: the worker gets the run folder's files, the
    driver writes the returned qat/ folder; the figures equal the local executor's."""
    import shutil

    from keras_hrf.experiments.executors import RayExecutor
    from keras_hrf.experiments.quant_study import quantization_study
    from keras_hrf.training import QATConfig

    grid, cache = local_grid
    outs = {}
    for name in ("local", "ray"):
        out = tmp_path / name
        run = "runs/conv_transformer/light_hrf/fold0_seed0"  # one fine-tuning each, for time
        shutil.copytree(grid / run, out / run)
        executor = RayExecutor(address=ray_cluster) if name == "ray" else None
        quantization_study(
            "synthetic",
            synthetic_root,
            out,
            families=["conv_transformer"],
            seeds=[0],
            folds=[0],
            n_folds=3,
            qat_config=QATConfig(epochs=1),
            cache_dir=cache,
            progress=False,
            executor=executor,
        )
        outs[name] = out
    rel = "runs/conv_transformer/light_hrf/fold0_seed0/qat"
    local = json.loads((outs["local"] / rel / "metrics.json").read_text())
    remote = json.loads((outs["ray"] / rel / "metrics.json").read_text())
    for key in ("float", "int8", "agreement", "history"):
        assert remote[key] == local[key], key
    assert (outs["ray"] / rel / "model_qat.keras").is_file()
    assert not list(outs["ray"].glob("runs/**/.*tmp*"))
