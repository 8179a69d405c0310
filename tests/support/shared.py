"""Session fixtures built once for all pytest-xdist workers (the pattern of xdist's docs).

Under ``-n auto`` every worker is its own process with its own session, so a session fixture
used by test files on two workers is built twice. :func:`once_per_run` builds it in the first
worker that asks, saves it in the run's shared temporary folder, and lets the others load it,
a file lock keeping them from building it at the same time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from filelock import FileLock

T = TypeVar("T")


def once_per_run(
    tmp_path_factory,
    name: str,
    build: Callable[[], T],
    save: Callable[[T, Path], None],
    load: Callable[[Path], T],
) -> T:
    """``build()`` in one worker of the run; ``load`` of what it saved in the others.

    Args:
        tmp_path_factory: pytest's session-scoped factory (its base folder's parent is shared
            by the workers of one run, and new for each run).
        name: The artefact's folder name, unique within the test suite.
        build: Makes the artefact.
        save: Writes it into an empty folder (the argument).
        load: Reads it back from that folder.

    Returns:
        What ``build`` returned (in the worker that built it), else what ``load`` returned.
        Without xdist, ``build()`` itself.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build()
    root = tmp_path_factory.getbasetemp().parent / "shared"
    root.mkdir(exist_ok=True)
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if done.is_file():
            return load(folder)
        value = build()
        folder.mkdir()
        save(value, folder)
        done.touch()  # last: a worker killed while saving leaves no half artefact behind
        return value
