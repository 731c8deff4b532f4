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

Before a client is made, :func:`check_scheduler` asks the address itself,
under one deadline: a plain TCP connect (a refused port fails at once, where
Dask's own connect retries until its timeout) and then Dask's handshake and an
``identity`` call in a private event loop (a listener that accepts and never
answers fails at the deadline, where Dask's client could wait far longer).
Nothing it starts outlives it: the loop, its sockets and its threads end
with the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

__all__ = ["ClusterError", "check_scheduler", "dask_executor", "local_pool"]

CONNECT_TIMEOUT_S = 4.0
"""Seconds a scheduler has to answer (connect, handshake, identity) before giving up."""


class ClusterError(RuntimeError):
    """A cluster that does not answer or cannot run trials (the message says why)."""


@contextlib.contextmanager
def local_pool(workers: int | None = None) -> Iterator[tuple[Executor, int]]:
    """A process pool on this machine and its width (default: every core).

    A worker dies with the harness (SIGKILL when it goes, whatever ended it):
    left alone it would wait on its queue forever. A real trial's environment
    and service then go with their own reapers, as after a SIGKILL of
    ``resilience run``.
    """
    from resilience.backends.process import die_with_parent

    width = max(1, workers or os.cpu_count() or 1)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        width,
        mp_context=multiprocessing.get_context(method),
        initializer=die_with_parent,
        initargs=(signal.SIGKILL, os.getpid()),
    ) as pool:
        yield pool, width


def _worker_version() -> str:
    """Runs on each Dask worker: the resilience it would run trials with."""
    from importlib.metadata import version

    import resilience.sim.trial  # noqa: F401  # fails here if the package is missing

    return version("resilience")


def _no_answer(address: str, timeout_s: float, why: str) -> ClusterError:
    return ClusterError(
        f"no Dask scheduler answers at {address!r} within {timeout_s:g} s ({why}); "
        "start one with 'dask scheduler' and 'dask worker ADDRESS' (docs/simulation.md)"
    )


def check_scheduler(address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> dict[str, Any]:
    """The scheduler's ``identity`` at ``address``, or :class:`ClusterError` within ``timeout_s``.

    A refused connection fails at once; a listener that never answers, at the
    deadline. Runs in a private event loop that is closed before it returns.
    """
    deadline = time.monotonic() + timeout_s
    scheme, _, location = address.rpartition("://")
    if scheme in ("", "tcp", "tls"):  # before importing Dask: a refusal is known at once
        host, _, port = location.rpartition(":")
        if not host or not port.isdigit():
            raise ClusterError(
                f"--cluster {address!r}: write a scheduler address such as tcp://host:8786"
            )
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                pass
        except OSError as exc:
            raise _no_answer(address, timeout_s, exc.strerror or type(exc).__name__) from None
    from distributed.comm.core import connect

    async def identity() -> dict[str, Any]:
        comm = await connect(  # type: ignore[no-untyped-call]
            address, timeout=max(0.1, deadline - time.monotonic())
        )
        try:
            await comm.write({"op": "identity", "reply": True})
            reply = await comm.read()
        finally:
            comm.abort()
        if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
            raise ClusterError(f"{address!r} answers, but not as a Dask scheduler: {reply!r}")
        return reply

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(identity(), max(0.1, deadline - time.monotonic()))

    try:
        return asyncio.run(bounded())
    except ClusterError:
        raise
    except (OSError, TimeoutError) as exc:  # asyncio's TimeoutError is the built-in
        why = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise _no_answer(address, timeout_s, why) from None
    except Exception as exc:  # Dask's CommClosedError and kin: something else listens there
        raise _no_answer(address, timeout_s, f"{type(exc).__name__}: {exc}") from None


@contextlib.contextmanager
def dask_executor(
    address: str, *, timeout_s: float = CONNECT_TIMEOUT_S
) -> Iterator[tuple[Executor, int]]:
    """The executor of a Dask client connected to ``address``, and the cluster's threads.

    Raises :class:`ClusterError` within about ``timeout_s`` when no scheduler
    answers there, when it has no worker, or when a worker lacks ``resilience``;
    the client is closed however this ends.
    """
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise ClusterError("--cluster needs Dask distributed: pip install 'resilience[cluster]'")
    check_scheduler(address, timeout_s=timeout_s)
    from distributed import Client

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
