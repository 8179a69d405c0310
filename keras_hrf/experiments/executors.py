"""Who trains the runs of an experiment grid: this process, or a Ray cluster.

A grid (:func:`keras_hrf.experiments.reproduce`) is a list of independent :class:`GridRun` s
(family, variant, fold, seed), some of which distil another run of the grid (their teacher must
finish first). :class:`LocalExecutor` trains them one after the other in this process - what
``reproduce`` always did. :class:`RayExecutor` makes each run a Ray task:

- the features and the manifest go into the object store once, not with every task;
- a task trains (with as many TensorFlow threads as the CPUs it asks for), saves the run folder
  into a temporary folder on the worker and returns its files (a few MB); the *driver* writes
  them atomically to the output folder, exactly as the local executor would, so no shared
  filesystem is needed, a rerun skips finished runs and ``--report-only`` is unchanged. With
  ``shared_fs`` the worker writes the folder itself (the same atomic rename);
- every run folder gets the worker's log (``log.txt``);
- a run that raises is reported (one line, and its log and traceback in ``FAILED.md`` in its run
  folder, which has no ``metrics.json`` and is therefore retried by the next call) while the rest
  of the grid goes on; a worker that dies is restarted by Ray (``max_retries``); Ctrl-C cancels
  what is outstanding and leaves only complete run folders;
- a distilled run is submitted once its teacher's folder exists, with the teacher's files.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep.splits import Split
from keras_hrf import reports

#: Names of the executors (``--executor``).
EXECUTORS = ("local", "ray")
#: Files of a teacher run that a distilled run reads (keras_hrf.training.distillation).
TEACHER_FILES = ("config.json", "model_merged.keras")


@dataclasses.dataclass(frozen=True)
class GridRun:
    """One run of a grid.

    Attributes:
        family: Model family.
        variant: Variant name (``light``, ``light+hrf+kd``...).
        fold: Fold index.
        seed: Seed.
        config: Its :class:`~keras_hrf.training.TrainConfig` (seed set; ``teacher`` empty: it
            is set from ``teacher_dir`` when the run starts).
        run_dir: Where its folder goes.
        split: Its train / validation / test rows.
        teacher_dir: The run folder it distils (a run of the same grid or a finished one).
    """

    family: str
    variant: str
    fold: int
    seed: int
    config: object
    run_dir: Path
    split: Split
    teacher_dir: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.family} {self.variant} fold {self.fold} seed {self.seed}"


@dataclasses.dataclass(frozen=True)
class FolderTask:
    """Work on a finished run folder that writes one sub-folder of it (the quantization study's
    fine-tunings): ``fn(source, **shared)`` reads ``source`` and writes ``source/output``.

    Attributes:
        name: What the progress bar and a failure report call it.
        source: The run folder read (on Ray shipped to the worker unless ``shared_fs``).
        output: Name of the sub-folder ``fn`` writes (the driver writes it back atomically).
        fn: A picklable callable (a module-level function or a ``functools.partial`` of one).
    """

    name: str
    source: Path
    output: str
    fn: Callable

    @property
    def run_dir(self) -> Path:
        return self.source / self.output


@dataclasses.dataclass(frozen=True)
class Failure:
    """A run (a :class:`GridRun` or :class:`FolderTask`) that raised: which, and the last line
    of its error."""

    run: GridRun | FolderTask
    error: str


@dataclasses.dataclass
class GridData:
    """What every run of a grid trains on."""

    features: np.ndarray
    manifest: pd.DataFrame
    params: object
    data: dict | None


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "metrics.json").is_file()


def _train_and_save(run: GridRun, data: GridData, out_dir: Path, export: bool, progress: bool):
    """Train one run and save its folder to ``out_dir`` (the teacher folder must exist)."""
    from keras_hrf.export.runs import save_run
    from keras_hrf.training import fit

    cfg = run.config
    if run.teacher_dir is not None:
        cfg = dataclasses.replace(cfg, teacher=(str(run.teacher_dir),))
    result = fit(
        cfg,
        data.features,
        data.manifest,
        run.split,
        feature_params=data.params,
        progress=progress,
        data=data.data,
    )
    return save_run(result, out_dir, export=export)


class LocalExecutor:
    """The runs one after the other in this process (a raising run stops the grid)."""

    name = "local"

    def run(
        self, runs: Sequence[GridRun], data: GridData, *, export: bool, progress: bool
    ) -> list[Failure]:
        for run in runs:
            if run.teacher_dir is not None and not is_finished(run.teacher_dir):
                raise ValueError(
                    f"{run.name} distils {run.teacher_dir}, which has not finished: list the "
                    "teacher's variant before the distilled one"
                )
            _train_and_save(run, data, run.run_dir, export, progress)
        return []

    def run_folder_tasks(
        self, tasks: Sequence[FolderTask], shared: dict, *, progress: bool
    ) -> list[Failure]:
        """Each task in this process, in order (a raising task stops the loop)."""
        for task in tasks:
            task.fn(task.source, **shared)
        return []


# --- Ray ----------------------------------------------------------------------------------------


def _set_threads(n: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        pass  # already initialised in this worker process (by an earlier task): same value


def _read_tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _ray_task(
    run: GridRun,
    features: np.ndarray,
    manifest: pd.DataFrame,
    params,
    data: dict | None,
    teacher_files: dict[str, bytes] | None,
    export: bool,
    threads: int,
    shared_fs: bool,
) -> dict:
    """Worker side of one run: its files (or, with ``shared_fs``, nothing: it wrote them), its
    log, and its error if it raised. Never raises for the run's own errors, so that Ray retries
    only when the worker itself dies."""
    import contextlib
    import io

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _set_threads(threads)
    log = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="keras-hrf-run-") as tmp:
        tmp = Path(tmp)
        if teacher_files is not None:
            teacher = tmp / "teacher"
            for rel, blob in teacher_files.items():
                (teacher / rel).parent.mkdir(parents=True, exist_ok=True)
                (teacher / rel).write_bytes(blob)
            run = dataclasses.replace(run, teacher_dir=teacher)
        out = run.run_dir if shared_fs else tmp / "run"
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                _train_and_save(run, GridData(features, manifest, params, data), out, export, False)
        except Exception:  # reported by the driver; the grid goes on
            return {"error": traceback.format_exc(), "log": log.getvalue()}
        seconds = time.perf_counter() - started
        import socket

        where = (
            f"trained on host {socket.gethostname()} (worker pid {os.getpid()}, {threads} "
            f"TensorFlow threads) in {seconds:.1f} s\n"
        )
        result = {"log": where + log.getvalue(), "seconds": seconds}
        if not shared_fs:
            result["files"] = _read_tree(out)
        return result


def _ray_folder_task(
    task: FolderTask, shared: dict, files: dict[str, bytes] | None, threads: int
) -> dict:
    """Worker side of a :class:`FolderTask`: the written sub-folder's files (``files``: the run
    folder's, shipped by the driver; None with a shared filesystem), or the error."""
    import contextlib
    import io

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _set_threads(threads)
    log = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="keras-hrf-task-") as tmp:
        source = task.source
        if files is not None:
            source = Path(tmp) / "source"
            for rel, blob in files.items():
                (source / rel).parent.mkdir(parents=True, exist_ok=True)
                (source / rel).write_bytes(blob)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                task.fn(source, **shared)
        except Exception:
            return {"error": traceback.format_exc(), "log": log.getvalue()}
        return {} if files is None else {"files": _read_tree(source / task.output)}


