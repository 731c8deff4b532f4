"""The scenario sections that describe the service under test.

``target:`` is ``reference`` (the default: the reference service in
process) or an HTTP service (:class:`HttpTargetSpec`): a ``command`` the
harness starts, or only a ``url`` of one already running.
``dependencies:`` (:class:`DependencySpec`) names what the environment puts
behind a fault proxy: ``postgres`` and ``redis`` built in, any other TCP
service by ``upstream`` address; a fault's ``target`` is one of these names.
``workload.requests:`` (:class:`RequestSpec`) are an HTTP target's
operations. Templates (``{port}``, ``{postgres.url}``, ``{key}`` …) are
checked here, filled in :mod:`resilience.targets.http.templates`.

See docs/own-service.md and docs/scenarios.md.
"""

from __future__ import annotations

import difflib
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from resilience.scenario.durations import PositiveSeconds

__all__ = [
    "BUILTIN_DEPENDENCIES",
    "REQUEST_PLACEHOLDERS",
    "DegradedRule",
    "DependencySpec",
    "HttpTargetSpec",
    "PathFrom",
    "RequestSpec",
    "StatusCheck",
    "placeholders",
]

BUILTIN_DEPENDENCIES = ("postgres", "redis")
REQUEST_PLACEHOLDERS = ("key", "uuid", "seq", "random_int")
"""What a request template may name: the drawn key, a fresh UUID, the
operation's sequence number, a random integer (all from the run's seed)."""


class _Spec(BaseModel):
    # ``json`` is a field's YAML name (a BaseModel attribute otherwise): written back by alias
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )


def placeholders(text: str) -> list[str]:
    """The ``{names}`` of a template (``{{`` and ``}}`` are literal braces)."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise ValueError(f"bad template {text!r}: {exc}") from None


def _check_request_template(text: str, where: str) -> None:
    for name in placeholders(text):
        if name not in REQUEST_PLACEHOLDERS:
            hint = difflib.get_close_matches(name, REQUEST_PLACEHOLDERS, n=1)
            did = f"; did you mean {{{hint[0]}}}?" if hint else ""
            raise ValueError(
                f"{where}: unknown placeholder {{{name}}}{did} "
                f"(a request may use {', '.join('{' + p + '}' for p in REQUEST_PLACEHOLDERS)})"
            )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class DegradedRule(_Spec):
    """When a 2xx answer counts as ``degraded``: a ``header`` present (or equal to
    ``equals``), or the value at a ``json`` pointer equal to ``equals`` (present, when omitted)."""

    header: str | None = None
    json_pointer: str | None = Field(default=None, alias="json")
    equals: Any = None

    @model_validator(mode="after")
    def _one(self) -> DegradedRule:
        if (self.header is None) == (self.json_pointer is None):
            raise ValueError("a degraded_when rule needs exactly one of 'header' or 'json'")
        if self.json_pointer is not None and not self.json_pointer.startswith("/"):
            raise ValueError(f"'json' is a JSON pointer starting with '/': {self.json_pointer!r}")
        return self


class PathFrom(_Spec):
    """Where an answer says which path served it: a ``header`` or a ``json`` pointer."""

    header: str | None = None
    json_pointer: str | None = Field(default=None, alias="json")

    @model_validator(mode="after")
    def _one(self) -> PathFrom:
        if (self.header is None) == (self.json_pointer is None):
            raise ValueError("path_from needs exactly one of 'header' or 'json'")
        if self.json_pointer is not None and not self.json_pointer.startswith("/"):
            raise ValueError(f"'json' is a JSON pointer starting with '/': {self.json_pointer!r}")
        return self


class RequestSpec(_Spec):
    """One request of an HTTP workload (an operation named ``name``).

    ``path``, ``query``, ``headers``, ``json`` and ``body`` are templates
    (:data:`REQUEST_PLACEHOLDERS`). ``weight`` is relative. Outcome: 2xx/3xx
    ``ok`` (or ``degraded`` by ``degraded_when``), a status listed in
    ``status`` as given there (e.g. ``{404: ok}``), anything else, a timeout
    after ``timeout`` or a connection error ``error``.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    path: str = Field(pattern=r"^/")
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    weight: float = Field(default=1.0, gt=0)
    timeout: PositiveSeconds = 5.0
    status: dict[int, Literal["ok", "degraded", "error"]] = Field(default_factory=dict)
    degraded_when: list[DegradedRule] = Field(default_factory=list)
    path_from: PathFrom | None = None

    @model_validator(mode="after")
    def _templates(self) -> RequestSpec:
        if self.json_body is not None and self.body is not None:
            raise ValueError(f"request {self.name!r}: give 'json' or 'body', not both")
        for text in (self.path, *_strings(self.query), *_strings(self.headers)):
            _check_request_template(text, f"request {self.name!r}")
        for text in (*_strings(self.json_body), *_strings(self.body)):
            _check_request_template(text, f"request {self.name!r}")
        for code in self.status:
            if not 100 <= code <= 599:
                raise ValueError(f"request {self.name!r}: {code} is not an HTTP status")
        return self


