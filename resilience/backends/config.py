"""Environment configuration and the URLs an environment hands out.

Configuration comes, weakest first, from defaults, a TOML or YAML file
(``RESILIENCE_CONFIG``, keys at top level or under ``[environment]``), and
``RESILIENCE_*`` environment variables; explicit arguments beat them all.

=============================  ==================================================
environment variable           field
=============================  ==================================================
RESILIENCE_BACKEND             ``backend``: auto | local | docker | external
RESILIENCE_PG_BIN              ``pg_bin``: directory with initdb and postgres
RESILIENCE_REDIS_SERVER        ``redis_server``: redis-server / valkey-server path
RESILIENCE_TOXIPROXY_SERVER    ``toxiproxy_server``: toxiproxy-server path
RESILIENCE_STATE_DIR           ``state_dir``: markers, data dirs, template cache
RESILIENCE_STARTUP_TIMEOUT_S   ``startup_timeout_s`` (default 30)
RESILIENCE_POSTGRES_URL        external: proxied PostgreSQL URL
RESILIENCE_REDIS_URL           external: proxied Redis URL
RESILIENCE_POSTGRES_DIRECT_URL external: direct PostgreSQL URL
RESILIENCE_REDIS_DIRECT_URL    external: direct Redis URL
RESILIENCE_TOXIPROXY_URL       external: Toxiproxy API URL
RESILIENCE_POSTGRES_UPSTREAM   external: PostgreSQL address as the proxy sees it
RESILIENCE_REDIS_UPSTREAM      external: Redis address as the proxy sees it
RESILIENCE_POSTGRES_IMAGE      docker: PostgreSQL image (e.g. postgres:16)
RESILIENCE_REDIS_IMAGE         docker: Redis image (e.g. redis:7)
RESILIENCE_TOXIPROXY_IMAGE     docker: fault proxy image (e.g. ghcr.io/shopify/toxiproxy)
RESILIENCE_BOOKING_API_IMAGE   docker: an image with this package, for the booking API stub
=============================  ==================================================
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resilience.backends.errors import ConfigurationError

__all__ = ["BACKENDS", "EnvironmentConfig", "EnvironmentURLs"]

BACKENDS = ("auto", "local", "docker", "external")


@dataclass(frozen=True, slots=True)
class EnvironmentURLs:
    """Where the servers of an environment answer.

    ``postgres`` and ``redis`` go through the fault proxies: the system under
    test uses only these. The ``*_direct`` ones bypass the proxies (for
    set-up, seeding and checks).
    """

    postgres: str
    redis: str
    postgres_direct: str
    redis_direct: str
    toxiproxy_api: str
    # the booking API stub (resilience.upstream) through proxy "booking-api", and direct;
    # "" on a backend that does not start it (yet: docker, external)
    booking_api: str = ""
    booking_api_direct: str = ""

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def as_env(self) -> dict[str, str]:
        """The ``RESILIENCE_*`` variables that let the ``external`` backend reuse these."""
        return {
            "RESILIENCE_POSTGRES_URL": self.postgres,
            "RESILIENCE_REDIS_URL": self.redis,
            "RESILIENCE_POSTGRES_DIRECT_URL": self.postgres_direct,
            "RESILIENCE_REDIS_DIRECT_URL": self.redis_direct,
            "RESILIENCE_TOXIPROXY_URL": self.toxiproxy_api,
            "RESILIENCE_BOOKING_API_URL": self.booking_api,
            "RESILIENCE_BOOKING_API_DIRECT_URL": self.booking_api_direct,
        }


_ENV_FIELDS = {
    "RESILIENCE_BACKEND": "backend",
    "RESILIENCE_PG_BIN": "pg_bin",
    "RESILIENCE_REDIS_SERVER": "redis_server",
    "RESILIENCE_TOXIPROXY_SERVER": "toxiproxy_server",
    "RESILIENCE_STATE_DIR": "state_dir",
    "RESILIENCE_STARTUP_TIMEOUT_S": "startup_timeout_s",
    "RESILIENCE_POSTGRES_URL": "postgres_url",
    "RESILIENCE_REDIS_URL": "redis_url",
    "RESILIENCE_POSTGRES_DIRECT_URL": "postgres_direct_url",
    "RESILIENCE_REDIS_DIRECT_URL": "redis_direct_url",
    "RESILIENCE_TOXIPROXY_URL": "toxiproxy_url",
    "RESILIENCE_BOOKING_API_URL": "booking_api_url",
    "RESILIENCE_BOOKING_API_DIRECT_URL": "booking_api_direct_url",
    "RESILIENCE_POSTGRES_UPSTREAM": "postgres_upstream",
    "RESILIENCE_REDIS_UPSTREAM": "redis_upstream",
    "RESILIENCE_POSTGRES_IMAGE": "postgres_image",
    "RESILIENCE_REDIS_IMAGE": "redis_image",
    "RESILIENCE_TOXIPROXY_IMAGE": "toxiproxy_image",
    "RESILIENCE_BOOKING_API_IMAGE": "booking_api_image",
}


@dataclass(frozen=True, slots=True)
class EnvironmentConfig:
    """Everything a backend may be told. All fields are optional."""

    backend: str = "auto"
    # local backend
    pg_bin: str | None = None
    redis_server: str | None = None
    toxiproxy_server: str | None = None
    state_dir: Path | None = None
    pg_template_cache: bool = True
    pg_settings: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 30.0
    # external backend
    postgres_url: str | None = None
    redis_url: str | None = None
    postgres_direct_url: str | None = None
    redis_direct_url: str | None = None
    toxiproxy_url: str | None = None
    booking_api_url: str | None = None  # optional: the booking API stub, if one runs
    booking_api_direct_url: str | None = None
    postgres_upstream: str | None = None
    redis_upstream: str | None = None
    # docker backend: the images `resilience images build` makes (images.LOCAL_IMAGES);
    # postgres:16, redis:7, ghcr.io/shopify/toxiproxy:2.12.0 work unchanged
    postgres_image: str = "resilience-local/postgres:15"
    redis_image: str = "resilience-local/redis:7"
    toxiproxy_image: str = "resilience-local/fault-proxy:2.12.0"
    # the booking API stub runs from the project's own image (it carries the package)
    booking_api_image: str = "resilience-local/fault-proxy:2.12.0"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigurationError(
                f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}"
            )
        if self.startup_timeout_s <= 0:
            raise ConfigurationError(
                f"startup_timeout_s must be positive; got {self.startup_timeout_s!r}"
            )

    def replace(self, **changes: Any) -> EnvironmentConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "configuration"
    ) -> EnvironmentConfig:
        """Build from a plain mapping, naming unknown keys and bad values."""
        if "environment" in data and isinstance(data["environment"], Mapping):
            data = data["environment"]
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigurationError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, raw in data.items():
            values[key] = _coerce(key, raw, source)
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> EnvironmentConfig:
        """Read a ``.toml`` or ``.yaml``/``.yml`` file."""
        file = Path(path)
        try:
            text = file.read_text()
        except OSError as exc:
            raise ConfigurationError(f"cannot read configuration file {file}: {exc}") from exc
        try:
            if file.suffix == ".toml":
                data: Any = tomllib.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text) or {}
        except Exception as exc:
            raise ConfigurationError(f"{file} is not valid TOML/YAML: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{file}: expected a mapping at the top level")
        return cls.from_mapping(data, source=str(file))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> EnvironmentConfig:
        """Defaults ← ``RESILIENCE_CONFIG`` file ← ``RESILIENCE_*`` variables ← ``overrides``."""
        environ = os.environ if env is None else env
        base = cls()
        if environ.get("RESILIENCE_CONFIG"):
            base = cls.from_file(environ["RESILIENCE_CONFIG"])
        values = {
            name: _coerce(name, environ[var], var)
            for var, name in _ENV_FIELDS.items()
            if environ.get(var)
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return base.replace(**values)


def _coerce(key: str, raw: Any, source: str) -> Any:
    kind = {
        "state_dir": Path,
        "startup_timeout_s": float,
        "pg_template_cache": bool,
    }.get(key)
    if key == "pg_settings":
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"{source}: pg_settings must be a mapping; got {raw!r}")
        return {str(k): str(v) for k, v in raw.items()}
    if kind is None:
        return str(raw)
    if kind is bool and isinstance(raw, str):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    try:
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{source}: {key} has a bad value {raw!r}") from exc
