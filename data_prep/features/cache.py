"""The on-disk feature cache: one ``.npy`` per file (or segment), written atomically.

Entries live in ``cache_dir/<FeatureParams.fingerprint()>/`` keyed by :func:`cache_key` (resolved
path, size, mtime, segment), so a change of any parameter or of the file uses another entry, and
an interrupted extraction resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from data_prep.features.params import FeatureParams

#: Temporary cache files older than this (seconds) are left over from killed runs and are deleted;
#: younger ones may belong to a concurrent run that is writing them right now.
_STALE_TMP_SECONDS = 3600.0

_TMP_PREFIX = ".tmp-"


def cache_key(path: str | Path, start: float | None = None, end: float | None = None) -> str:
    """Identity of one file (or segment) for the cache: resolved path, size, mtime_ns, start, end.

    Editing, replacing or touching the file changes size or mtime and so the key; a stale entry
    is then simply never read again.

    Raises:
        OSError: the file does not exist or cannot be stat'ed.
    """
    resolved = Path(path).resolve()
    st = resolved.stat()
    ident = [str(resolved), st.st_size, st.st_mtime_ns, start, end]
    return hashlib.sha256(json.dumps(ident).encode("utf-8")).hexdigest()[:32]


def cache_folder(cache_dir: str | Path, params: FeatureParams) -> Path:
    """The folder holding the entries computed with ``params``: ``cache_dir/<fingerprint>``."""
    return Path(cache_dir) / params.fingerprint()


def atomic_write_bytes(path: Path, write) -> None:
    """Write a file via a temporary in the same folder and ``os.replace``.

    A reader (or the next run) sees either no file or a complete one, never a half-written entry:
    ``os.replace`` within a folder is atomic on POSIX and Windows. A killed writer leaves only a
    ``.tmp-*`` file, which lookups never read.
    """
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_entry(path: Path, feats: np.ndarray) -> None:
    atomic_write_bytes(path, lambda f: np.save(f, feats, allow_pickle=False))


def load_entry(path: Path, params: FeatureParams) -> np.ndarray | None:
    """A cached entry, or None if absent or unusable (wrong shape/dtype, truncated, NaN).

    An unusable entry is treated as a miss and overwritten: the atomic writes make it unlikely,
    but a disk fault or a hand-copied folder should cost a recomputation, not a crash.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # absent, truncated, or not an .npy file
        return None
    if (
        arr.shape != (params.frames, params.n_mels)
        or arr.dtype != np.float32
        or not np.all(np.isfinite(arr))
    ):
        return None
    return arr


def prepare_cache(folder: Path, params: FeatureParams) -> None:
    """Create the cache folder, record its parameters, and delete stale temporaries."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "params.json"
    if not meta.exists():
        # For humans: which parameters produced this folder.
        text = json.dumps(
            {"fingerprint": params.fingerprint(), "params": params.to_dict()}, indent=2
        )
        atomic_write_bytes(meta, lambda f: f.write(text.encode("utf-8")))
    now = time.time()
    for tmp in folder.glob(_TMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                tmp.unlink()
