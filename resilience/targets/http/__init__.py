"""An HTTP service under test: started from its command (or already running), driven by
templated requests, answers classified at the HTTP boundary.

:mod:`.templates` (``{name}`` filling), :mod:`.process` (the child process:
own group, log file, parent-death signal, SIGTERM then SIGKILL),
:mod:`.render` (requests from templates, deterministic per seed and
sequence number), :mod:`.classify` (ok/degraded/error and the path),
:mod:`.target` (the :class:`~resilience.targets.base.Target`),
:mod:`.metrics` (the ``http.*`` vocabulary), :mod:`.prometheus` (scrapes).
"""

from __future__ import annotations

from resilience.targets.http.process import TargetProcess, TargetStartError
from resilience.targets.http.target import HttpTarget

__all__ = ["HttpTarget", "TargetProcess", "TargetStartError"]
