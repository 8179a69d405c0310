"""Computing features of many files on the caller plus spawned helper processes.

The calling process computes too, and ``workers - 1`` *spawned* processes help (never ``fork``:
TensorFlow's threads may already exist in the caller, and forking a threaded process can deadlock
the child). Spawned children would re-import the caller's main script, and with it TensorFlow, so
``__main__`` is hidden while they are launched. BLAS is pinned to one thread per process: the mel
product is tiny, and BLAS threads only oversubscribe the CPUs. This is the local executor of
:func:`data_prep.features.extract`.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import math
import multiprocessing as mp
import os
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.errors import AudioError
from data_prep.features.cache import save_entry
from data_prep.features.dsp import features_of, log_mel
from data_prep.features.params import FeatureParams

#: Below this many files to compute, ``workers=None`` stays in-process. A fresh helper spends
#: ~3-7 s of CPU importing librosa before it computes anything (the caller does not wait for it,
#: see _run_tasks), while 256 files take ~1.7 s on one core: below that, a helper only burns CPU.
MIN_FILES_FOR_POOL = 256

#: ``workers=None`` uses helper processes only with at least this many CPUs. Measured on the
#: 2-core development VM, shared with other jobs (load average 3-5; benchmarks/features.py, 3
#: runs each, RAVDESS 1440 files): workers=2 took a median 26.7 s against 15.4 s for workers=1,
#: and two independent single-process jobs each ran ~3x slower than one alone - the VM did not
#: give two CPU-bound processes two cores' worth of time. So on 2 CPUs the default stays
#: in-process; ``workers=2`` is there for a quiet 2-core machine.
MIN_CPUS_FOR_POOL = 3


# One unit of work: (row index, path, start, end, cache entry path or None).
_Task = tuple[int, str, float | None, float | None, str | None]
# Its result: (row index, features or None, reason or None).
_Result = tuple[int, np.ndarray | None, str | None]


def _compute(task: _Task, params: FeatureParams) -> _Result:
    """Features of one task, written to its cache entry; failures become a reason string.

    Any exception is turned into a reason so that one bad file never loses the rest of the run
    (a decoder can raise more than the errors load_audio anticipates).
    """
    index, path, start, end, entry = task
    try:
        feats = features_of(path, params, start=start, end=end)
    except AudioError as exc:
        return index, None, str(exc).removeprefix(f"{path}: ")
    except Exception as exc:  # reported per file, see the docstring
        return index, None, f"unexpected error while computing features: {exc!r}"
    if entry is not None:
        try:
            save_entry(Path(entry), feats)
        except OSError as exc:
            # A full or read-only cache must not fail the extraction itself.
            warnings.warn(f"could not write feature cache entry {entry}: {exc}", stacklevel=2)
    return index, feats, None


def _compute_chunk(tasks: list[_Task], params_dict: dict[str, Any]) -> list[_Result]:
    """Worker entry point: a chunk of tasks (chunks amortise the inter-process overhead)."""
    params = FeatureParams.from_dict(params_dict)
    return [_compute(t, params) for t in tasks]


def _worker_modules() -> dict[str, Any]:
    """Diagnostics of a worker process: pid, TensorFlow loaded?, file of its main module."""
    return {
        "pid": os.getpid(),
        "tensorflow": "tensorflow" in sys.modules,
        # None unless a user script was re-imported as the worker's main module.
        "main_file": getattr(sys.modules.get("__mp_main__"), "__file__", None),
        "blas_threads": _blas_threads(),
    }


def _blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(counts) if counts else None


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS supports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Hide ``__main__`` from multiprocessing while worker processes are launched.

    Spawn and forkserver children re-import the parent's main script (as ``__mp_main__``) before
    running a task. If that script imports TensorFlow at the top - as training scripts and the CLI
    do - every worker would import TensorFlow too (seconds and hundreds of MB each). Our workers
    need nothing from ``__main__`` (the task functions live in this module), so the launch sees a
    bare stand-in module without ``__file__`` or ``__spec__``, and children skip the re-import.
    """
    real = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if real is not None:
            sys.modules["__main__"] = real


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread while features are computed (a context manager).

    The only BLAS call is the small ``[n_mels, bins] @ [bins, frames]`` mel product; OpenBLAS
    splitting it across threads costs more than it saves, and with one process per core it
    oversubscribes the CPUs: measured on 2 cores, 6.6 ms per RAVDESS file with one BLAS thread
    against 17-20 ms with two.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the computation is only slower
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _init_worker() -> None:
    """Helper initializer: warm up, then pin BLAS to one thread for the life of the process.

    The warm-up (one tiny log-Mel) pays librosa's lazy imports and numba cache loads - seconds
    on a fresh interpreter - and loads every BLAS library involved (numpy's, and scipy's through
    librosa), so that the pinning below reaches all of them (see _one_blas_thread).
    """
    log_mel(np.full(FeatureParams().n_fft, 0.01, np.float32))
    _one_blas_thread()


