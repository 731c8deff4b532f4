"""Local images for the docker backend, built from Debian packages: no registry needed.

``resilience images build`` (or :func:`build_images`) makes, in order:

1. ``resilience-local/base:bookworm``: a ``debootstrap --variant=minbase``
   root filesystem with PostgreSQL, Redis and Python from Debian, brought in
   with ``docker import``. The root filesystem tarball is cached
   (``<cache>/rootfs-bookworm.tar``), so rebuilding after the engine's data
   root was wiped skips debootstrap.
2. ``resilience-local/postgres:15``: the official ``postgres`` image's
   interface (``POSTGRES_USER/PASSWORD/DB``, command ``postgres ARGS``), with
   the cluster initialised at build time so a container starts in well under
   a second.
3. ``resilience-local/redis:7``: ``redis-server ARGS``, like ``redis:7``.
4. ``resilience-local/fault-proxy:<TOXIPROXY_VERSION>``: our
   Toxiproxy-compatible server (``resilience proxy``), taking
   ``toxiproxy-server``'s flags as ``ghcr.io/shopify/toxiproxy`` does; the
   package is installed from wheels built on the host (no network in the build).
   The docker backend also runs the booking API stub from it
   (``/opt/resilience/bin/python -m resilience.upstream``), so its recipe hash
   follows the stub's sources too.

Each image carries a label with the hash of its recipe; a build skips an
image whose tag exists with the same hash (idempotent), and rebuilds one whose
recipe changed. Image names are configuration
(:class:`~resilience.backends.config.EnvironmentConfig`): a team with a
registry uses ``postgres:16``, ``redis:7`` and ``ghcr.io/shopify/toxiproxy``
unchanged, since the three take the same environment and arguments.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from resilience.backends.errors import BackendUnavailable
from resilience.proxy.api import TOXIPROXY_VERSION

__all__ = [
    "BASE_IMAGE",
    "LOCAL_IMAGES",
    "BuildResult",
    "build_images",
    "default_cache_dir",
    "missing_images",
]

SUITE = "bookworm"
PREFIX = "resilience-local"
BASE_IMAGE = f"{PREFIX}/base:{SUITE}"
LOCAL_IMAGES: dict[str, str] = {
    "postgres": f"{PREFIX}/postgres:15",
    "redis": f"{PREFIX}/redis:7",
    "toxiproxy": f"{PREFIX}/fault-proxy:{TOXIPROXY_VERSION}",
}
"""Role → tag of the images :func:`build_images` makes (the docker backend's defaults)."""

PACKAGES = ("postgresql", "redis-server", "python3", "python3-venv", "ca-certificates")
RECIPE_LABEL = "org.resilience.recipe"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
IMAGE_PYTHON = "3.11.2"  # Debian bookworm's python3
IMAGE_MARKER_DEPENDENCIES = ("async-timeout>=4.0.3",)
IMAGE_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")

POSTGRES_ENTRYPOINT = r"""#!/bin/sh
# The official postgres image's interface: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB; `postgres ARGS...` runs the server as the postgres user.
# A cluster for the same user and database made at build time is reused.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PATH="$bin:$PATH"
PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
want="$user/$db/$(printf '%s' "${POSTGRES_PASSWORD:-}" | sha256sum | cut -c1-16)"
init() {
    rm -rf "$PGDATA"; mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"
    pw=$(mktemp); printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pw"; chown postgres "$pw"
    auth=scram-sha-256; [ -n "${POSTGRES_PASSWORD:-}" ] || auth=trust
    runuser -u postgres -- initdb -D "$PGDATA" -U "$user" --pwfile="$pw" -E UTF8 \
        --auth-local=trust --auth-host="$auth" --no-sync >/dev/null
    rm -f "$pw"
    if [ "$db" != postgres ]; then
        echo "CREATE DATABASE \"$db\"" \
            | runuser -u postgres -- postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "$want" >"$PGDATA/.resilience-init"
}
if [ "${1:-}" = init ]; then init; exit 0; fi
if [ "$(cat "$PGDATA/.resilience-init" 2>/dev/null)" != "$want" ]; then init; fi
# setpriv execs (runuser would stay as PID 1 and turn docker stop's SIGINT into SIGTERM,
# then SIGKILL): the server is PID 1 and gets the stop signal itself.
if [ "${1:-}" = postgres ]; then
    shift
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" "$@"
fi
exec "$@"
"""

DOCKERFILES: dict[str, str] = {
    "postgres": f"""FROM {BASE_IMAGE}
ENV PGDATA=/var/lib/postgresql/data POSTGRES_USER=resilience POSTGRES_PASSWORD=resilience \\
    POSTGRES_DB=resilience
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh \\
 && mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql \\
 && ln -s /usr/lib/postgresql/*/bin/pg_isready /usr/local/bin/pg_isready \\
 && docker-entrypoint.sh init
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
STOPSIGNAL SIGINT
CMD ["postgres"]
""",
    "redis": f"""FROM {BASE_IMAGE}
WORKDIR /data
CMD ["redis-server", "--save", "", "--appendonly", "no"]
""",
    "toxiproxy": f"""FROM {BASE_IMAGE}
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/resilience \\
 && /opt/resilience/bin/pip install -q --no-index --find-links /tmp/wheels resilience \\
 && rm -rf /tmp/wheels /root/.cache
ENTRYPOINT ["/opt/resilience/bin/resilience", "proxy"]
CMD ["-host", "0.0.0.0"]
""",
}


@dataclass(frozen=True, slots=True)
class BuildResult:
    """One image: its tag, whether it was built now (else it was up to date) and how long."""

    tag: str
    built: bool
    seconds: float


def default_cache_dir() -> Path:
    """Where the root filesystem tarball is kept: ``$RESILIENCE_IMAGE_CACHE`` or ``~/.cache``."""
    configured = os.environ.get("RESILIENCE_IMAGE_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resilience"


def _client() -> Any:
    try:
        import docker
    except ImportError:
        raise BackendUnavailable(
            "building images needs the Docker SDK: pip install 'resilience[docker]'"
        ) from None

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise BackendUnavailable(
            f"no Docker engine answers at {os.environ.get('DOCKER_HOST') or 'the default socket'}"
            " (start one with .ci/docker-engine start)"
        ) from exc
    return client


def _existing_recipe(client: Any, tag: str) -> str | None:
    import docker

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    labels = image.labels or {}
    return str(labels.get(RECIPE_LABEL, ""))


def missing_images(images: dict[str, str] | None = None, *, client: Any = None) -> list[str]:
    """The tags among ``images`` (default :data:`LOCAL_IMAGES`) the engine does not have."""
    import docker

    client = client or _client()
    missing = []
    for tag in (images or LOCAL_IMAGES).values():
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            missing.append(tag)
    return missing


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _project_digest() -> str:
    """Hash of the installed package's version and the sources the image runs: the proxy
    (``resilience proxy``) and the booking API stub (``python -m resilience.upstream``)."""
    import resilience.proxy
    import resilience.upstream

    files = [
        f
        for package in (resilience.proxy, resilience.upstream)
        for f in sorted(Path(str(package.__file__)).parent.rglob("*.py"))
    ]
    return _digest(metadata.version("resilience"), *(f.read_bytes() for f in files))


def _build_rootfs(cache: Path, mirror: str, log: Callable[[str], None]) -> Path:
    tarball = cache / f"rootfs-{SUITE}-{_digest(*PACKAGES)}.tar"
    if tarball.exists():
        return tarball
    if os.geteuid() != 0:
        raise BackendUnavailable("building the base image runs debootstrap, which needs root")
    if shutil.which("debootstrap") is None:
        raise BackendUnavailable(
            "building the base image needs debootstrap (apt-get install debootstrap)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=cache) as tmp:
        root = Path(tmp) / "root"
        log(f"debootstrap {SUITE} (minbase + {', '.join(PACKAGES)}) from {mirror}")
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
             str(root), mirror],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-5:])
            raise BackendUnavailable(f"debootstrap failed (exit {result.returncode}): {tail}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                     "usr/share/man", "usr/share/locale"):  # fmt: skip
            shutil.rmtree(root / junk, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True
        )
        partial.rename(tarball)
    return tarball


def _context(role: str, wheels: Path | None) -> io.BytesIO:
    """The build context of ``role`` as an in-memory tar (the engine's build input)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        add("Dockerfile", DOCKERFILES[role].encode())
        if role == "postgres":
            add("docker-entrypoint.sh", POSTGRES_ENTRYPOINT.encode(), 0o755)
        if wheels is not None:
            tar.add(str(wheels), arcname="wheels")
    buffer.seek(0)
    return buffer


def _wheels(into: Path, log: Callable[[str], None]) -> Path:
    """Wheels of this package and its dependencies for the image's Python (3.11.2, glibc 2.36).

    Resolved for that interpreter, not the host's. pip's ``--python-version``
    does not set ``python_full_version`` in markers, so the dependencies behind
    such a marker are named here: redis needs ``async-timeout`` below 3.11.3.
    """
    project = Path(__file__).resolve().parents[2]
    source = str(project) if (project / "pyproject.toml").exists() else "resilience"
    log(f"pip wheel {source} + pip download its dependencies for {IMAGE_PYTHON}")
    steps = [
        ["wheel", "-q", "--no-deps", "-w", str(into), source],
        ["download", "-q", "-d", str(into), "--only-binary=:all:",
         "--python-version", IMAGE_PYTHON, "--implementation", "cp", "--abi", "cp311",
         *(f"--platform={p}" for p in IMAGE_PLATFORMS),
         "--find-links", str(into), "resilience", *IMAGE_MARKER_DEPENDENCIES],
    ]  # fmt: skip
    for step in steps:
        result = subprocess.run(
            [sys.executable, "-m", "pip", *step], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BackendUnavailable(f"pip {step[0]} failed: {result.stderr.strip()[-400:]}")
    return into


def build_images(
    *,
    force: bool = False,
    mirror: str = DEFAULT_MIRROR,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[BuildResult]:
    """Build the base and the three local images, skipping those up to date.

    Needs a Docker engine (``DOCKER_HOST``), and for the base image root and
    ``debootstrap``. Raises :class:`BackendUnavailable` with one sentence when
    a step cannot run here.
    """
    import docker

    client = _client()
    cache = cache_dir or default_cache_dir()
    results: list[BuildResult] = []

    base_recipe = _digest(SUITE, *PACKAGES)
    started = time.monotonic()
    if force or _existing_recipe(client, BASE_IMAGE) != base_recipe:
        tarball = _build_rootfs(cache, mirror, log)
        log(f"docker import {tarball.name} {BASE_IMAGE}")
        repository, tag = BASE_IMAGE.rsplit(":", 1)
        client.api.import_image_from_file(
            str(tarball),
            repository=repository,
            tag=tag,
            changes=[f"LABEL {RECIPE_LABEL}={base_recipe}", "ENV LANG=C.UTF-8"],
        )
        results.append(BuildResult(BASE_IMAGE, True, time.monotonic() - started))
    else:
        results.append(BuildResult(BASE_IMAGE, False, 0.0))
    base_id = client.images.get(BASE_IMAGE).id

    for role, tag in LOCAL_IMAGES.items():
        extra = {"postgres": POSTGRES_ENTRYPOINT, "toxiproxy": _project_digest()}.get(role, "")
        recipe = _digest(base_id, DOCKERFILES[role], extra)
        if not force and _existing_recipe(client, tag) == recipe:
            results.append(BuildResult(tag, False, 0.0))
            continue
        started = time.monotonic()
        log(f"docker build {tag}")
        with tempfile.TemporaryDirectory(prefix="resilience-wheels-") as tmp:
            wheels = _wheels(Path(tmp), log) if role == "toxiproxy" else None
            context = _context(role, wheels)
            try:
                client.images.build(
                    fileobj=context,
                    custom_context=True,
                    tag=tag,
                    labels={RECIPE_LABEL: recipe},
                    network_mode="host",
                    rm=True,
                    forcerm=True,
                )
            except docker.errors.BuildError as exc:
                tail = "".join(str(c.get("stream", "")) for c in exc.build_log)[-600:]
                raise BackendUnavailable(f"building {tag} failed: {exc.msg}\n{tail}") from exc
        results.append(BuildResult(tag, True, time.monotonic() - started))
    client.images.prune(filters={"dangling": True})  # layers of failed or replaced builds
    return results
