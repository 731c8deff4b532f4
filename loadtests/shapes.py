"""The one Locust load shape: it asks the resolved profile shape each tick.

Locust picks up the first :class:`~locust.LoadTestShape` in the locustfile,
so there is exactly one, and it delegates: the arithmetic lives in
:mod:`loadtests.stages` as pure functions of elapsed seconds. With no
``--load-profile`` and no ``--shape``, Locust's own ``-u``/``-r``/``-t`` drive the
run (``use_common_options``), i.e. a steady shape.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests.options import resolve
from loadtests.stages import Shape, SteadyShape

__all__ = ["ProfileShape"]


class ProfileShape(LoadTestShape):
    """Adapter from :class:`loadtests.stages.Shape` to Locust's ``tick`` protocol."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._shape: Shape | None = None

    def _resolved(self) -> Shape:
        if self._shape is None:
            environment = self.runner.environment  # type: ignore[union-attr]  # set by Locust
            options = environment.parsed_options
            shape = resolve(options, host=environment.host).shape
            if shape is None:
                users = int(getattr(options, "num_users", None) or 1)
                shape = SteadyShape(
                    users=users,
                    duration_s=float(getattr(options, "run_time", None) or 365 * 86400),
                    spawn_rate=float(getattr(options, "spawn_rate", None) or users),
                )
            self._shape = shape
        return self._shape

    def reset_time(self) -> None:
        super().reset_time()
        self._shape = None

    def tick(self) -> tuple[int, float] | None:
        stage = self._resolved().stage_at(self.get_run_time())
        return None if stage is None else (stage.users, stage.spawn_rate)
