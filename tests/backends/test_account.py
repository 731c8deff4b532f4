"""The unprivileged account PostgreSQL runs as (root only): created once, even when
several environments start at the same moment on a fresh machine."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("userdel") is None,
    reason="creates a system account: needs root and useradd/userdel",
)

ASK = (
    "import sys, time; from resilience.backends.postgres import unprivileged_account; "
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
    "print(unprivileged_account(sys.argv[1]).uid)"
)


def test_processes_starting_at_once_get_one_new_account() -> None:
    name = f"rs-test-{secrets.token_hex(4)}"
    start_at = f"{time.time() + 1.5:.3f}"  # all ask in the same instant
    try:
        children = [
            subprocess.Popen([sys.executable, "-c", ASK, name, start_at], stdout=subprocess.PIPE)
            for _ in range(4)
        ]
        uids = {int(child.communicate(timeout=60)[0]) for child in children}
        created = pwd.getpwnam(name).pw_uid
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
    assert uids == {created}  # nobody fell back to "nobody" or saw a uid not there yet
    assert created != pwd.getpwnam("nobody").pw_uid
