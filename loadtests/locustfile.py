"""Locust entry point: wiring only.

    locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 \
        --load-profile smoke [--shape spike --shape-params "spike_users=50"] \
        [--toxiproxy-url http://127.0.0.1:8474] [--csv reports/load/run]

The user (:mod:`loadtests.users`), the shape (:mod:`loadtests.shapes`), the
options (:mod:`loadtests.options`) and the two hooks (:mod:`loadtests.faults`,
:mod:`loadtests.gates`) live in their own modules; ``resilience load PROFILE``
starts the environment and the service and runs this file headless.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# Locust imports this file by path; make the package beside it importable
# whatever the working directory is.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from locust import events  # noqa: E402  (after the path fix above)

from loadtests import options  # noqa: E402
from loadtests.faults import FaultHook  # noqa: E402
from loadtests.gates import GateHook  # noqa: E402
from loadtests.http_user import TargetUser  # noqa: E402
from loadtests.shapes import ProfileShape  # noqa: E402
from loadtests.users import WizardUser  # noqa: E402

__all__ = ["ProfileShape", "TargetUser", "WizardUser"]

events.init_command_line_parser.add_listener(options.add_arguments)


@events.init.add_listener
def _attach_hooks(environment: Any, **_: Any) -> None:
    options.check(environment)
    _pick_user(environment)
    faults = FaultHook()
    faults.attach(environment)
    GateHook(faults).attach(environment)


def _pick_user(environment: Any) -> None:
    """The profile's user: :class:`TargetUser` for an HTTP target (a profile with
    ``requests``), else :class:`WizardUser`; user classes named on the command line win."""
    if getattr(environment.parsed_options, "user_classes", None):
        return
    settings = options.resolve(environment.parsed_options, host=environment.host)
    target = settings.load_target
    if target is not None and target.requests:
        TargetUser.network_timeout = max(float(r.timeout) for r in target.requests)
        environment.user_classes = [TargetUser]
    else:
        environment.user_classes = [WizardUser]
