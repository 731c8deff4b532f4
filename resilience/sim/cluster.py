"""Where tuning trials run: a local process pool, or an existing Dask cluster.

Both are :class:`concurrent.futures.Executor` objects, so the search loop in
:mod:`resilience.sim.tune` does not know which it has. :func:`local_pool`
forks worker processes on this machine; :func:`dask_executor` connects to a
Dask distributed scheduler (``tcp://host:8786``) and uses the executor
interface of its client. Dask rather than Ray: ``pip install
dask[distributed]`` is pure Python (Ray ships a large binary wheel, a raylet
and a GCS server), its scheduler and workers are two plain commands, and its
client *is* a ``concurrent.futures`` executor. Workers need the same
``resilience`` installed (they import :func:`resilience.sim.trial.run_trial`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

__all__ = ["ClusterError", "dask_executor", "local_pool"]

CONNECT_TIMEOUT_S = 10.0


class ClusterError(RuntimeError):
    """A cluster that does not answer or cannot run trials (the message says why)."""


@contextlib.contextmanager
def local_pool(workers: int | None = None) -> Iterator[tuple[Executor, int]]:
    """A process pool on this machine and its width (default: every core)."""
    width = max(1, workers or os.cpu_count() or 1)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(width, mp_context=multiprocessing.get_context(method)) as pool:
        yield pool, width


def _worker_version() -> str:
    """Runs on each Dask worker: the resilience it would run trials with."""
    from importlib.metadata import version

    import resilience.sim.trial  # noqa: F401  # fails here if the package is missing

    return version("resilience")


@contextlib.contextmanager
def dask_executor(
    address: str, *, timeout_s: float = CONNECT_TIMEOUT_S
) -> Iterator[tuple[Executor, int]]:
    """The executor of a Dask client connected to ``address``, and the cluster's threads.

    Raises :class:`ClusterError` within about ``timeout_s`` when no scheduler
    answers there, when it has no worker, or when a worker lacks ``resilience``;
    the client is closed however this ends.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(
            "--cluster needs Dask distributed: pip install 'resilience[cluster]'"
        ) from None
    client: Any = None
    try:
        try:
            client = Client(  # type: ignore[no-untyped-call]
                address, timeout=timeout_s, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"no Dask scheduler answers at {address!r} within {timeout_s:g} s "
                f"({type(exc).__name__}); start one with 'dask scheduler' and "
                "'dask worker ADDRESS' (docs/simulation.md)"
            ) from None
        threads = sum(client.nthreads().values())
        if threads == 0:
            raise ClusterError(f"the Dask scheduler at {address!r} has no worker")
        try:
            versions = client.run(_worker_version)
        except Exception as exc:
            raise ClusterError(
                f"a Dask worker at {address!r} cannot run trials ({type(exc).__name__}: "
                f"{exc}); install the same resilience on every worker"
            ) from None
        from importlib.metadata import version

        mine = version("resilience")
        other = {w: v for w, v in versions.items() if v != mine}
        if other:
            raise ClusterError(f"Dask workers run another resilience than {mine}: {other}")
        executor = client.get_executor(pure=False)
        yield executor, threads
    finally:
        if client is not None:
            client.close(timeout=timeout_s)