class StatusCheck(_Spec):
    """A steady-state probe: ``get`` this path, expect ``status`` within ``within``."""

    get: str = Field(pattern=r"^/")
    status: int = Field(default=200, ge=100, le=599)
    within: PositiveSeconds = 5.0

    @model_validator(mode="after")
    def _template(self) -> StatusCheck:
        _check_request_template(self.get, f"steady_state.http {self.get!r}")
        return self


class HttpTargetSpec(_Spec):
    """A service reached over HTTP: started from ``command``, or already running at ``url``.

    ``command``, ``url``, ``env`` values and ``cwd`` are templates over
    ``{port}`` (a free port the harness picks) and each dependency's
    ``{name.url}``, ``{name.direct_url}``, ``{name.host}``, ``{name.port}``
    (and for PostgreSQL ``user``, ``password``, ``database``). ``ready``:
    the path answering 2xx once the service is up (within
    ``startup_timeout``). ``metrics``: a Prometheus text path to scrape.
    ``unresponsive_after``: during the run, the target counts as gone (the
    run fails, saying so) when no request was answered for this long, they
    timed out, and ``ready`` does not answer within 2 s either.
    """

    command: str | None = None
    url: str = "http://127.0.0.1:{port}"
    ready: str = Field(default="/health", pattern=r"^/")
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    startup_timeout: PositiveSeconds = 30.0
    shutdown_timeout: PositiveSeconds = 10.0
    unresponsive_after: PositiveSeconds = 10.0
    metrics: str | None = Field(default=None, pattern=r"^/")
    steady_state: list[StatusCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> HttpTargetSpec:
        if self.command is None and "{port}" in self.url:
            raise ValueError("a target without 'command' needs the 'url' of the running service")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"target url must start with http:// or https://: {self.url!r}")
        if self.command is not None and not self.command.strip():
            raise ValueError("target command is empty")
        return self

    @property
    def kind(self) -> str:
        return "http"

    def templates(self) -> list[tuple[str, str]]:
        """``(field, text)`` of every environment template (to check the names they use)."""
        out = [("target.url", self.url)]
        if self.command is not None:
            out.append(("target.command", self.command))
        if self.cwd is not None:
            out.append(("target.cwd", self.cwd))
        out.extend((f"target.env.{k}", v) for k, v in self.env.items())
        return out


class DependencySpec(_Spec):
    """A dependency behind its own fault proxy.

    ``postgres`` and ``redis`` are started by the environment; any other
    name needs the ``upstream`` address (``host:port``) of a running TCP
    service. ``init`` and ``seed`` (PostgreSQL only) are SQL files run, in
    order, on the direct URL before the run (paths relative to the
    scenario file).
    """

    upstream: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$")
    init: list[Path] = Field(default_factory=list)
    seed: list[Path] = Field(default_factory=list)


def check_dependencies(deps: dict[str, DependencySpec]) -> None:
    """Built-ins take no ``upstream``; others need one; SQL files only for PostgreSQL."""
    for name, dep in deps.items():
        if name in BUILTIN_DEPENDENCIES:
            if dep.upstream is not None:
                raise ValueError(
                    f"dependencies.{name}: the environment starts {name}; drop 'upstream'"
                )
        elif dep.upstream is None:
            hint = difflib.get_close_matches(name, BUILTIN_DEPENDENCIES, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(
                f"dependencies.{name}: not a built-in dependency{did}; give its "
                "'upstream: host:port' to put it behind a proxy"
            )
        if name != "postgres" and (dep.init or dep.seed):
            raise ValueError(f"dependencies.{name}: 'init' and 'seed' SQL files are for postgres")