def _warm_up() -> int:
    """First task of every helper; it runs after _init_worker, so the helper is ready.

    Returns:
        The helper's pid; the caller hands chunks to the pool only once helpers have reported.
    """
    return os.getpid()


def _pool_context() -> mp.context.BaseContext:
    """The multiprocessing context of the pool: "spawn" (fresh interpreters, never a fork).

    Not "fork": TensorFlow's threads may exist in the caller, and forking a threaded process can
    deadlock the child. Not "forkserver" either: its server imports its preload modules before
    forking the first worker, and ``submit()`` blocks until then, which would make the caller
    wait seconds instead of computing. Spawned helpers import librosa in their initializer, in
    parallel with the caller's own work (see _run_tasks).
    """
    return mp.get_context("spawn")


def resolve_workers(workers: int | None, n_tasks: int) -> int:
    """The number of computing processes (the caller included) for ``n_tasks`` files."""
    if workers is None:
        cpus = available_cpus()
        if n_tasks < MIN_FILES_FOR_POOL or cpus < MIN_CPUS_FOR_POOL:
            return 1
        return min(cpus, n_tasks)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be None (automatic) or an integer >= 1, got {workers!r}")
    return max(1, min(workers, n_tasks))


def run_tasks(
    tasks: list[_Task],
    params: FeatureParams,
    workers: int,
    *,
    executor: cf.ProcessPoolExecutor | None = None,
) -> Iterator[tuple[int, np.ndarray | None, str | None, bool]]:
    """Compute every task on ``workers`` processes, the caller included.

    The caller computes chunks from the *back* of the queue from the first moment; ``workers - 1``
    spawned helpers get chunks from the *front*, but only once they have reported ready (a fresh
    helper spends seconds importing librosa, see _warm_up), and at most two chunks each at a time.
    So the caller never waits for a cold helper: a job that it finishes alone costs what
    ``workers=1`` costs, and helpers can only add throughput.

    Args:
        tasks: The work.
        params: Feature parameters.
        workers: Computing processes, the caller included.
        executor: A running pool to use instead of a new one (left running); for tests and
            callers that extract repeatedly.

    Yields:
        ``(index, features or None, reason or None, computed_by_helper)`` in completion order.
    """
    if workers <= 1 or len(tasks) < 2:
        with _one_blas_thread():
            for task in tasks:
                yield (*_compute(task, params), False)
        return
    # Several chunks per process balance uneven file lengths; at most 16 files (~0.1 s) per chunk
    # keeps the progress bar moving and the split between caller and helpers fine-grained.
    size = max(1, min(16, math.ceil(len(tasks) / (workers * 4))))
    queue = collections.deque(tasks[i : i + size] for i in range(0, len(tasks), size))
    params_dict = params.to_dict()
    own = executor is None
    if own:
        executor = cf.ProcessPoolExecutor(
            max_workers=workers - 1, mp_context=_pool_context(), initializer=_init_worker
        )
    inflight: dict[cf.Future, list[_Task]] = {}
    try:
        with _main_module_hidden():
            # Non-fork pools launch their processes inside submit(): all of them start here.
            warm = [executor.submit(_warm_up) for _ in range(workers - 1)]
        usable = True
        with _one_blas_thread():
            while queue:
                yield from _collect(inflight, params, block=False)
                ready = {f.result() for f in warm if f.done() and f.exception() is None}
                while usable and queue and len(inflight) < 2 * len(ready):
                    chunk = queue.popleft()
                    try:
                        inflight[executor.submit(_compute_chunk, chunk, params_dict)] = chunk
                    except cf.BrokenExecutor:  # a helper died: the caller does the rest
                        queue.appendleft(chunk)
                        usable = False
                if queue:
                    for task in queue.pop():
                        yield (*_compute(task, params), False)
            yield from _collect(inflight, params, block=True)
    finally:
        for fut in inflight:
            fut.cancel()
        if own:
            # Not waiting matters when the caller did all the work before the helpers finished
            # starting: joining would wait for their imports. Nothing of ours is left running
            # on a normal exit; after an error, running chunks only finish cache entries.
            executor.shutdown(wait=False, cancel_futures=True)


def _collect(
    inflight: dict[cf.Future, list[_Task]], params: FeatureParams, *, block: bool
) -> Iterator[tuple[int, np.ndarray | None, str | None, bool]]:
    """Yield the results of finished helper chunks (of all of them, waiting, if ``block``).

    A chunk whose helper died (BrokenProcessPool, e.g. a decoder crash) is recomputed by the
    caller, which is what ``workers=1`` would have done with it.
    """
    ready = cf.as_completed(list(inflight)) if block else [f for f in inflight if f.done()]
    for fut in ready:
        chunk = inflight.pop(fut)
        try:
            results = [(*r, True) for r in fut.result()]
        except cf.BrokenExecutor:
            results = [(*_compute(task, params), False) for task in chunk]
        yield from results