def task_files(task: FolderTask) -> dict[str, bytes]:
    """The files of a task's run folder that travel to a worker: the top level (models,
    configuration, representative data), not the sub-folders (device files, other tasks')."""
    return {p.name: p.read_bytes() for p in sorted(task.source.iterdir()) if p.is_file()}


def _catch_sigint() -> tuple[threading.Event, Callable[[], None]]:
    """Ctrl-C as an event the driver's loop checks between short waits (and a function that
    puts the previous handler back): a SIGINT that arrives while the driver blocks in Ray is
    not left to whatever Ray does with it (on an idle machine a driver blocked in ``ray.wait``
    once ran its grid to the end after a SIGINT). Off the main thread nothing is installed."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return event, lambda: None
    previous = signal.signal(signal.SIGINT, lambda *_: event.set())
    return event, lambda: signal.signal(signal.SIGINT, previous)


def _wait_one(ray, running: dict, interrupted: threading.Event) -> list:
    """The next finished task (a list of one), or ``[]`` after a second without one; raises
    KeyboardInterrupt once Ctrl-C was pressed."""
    done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
    if interrupted.is_set():
        raise KeyboardInterrupt
    return done


def _fix_teacher_path(files: dict[str, bytes], teacher_dir: Path) -> None:
    """The worker trained against a copy of the teacher; the run folder names the real one."""
    import json

    doc = json.loads(files["config.json"])
    doc["train"]["teacher"] = [str(teacher_dir)]
    files["config.json"] = json.dumps(doc, indent=2).encode()


def _write_run(run_dir: Path, files: dict[str, bytes], log: str) -> None:
    """The run folder from a worker's files, atomically (:func:`reports.atomic_folder`)."""
    with reports.atomic_folder(run_dir) as tmp:
        for rel, blob in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(blob)
        (tmp / "log.txt").write_text(log)


