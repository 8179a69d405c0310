"""Computing features on a Ray cluster: the ``executor="ray"`` of
:func:`data_prep.features.extract`.

Chunks of files become Ray tasks (one CPU each, retried if a worker dies); the audio must be on a
path every node can read. Workers return the features and the reasons for bad files; the driver
writes the cache entries, so the cache is the same as the local executor's and needs no shared
filesystem.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_prep import cluster
from data_prep.features.cache import save_entry
from data_prep.features.params import FeatureParams

#: Files per Ray task: large enough that Ray's ~ms of overhead per task is noise against ~7 ms
#: per file, small enough to spread a corpus over many workers.
CHUNK_FILES = 64


def _chunk_task(tasks: list, params_dict: dict) -> list:
    """Worker side: features of one chunk, without touching the cache (the driver writes it)."""
    from data_prep.features.pool import _compute, _one_blas_thread

    params = FeatureParams.from_dict(params_dict)
    with _one_blas_thread():
        return [_compute((i, p, s, e, None), params) for i, p, s, e, _ in tasks]


def run_tasks_ray(
    tasks: list, params: FeatureParams, address: str | None = None, chunk: int = CHUNK_FILES
) -> Iterator[tuple[int, np.ndarray | None, str | None, bool]]:
    """Compute every task on Ray; yields ``(row index, features or None, reason, True)`` as
    chunks finish (in completion order), after writing each cache entry."""
    entries = {t[0]: t[4] for t in tasks}
    with cluster.connect(address, cpus_per_task=1) as ray:
        remote = ray.remote(num_cpus=1, max_retries=3)(_chunk_task)
        pending = [
            remote.remote(tasks[i : i + chunk], params.to_dict())
            for i in range(0, len(tasks), chunk)
        ]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for index, value, reason in ray.get(done[0]):
                    if value is not None and entries.get(index):
                        try:
                            save_entry(Path(entries[index]), value)
                        except OSError as exc:
                            warnings.warn(
                                f"could not write feature cache entry {entries[index]}: {exc}",
                                stacklevel=2,
                            )
                    yield index, value, reason, True
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
