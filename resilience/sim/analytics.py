"""A modelled ``analytics_events`` table: the service's batch writer through the Postgres pool.

The real service writes every lookup's event to ``analytics_events`` in
batches of 10 (:class:`~resilience.service.analytics.AnalyticsBatcher`),
on connections of the *same* pool the lookups use. At 200 lookups/s that is
about 20 batch inserts a second, so the writer is the pool's busiest client:
it decides which connections stay on top of the last-in first-out idle
stack. Behind a toxic that acts on only some connections (``toxicity`` < 1)
this matters more than anything else: a slow connection is mostly held by
the writer (an insert on it takes the toxic's latency, the next batch is
ready by then), so lookups mostly get fast ones. Without the writer the
simulator put 12–18 × as many lookups on the slow connection as the real
service did (latency 300 ms, toxicity 0.3).

The simulator runs the service's own :class:`AnalyticsBatcher`; only the
insert is modelled: one round trip on a pooled connection (about
:data:`EVENT_BYTES` per event up, a CommandComplete back), bounded by the
same timeout as the real writer's pool (``db.timeout_s`` × 5), a failed or
abandoned insert closing its connection.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from resilience.service.analytics import AnalyticsEvent
from resilience.service.timeouts import bounded
from resilience.sim.distributions import Distribution
from resilience.sim.pool import ModelPool
from resilience.sim.proxy import ModelProxy

__all__ = ["EVENT_BYTES", "ModelAnalyticsTable"]

EVENT_BYTES = 220
"""One event's share of the batch INSERT (its JSON properties and the other columns)."""
_STATEMENT_BYTES = 260
_REPLY_BYTES = 32  # CommandComplete "INSERT 0 10" + ReadyForQuery


class ModelAnalyticsTable:
    """Counts the rows the writer stored; :meth:`write` is the batcher's writer."""

    def __init__(
        self,
        proxy: ModelProxy,
        pool: ModelPool,
        *,
        rng: random.Random,
        insert_time: Distribution,
        timeout_s: float,
    ) -> None:
        self.proxy = proxy
        self.pool = pool
        self.rng = rng
        self.insert_time = insert_time
        self.timeout_s = timeout_s
        self.rows = 0

    async def write(self, batch: Sequence[AnalyticsEvent]) -> None:
        """Insert ``batch`` with one statement (raises like the real writer on failure)."""
        await bounded(self._insert(len(batch)), self.timeout_s, what="pool.execute")
        self.rows += len(batch)

    async def _insert(self, rows: int) -> None:
        conn = self.pool.try_acquire() or await self.pool.acquire()
        ok = False
        try:
            request = _STATEMENT_BYTES + EVENT_BYTES * rows
            await self.proxy.exchange(
                conn, request, _REPLY_BYTES, self.insert_time.sample(self.rng)
            )
            ok = True
        finally:
            self.pool.release(conn, broken=not ok)