def _write_failure(run: GridRun, error: str, log: str) -> None:
    run.run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.json",):  # a folder with metrics.json is a finished run
        (run.run_dir / name).unlink(missing_ok=True)
    text = f"# {run.name} failed\n\n```\n{error.rstrip()}\n```\n\n## Log\n\n```\n{log}\n```\n"
    (run.run_dir / "FAILED.md").write_text(text)


@dataclasses.dataclass
class RayExecutor:
    """Each run a Ray task (see the module docstring).

    Attributes:
        address: The cluster (``"auto"``, ``HOST:PORT``); None starts a local instance.
        cpus_per_run: CPUs a run asks for (and its TensorFlow threads, rounded, at least 1).
        gpus_per_run: GPUs a run asks for (fractions share a GPU).
        max_retries: Restarts of a run whose worker died.
        shared_fs: Workers write their run folders themselves.
    """

    address: str | None = None
    cpus_per_run: float = 1
    gpus_per_run: float = 0
    max_retries: int = 3
    shared_fs: bool = False
    name = "ray"

    @property
    def threads(self) -> int:
        """TensorFlow threads of a task: its CPUs, rounded, at least 1."""
        return max(1, int(round(self.cpus_per_run)))

    def _remote(self, ray, fn):
        """``fn`` as a Ray task with this executor's resources; retried only when its worker
        dies (a run's own error is returned, not raised)."""
        return ray.remote(fn).options(
            num_cpus=self.cpus_per_run,
            num_gpus=self.gpus_per_run,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )

    def run(
        self, runs: Sequence[GridRun], data: GridData, *, export: bool, progress: bool
    ) -> list[Failure]:
        from tqdm.auto import tqdm

        from data_prep import cluster

        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        runs = list(runs)
        if not runs:  # nothing to train (a finished grid, --report-only): no Ray at all
            return []
        scheduled = {r.run_dir for r in runs}
        for r in runs:
            if r.teacher_dir is not None and not (
                is_finished(r.teacher_dir) or r.teacher_dir in scheduled
            ):
                raise ValueError(
                    f"{r.name} distils {r.teacher_dir}, which is neither finished nor in the grid"
                )
        failures: list[Failure] = []
        with cluster.connect(
            self.address, cpus_per_task=self.cpus_per_run, gpus_per_task=self.gpus_per_run
        ) as ray:
            task = self._remote(ray, _ray_task)
            refs = [ray.put(data.features), ray.put(data.manifest)]
            threads = self.threads
            waiting, running, failed_dirs = list(runs), {}, set()
            bar = tqdm(total=len(runs), desc="grid", unit="run", disable=not progress)
            interrupted, restore_sigint = _catch_sigint()
            try:
                while waiting or running:
                    for r in list(waiting):
                        if r.teacher_dir is not None and r.teacher_dir in failed_dirs:
                            waiting.remove(r)
                            failures.append(Failure(r, f"its teacher {r.teacher_dir} failed"))
                            _write_failure(r, failures[-1].error, "")
                            bar.update(1)
                        elif r.teacher_dir is None or is_finished(r.teacher_dir):
                            waiting.remove(r)
                            teacher = (
                                None
                                if r.teacher_dir is None or self.shared_fs
                                else {f: (r.teacher_dir / f).read_bytes() for f in TEACHER_FILES}
                            )
                            ref = task.remote(
                                r,
                                *refs,
                                data.params,
                                data.data,
                                teacher,
                                export,
                                threads,
                                self.shared_fs,
                            )
                            running[ref] = r
                    bar.set_postfix(running=len(running), failed=len(failures))
                    if not running:
                        if waiting:  # cannot happen: every teacher is finished or scheduled
                            raise RuntimeError(f"{waiting[0].name}: its teacher never ran")
                        continue
                    done = _wait_one(ray, running, interrupted)
                    if not done:
                        continue
                    r = running.pop(done[0])
                    try:
                        out = ray.get(done[0])
                    except (ray.exceptions.RayError, OSError) as exc:  # retries exhausted
                        out = {"error": f"{type(exc).__name__}: {exc}", "log": ""}
                    if "error" in out:
                        error = out["error"].strip().splitlines()[-1]
                        failures.append(Failure(r, error))
                        failed_dirs.add(r.run_dir)
                        _write_failure(r, out["error"], out.get("log", ""))
                        bar.write(f"failed: {r.name}: {error}")
                    elif self.shared_fs:
                        (r.run_dir / "log.txt").write_text(out["log"])
                    else:
                        files = out["files"]
                        if r.teacher_dir is not None:
                            _fix_teacher_path(files, r.teacher_dir)
                        _write_run(r.run_dir, files, out["log"])
                    bar.update(1)
                    bar.set_postfix(running=len(running), failed=len(failures))
            except BaseException:  # Ctrl-C, or a driver-side error: no task left behind
                for ref in running:
                    ray.cancel(ref, force=True)
                raise
            finally:
                bar.close()
                restore_sigint()
        return failures

    def run_folder_tasks(
        self, tasks: Sequence[FolderTask], shared: dict, *, progress: bool
    ) -> list[Failure]:
        """Each task a Ray task; the big ``shared`` arrays go into the object store once, the run
        folder's top-level files travel with the task (unless ``shared_fs``), the driver writes the
        returned sub-folder atomically; failures are reported and the rest goes on."""
        from tqdm.auto import tqdm

        from data_prep import cluster

        tasks = list(tasks)
        if not tasks:
            return []
        failures: list[Failure] = []
        with cluster.connect(
            self.address, cpus_per_task=self.cpus_per_run, gpus_per_task=self.gpus_per_run
        ) as ray:
            remote = self._remote(ray, _ray_folder_task)
            shared_ref = ray.put(shared)
            threads = self.threads
            running = {
                remote.remote(t, shared_ref, None if self.shared_fs else task_files(t), threads): t
                for t in tasks
            }
            bar = tqdm(total=len(running), desc="tasks", unit="task", disable=not progress)
            interrupted, restore_sigint = _catch_sigint()
            try:
                while running:
                    bar.set_postfix(running=len(running), failed=len(failures))
                    done = _wait_one(ray, running, interrupted)
                    if not done:
                        continue
                    task = running.pop(done[0])
                    try:
                        out = ray.get(done[0])
                    except (ray.exceptions.RayError, OSError) as exc:
                        out = {"error": f"{type(exc).__name__}: {exc}", "log": ""}
                    if "error" in out:
                        failures.append(Failure(task, out["error"].strip().splitlines()[-1]))
                        bar.write(f"failed: {task.name}: {failures[-1].error}")
                    elif not self.shared_fs:
                        with reports.atomic_folder(task.run_dir) as tmp:
                            for rel, blob in out["files"].items():
                                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                                (tmp / rel).write_bytes(blob)
                    bar.update(1)
            except BaseException:  # Ctrl-C, or a driver-side error: no task left behind
                for ref in running:
                    ray.cancel(ref, force=True)
                raise
            finally:
                bar.close()
                restore_sigint()
        return failures


def make_executor(
    name: str = "local",
    *,
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    max_retries: int = 3,
    shared_fs: bool = False,
):
    """The executor called ``name`` (see :data:`EXECUTORS`)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, cpus_per_run, gpus_per_run, max_retries, shared_fs)
    raise ValueError(f"executor must be one of {EXECUTORS}, got {name!r}")
