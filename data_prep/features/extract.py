"""Features of every row of a manifest: cache lookups, parallel computation, bad-file reports."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_prep.corpora.base import BadFile
from data_prep.errors import AudioError
from data_prep.features.cache import cache_folder, cache_key, load_entry, prepare_cache
from data_prep.features.params import FeatureParams
from data_prep.features.pool import (
    resolve_workers,
    run_tasks,
)

ON_ERROR_MODES = ("skip", "raise")
#: Where the features are computed (see :func:`extract`).
EXECUTORS = ("local", "ray")


def _optional_time(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def extract(
    manifest: pd.DataFrame,
    params: FeatureParams = FeatureParams(),  # noqa: B008
    *,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    on_error: str = "skip",
    progress: bool = True,
    executor: str = "local",
    address: str | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Fixed-length log-Mel features for every row of a manifest.

    Rows are computed by the calling process plus spawned helpers (see the module docstring)
    and, with ``cache_dir``, stored one ``.npy`` per file in ``cache_dir/<params.fingerprint()>/``
    keyed by :func:`cache_key`. Entries are written atomically, so an interrupted run resumes where
    it stopped, and a change of any parameter uses a different folder.

    Args:
        manifest: DataFrame with a ``path`` column and optionally ``start``/``end`` (seconds;
            NaN or absent means the whole file), as returned by :func:`data_prep.load_corpus`.
        params: Feature parameters.
        cache_dir: Folder of the on-disk cache; None disables caching.
        workers: Number of computing processes, the caller included (1 = in-process). None
            picks automatically: all available CPUs, but in-process with fewer than
            :data:`MIN_CPUS_FOR_POOL` CPUs (measured: on the shared 2-core VM a helper process
            made extraction ~1.7x slower) or fewer than :data:`MIN_FILES_FOR_POOL` files to
            compute.
        on_error: ``"skip"``: report bad files and return the rest; ``"raise"``: raise
            :class:`~data_prep.errors.AudioError` naming the first bad file found.
        progress: Show a tqdm progress bar (on stderr).
        executor: ``"local"`` (this process and its helpers, see ``workers``) or ``"ray"``:
            chunks of files as Ray tasks (:mod:`data_prep.features.ray_pool`; the audio must be
            readable on every node; the cache is written here).
        address: With ``"ray"``: the cluster (``"auto"``, ``HOST:PORT``); None starts a local
            instance.

    Returns:
        ``(features, manifest_out)``: float32 ``[N, frames, n_mels]`` and the manifest rows that
        produced them, in the same order, index reset. ``manifest_out.attrs["bad_files"]`` is the
        input's ``attrs["bad_files"]`` (files a corpus loader skipped) followed by a
        :class:`~data_prep.corpora.base.BadFile` for every row dropped here.
        ``manifest_out.attrs["extract_stats"]`` counts rows, cache hits, computed files (and how
        many of them helper processes computed), bad files and the processes used.

    Raises:
        AudioError: ``on_error="raise"`` and a file cannot be used.
        ValueError: invalid arguments (no ``path`` column, unknown ``on_error``, ...).
    """
    from tqdm.auto import tqdm

    if not isinstance(manifest, pd.DataFrame) or "path" not in manifest.columns:
        raise ValueError("extract needs a pandas DataFrame manifest with a 'path' column")
    if on_error not in ON_ERROR_MODES:
        raise ValueError(f"on_error must be one of {ON_ERROR_MODES}, got {on_error!r}")
    if not isinstance(params, FeatureParams):
        raise ValueError(f"params must be a FeatureParams, got {type(params).__name__}")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")

    n = len(manifest)
    paths = [str(p) for p in manifest["path"]]
    starts = [_optional_time(v) for v in manifest["start"]] if "start" in manifest else [None] * n
    ends = [_optional_time(v) for v in manifest["end"]] if "end" in manifest else [None] * n

    feats = np.empty((n, params.frames, params.n_mels), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}

    folder = None
    if cache_dir is not None:
        folder = cache_folder(cache_dir, params)
        prepare_cache(folder, params)

    tasks: list = []  # pool.Task
    for i in range(n):
        entry = None
        if folder is not None:
            try:
                key = cache_key(paths[i], starts[i], ends[i])
            except OSError:
                key = None  # missing file: load_audio reports it with a proper message
            if key is not None:
                entry = folder / f"{key}.npy"
                cached = load_entry(entry, params)
                if cached is not None:
                    feats[i] = cached
                    ok[i] = True
                    continue
        tasks.append((i, paths[i], starts[i], ends[i], None if entry is None else str(entry)))

    n_workers = resolve_workers(workers, len(tasks)) if tasks else 1
    helped = 0
    with tqdm(
        total=n, initial=n - len(tasks), disable=not progress, desc="log-Mel", unit="file"
    ) as bar:
        if executor == "ray" and tasks:
            from data_prep.features.ray_pool import run_tasks_ray

            results = run_tasks_ray(tasks, params, address)
        else:
            results = run_tasks(tasks, params, n_workers)
        try:
            for index, value, reason, by_helper in results:
                helped += by_helper
                if value is None:
                    if on_error == "raise":
                        raise AudioError(f"{paths[index]}: {reason}")
                    reasons[index] = reason or "unknown error"
                else:
                    feats[index] = value
                    ok[index] = True
                bar.update(1)
        finally:
            # Close the generator now so that its pool shuts down before we raise or return.
            results.close()

    bad = [BadFile(paths[i], reasons[i]) for i in sorted(reasons)]
    out = manifest.iloc[np.flatnonzero(ok)].reset_index(drop=True)
    out.attrs = dict(manifest.attrs)
    out.attrs["bad_files"] = list(manifest.attrs.get("bad_files", [])) + bad
    out.attrs["extract_stats"] = {
        "rows": n,
        "from_cache": n - len(tasks),
        "computed": len(tasks),
        "computed_by_helpers": int(helped),
        "bad": len(bad),
        "workers": n_workers,
        "executor": executor,
    }
    if bad:
        shown = "; ".join(f"{b.path}: {b.reason}" for b in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        warnings.warn(
            f"extract: skipped {len(bad)} of {n} file(s) that cannot be used: {shown}{more}; "
            "see manifest_out.attrs['bad_files']",
            stacklevel=2,
        )
    return feats[ok], out
