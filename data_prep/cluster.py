"""Connecting to Ray, for the executors of feature extraction and of the experiment grid.

Ray is an optional dependency (``pip install -e ".[ray]"``); nothing imports it unless an
executor ``"ray"`` is asked for. :func:`connect` either joins a running cluster (``address``:
``"auto"`` for the one ``ray start`` made on this machine, or ``HOST:PORT``) or starts a private
instance with this machine's cores, and checks the resources a task will ask for, so that a bad
address or a cluster too small for one task is a clear error at once rather than a hang.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

#: Seconds to wait for a TCP connection to a given cluster address before calling it unreachable.
CONNECT_TIMEOUT = 3.0


def import_ray():
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ValueError(
            "the ray executor needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.9')"
        ) from exc
    return ray


def check_address(address: str | None) -> None:
    """Fail at once (``ValueError``) when Ray is missing or ``address`` is malformed or nobody
    answers there; ``None`` and ``"auto"`` are only checked for Ray itself."""
    import_ray()
    if address in (None, "auto"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(
            f"--address {address!r}: expected HOST:PORT of a Ray head (ray start --head "
            "prints it) or 'auto'"
        )
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ValueError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            "'ray start --head', or leave --address out for a local instance"
        ) from None


@contextlib.contextmanager
def connect(
    address: str | None = None,
    *,
    cpus_per_task: float = 1,
    gpus_per_task: float = 0,
) -> Iterator[object]:
    """Connect to (or start) Ray for the duration of a ``with`` block; yields the ``ray`` module.

    Args:
        address: ``None``: a private local instance with this machine's CPUs (stopped at the end
            of the block); ``"auto"`` or ``"HOST:PORT"``: a running cluster (left running).
        cpus_per_task: CPUs one task will request; the cluster must have at least that many.
        gpus_per_task: GPUs (fractions allowed) one task will request.

    Raises:
        ValueError: Ray is not installed, the address is malformed or unreachable, or the
            cluster has fewer CPUs / GPUs than one task needs.
    """
    ray = import_ray()
    if cpus_per_task <= 0 or gpus_per_task < 0:
        raise ValueError(
            f"cpus per task must be > 0 and gpus >= 0, got {cpus_per_task}, {gpus_per_task}"
        )
    started_here = not ray.is_initialized()
    if started_here:
        if address not in (None, "auto"):
            check_address(address)
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            if address is None:
                cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
                ray.init(num_cpus=cpus, **kwargs)
            else:
                ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            raise ValueError(
                f"cannot connect to a Ray cluster at {address!r}: {exc}; start one with "
                "'ray start --head' or leave --address out"
            ) from None
    try:
        # A task runs on one node: the cluster's total could pass while no node fits it (a run
        # of 8 CPUs on two 4-CPU nodes would wait forever).
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
        if not any(
            r.get("CPU", 0) >= cpus_per_task and r.get("GPU", 0) >= gpus_per_task for r in nodes
        ):
            cpus = max((r.get("CPU", 0) for r in nodes), default=0)
            gpus = max((r.get("GPU", 0) for r in nodes), default=0)
            raise ValueError(
                f"no node of the Ray cluster has the resources of one task: the largest has "
                f"{cpus:g} CPUs and {gpus:g} GPUs; one task asks for {cpus_per_task:g} CPUs and "
                f"{gpus_per_task:g} GPUs"
            )
        yield ray
    finally:
        if started_here:
            ray.shutdown()
