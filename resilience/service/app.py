"""The HTTP API: FastAPI over a :class:`LookupService`; it only translates.

==========================  =========================================================
``GET /services/{slug}``    200 uuid or slug-only fallback (headers ``X-Lookup-Path``,
                            ``X-Lookup-Outcome``, ``Server-Timing``); 400 invalid
                            slug; 503 non-recoverable lookup error
``POST /jobs``              201 stored, 200 same idempotency key seen before, 202 queued
                            in the outbox; 422 field errors (an invalid ``micro_id``
                            refuses the job; ``answers`` deeper or larger than
                            ``jobs.answers_max_depth``/``_bytes``); 503 when storage
                            failed after retries (safe to retry with the key)
``GET /jobs/{id}``          200, 404, 503
``GET /availability``, ``POST /bookings``, ``GET|DELETE /bookings/{id}``: the booking
                            flow (:mod:`resilience.service.booking.routes`)
``GET /health``             200 healthy/degraded, 503 critical
``GET /metrics``            Prometheus text (every worker, as ``/stats``)
``GET /stats``              JSON metrics over every worker (:meth:`LookupService.service_stats`)
``WS /ws/events``           error events, breaker transitions, health changes and alerts
                            as JSON (:mod:`resilience.service.ws`)
``GET /errors``             recent error events (``?unresolved=true``)
``POST /errors/{id}/resolve``  mark an error event resolved (404 unknown id)
``POST /harness/crash/{c}`` crash background component ``c`` (only under the harness:
                            ``harness_control`` / ``RESILIENCE_HARNESS_CONTROL=1``)
==========================  =========================================================

Every request: a body larger than ``http.max_body_bytes`` is answered 413 before
it is read (:mod:`resilience.service.limits`). A slug refused with 400 is counted
as an ``invalid`` lookup (``/stats``, Prometheus ``outcome="invalid"``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Path, Query, Request, Response, WebSocket
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from resilience.errors import InvalidSlug, ResilienceError
from resilience.service.booking.routes import add_booking_routes
from resilience.service.config import ServiceConfig
from resilience.service.error_events import ErrorEvent
from resilience.service.limits import BodySizeLimit, answers_problem
from resilience.service.lookup import LookupService
from resilience.service.model import Job
from resilience.service.slug import MAX_SLUG_LENGTH, SLUG_PATTERN, validate_slug

__all__ = ["create_app"]

_FALLBACK_MESSAGE = "Service id unavailable; continuing with the slug only."


class ServiceLookupOut(BaseModel):
    slug: str
    uuid: uuid.UUID | None
    path: Literal["cache", "redis", "db", "fallback"]
    outcome: Literal["success", "fallback"]
    reason: str | None
    duration_us: int
    attempts: int
    message: str | None = Field(None, description="User-safe note on a fallback.")


class ErrorOut(BaseModel):
    error: str
    message: str
    retryable: bool = False
    correlation_id: str | None = None


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    micro_id: str = Field(
        ...,
        min_length=1,
        max_length=MAX_SLUG_LENGTH,
        pattern=SLUG_PATTERN,
        description="Slug of the micro service.",
    )
    answers: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str = Field(..., min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")

    @field_validator("micro_id", mode="before")
    @classmethod
    def _slug(cls, value: object) -> object:
        if isinstance(value, str):
            validate_slug(value)  # InvalidSlug is a ValueError: a 422 naming the field
        return value

    @field_validator("answers")
    @classmethod
    def _no_nul(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _has_nul(value):
            raise ValueError("answers must not contain NUL characters (\\u0000)")
        return value


class JobOut(BaseModel):
    id: int | None = Field(description="None while the job waits in the outbox (202).")
    micro_id: str
    micro_uuid: uuid.UUID | None
    answers: dict[str, Any]
    idempotency_key: str
    status: str
    created: bool = Field(description="False when the key had been stored before.")
    lookup_path: str | None = None


class HealthOut(BaseModel):
    status: Literal["healthy", "degraded", "critical"]
    components: dict[str, dict[str, Any]]


class _FastJSON(JSONResponse):
    """JSON via orjson (UUIDs and all), without FastAPI's response re-validation."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _has_nul(value: object) -> bool:
    """Whether a NUL is in any string of ``value`` (iterative: any depth is safe)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _error_event_out(event: ErrorEvent) -> dict[str, Any]:
    occurred = event.occurred_at
    return {
        "id": event.id,
        "severity": event.severity,
        "component": event.component,
        "category": event.error_type,
        "message": event.message,
        "correlation_id": event.correlation_id,
        "job_id": event.job_id,
        "resolved": event.resolved,
        "occurred_at": None if occurred is None else occurred.timestamp(),
        "stack_trace": event.stack_trace,
    }


def _job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        micro_id=job.micro_id,
        micro_uuid=job.micro_uuid,
        answers=job.answers,
        idempotency_key=job.idempotency_key,
        status=job.status,
        created=job.created,
        lookup_path=job.lookup_path,
    )


def _error(status: int, error: ResilienceError, code: str | None = None) -> JSONResponse:
    body = ErrorOut(
        error=code or type(error).__name__,
        message=error.user_message if status >= 500 else error.message,
        retryable=error.retryable,
        correlation_id=error.correlation_id,
    )
    return JSONResponse(body.model_dump(), status_code=status)


def create_app(
    service_or_config: LookupService | ServiceConfig | None = None,
    *,
    postgres_url: str | None = None,
    redis_url: str | None = None,
    harness_control: bool | None = None,
) -> FastAPI:
    """The FastAPI app over ``service_or_config``.

    Given a :class:`LookupService`, the app uses it and leaves its lifecycle
    to the caller. Given a :class:`ServiceConfig` (or ``None`` for the
    defaults), the app opens the service from ``postgres_url``/``redis_url``
    in its lifespan and closes it (flushing analytics) at shutdown.

    ``harness_control`` adds the harness's control endpoints (``None``: when
    the environment sets ``RESILIENCE_HARNESS_CONTROL=1``).
    """
    holder: dict[str, LookupService] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if isinstance(service_or_config, LookupService):
            holder["service"] = service_or_config
            yield
            return
        if postgres_url is None:
            raise ValueError("create_app needs postgres_url when given a config, not a service")
        from resilience.service.runtime import open_service

        config = service_or_config or ServiceConfig()
        async with open_service(config, postgres_url=postgres_url, redis_url=redis_url) as svc:
            holder["service"] = svc
            yield

    app = FastAPI(
        title="resilience reference service",
        version="1.0",
        description="Micro service slug → UUID lookup with cache, breaker, retry and fallback.",
        lifespan=lifespan,
    )
    if isinstance(service_or_config, LookupService):
        holder["service"] = service_or_config
        limits = service_or_config.config
    else:
        limits = service_or_config
    config = limits if isinstance(limits, ServiceConfig) else ServiceConfig()
    app.add_middleware(BodySizeLimit, max_body_bytes=config.http.max_body_bytes)

    def svc() -> LookupService:
        return holder["service"]

    @app.get(
        "/services/{slug}",
        response_model=ServiceLookupOut,
        responses={400: {"model": ErrorOut}, 503: {"model": ErrorOut}},
        summary="Look a micro service up by slug",
    )
    async def get_service(
        slug: Annotated[
            str,
            Path(
                min_length=1,
                max_length=MAX_SLUG_LENGTH,
                pattern=SLUG_PATTERN,
                description="Lowercase letters and digits in groups joined by single hyphens.",
            ),
        ],
    ) -> Any:
        result = await svc().lookup_result(slug)
        headers = {
            "X-Lookup-Path": result.path,
            "X-Lookup-Outcome": result.outcome,
            "X-Lookup-Duration-Us": str(result.duration_us),
            "Server-Timing": f"lookup;dur={result.duration_us / 1000:.3f}",
        }
        if result.outcome == "error":
            body = ErrorOut(
                error=result.reason or "error",
                message="The service lookup failed.",
                retryable=False,
                correlation_id=result.correlation_id,
            )
            return JSONResponse(body.model_dump(), status_code=503, headers=headers)
        # Built by hand (the shape of ServiceLookupOut): skipping response-model
        # validation keeps the hot path cheap.
        payload = result.to_dict()
        payload["message"] = _FALLBACK_MESSAGE if result.outcome == "fallback" else None
        return _FastJSON(payload, headers=headers)

    @app.post(
        "/jobs",
        response_model=JobOut,
        status_code=201,
        responses={
            200: {"model": JobOut, "description": "Stored earlier under the same key"},
            202: {"model": JobOut, "description": "Accepted into the outbox; stored later"},
            503: {"model": ErrorOut},
        },
        summary="Post a job (exactly once per idempotency key)",
    )
    async def post_job(body: JobIn, response: Response) -> Any:
        problem = answers_problem(
            body.answers,
            max_depth=config.jobs.answers_max_depth,
            max_bytes=config.jobs.answers_max_bytes,
        )
        if problem is not None:
            detail = [{"type": "value_error", "loc": ["body", "answers"], "msg": problem}]
            return JSONResponse({"detail": detail}, status_code=422)
        try:
            job = await svc().post_job(body.micro_id, body.answers, body.idempotency_key)
        except ResilienceError as exc:
            return _error(503, exc)
        if job.status == "queued":
            response.status_code = 202
        elif not job.created:
            response.status_code = 200
        return _job_out(job)

    @app.get(
        "/jobs/{job_id}",
        response_model=JobOut,
        responses={404: {"model": ErrorOut}, 503: {"model": ErrorOut}},
        summary="Read a job back",
    )
    async def get_job(job_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Any:
        try:
            job = await svc().get_job(job_id)
        except ResilienceError as exc:
            return _error(503, exc)
        if job is None:
            return JSONResponse(
                ErrorOut(error="not_found", message=f"no job {job_id}").model_dump(),
                status_code=404,
            )
        return _job_out(job)

    @app.get(
        "/health",
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "critical"}},
        summary="Component status",
    )
    async def health() -> Any:
        body = await svc().health()
        if svc().monitor is not None:
            svc().monitor.observe_health(body)
        return JSONResponse(body, status_code=503 if body["status"] == "critical" else 200)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def metrics(fresh: bool = True) -> PlainTextResponse:
        text = await svc().service_metrics_text(fresh=fresh)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/stats", summary="Lookup metrics as JSON, over every worker of the service")
    async def stats(fresh: bool = True) -> dict[str, Any]:
        """``scope`` is ``service`` (``workers`` merged through Redis) or ``worker``.

        ``fresh=false`` skips asking the other workers for a new snapshot
        (their last one, at most ``stats.publish_interval_s`` old, is used).
        """
        return await svc().service_stats(fresh=fresh)

    @app.websocket("/ws/events")
    async def ws_events(websocket: WebSocket) -> None:
        from resilience.service.ws import serve_events

        hub = svc().notifications
        if hub is None:
            await websocket.close(code=1011, reason="notifications are not enabled")
            return
        await serve_events(websocket, hub, send_timeout_s=hub.send_timeout_s)

    @app.get("/errors", summary="Recent error events, newest first")
    async def list_errors(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100, unresolved: bool = False
    ) -> Any:
        tracker = svc().error_tracker
        if tracker is None:
            return []
        try:
            events = await tracker.repository.recent(limit)
        except Exception as exc:  # the error store lives in PostgreSQL
            return _error(503, ResilienceError(f"error events unavailable: {exc}", retryable=True))
        return [_error_event_out(e) for e in events if not (unresolved and e.resolved)]

    @app.post(
        "/errors/{error_id}/resolve",
        responses={404: {"model": ErrorOut}, 503: {"model": ErrorOut}},
        summary="Mark an error event resolved (the health rules count unresolved ones)",
    )
    async def resolve_error(error_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Any:
        service = svc()
        tracker = service.error_tracker
        try:
            if tracker is None or await tracker.repository.get(error_id) is None:
                return JSONResponse(
                    ErrorOut(error="not_found", message=f"no error event {error_id}").model_dump(),
                    status_code=404,
                )
            changed = await tracker.repository.mark_resolved(error_id)
        except Exception as exc:  # the error store lives in PostgreSQL
            return _error(503, ResilienceError(f"error events unavailable: {exc}", retryable=True))
        if service.monitor is not None:
            service.monitor.observe_health(await service.health())
        return {"id": error_id, "resolved": True, "changed": changed}

    if harness_control or (
        harness_control is None and os.environ.get("RESILIENCE_HARNESS_CONTROL") == "1"
    ):

        @app.post(
            "/harness/crash/{component}",
            responses={404: {"model": ErrorOut}},
            summary="Crash a background component (harness fault injection)",
        )
        async def crash_component(component: str) -> Any:
            from resilience.service.components import UnknownComponent

            supervisor = svc().supervisor
            names = [] if supervisor is None else list(supervisor.names)
            try:
                if supervisor is None:
                    raise UnknownComponent(component)
                supervisor.crash(component)
            except UnknownComponent:
                return JSONResponse(
                    ErrorOut(
                        error="unknown_component",
                        message=f"no background component {component!r}; "
                        f"known: {', '.join(names) or 'none'}",
                    ).model_dump(),
                    status_code=404,
                )
            return {"crashed": component}

        @app.get("/harness/components", summary="Background components that can be crashed")
        async def harness_components() -> Any:
            supervisor = svc().supervisor
            return {} if supervisor is None else supervisor.states()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A bad slug in the path is refused with the slug rules spelled out (400).
        slug = request.path_params.get("slug")
        if slug is not None and any(
            tuple(e.get("loc", ())) == ("path", "slug") for e in exc.errors()
        ):
            try:
                validate_slug(slug)
            except InvalidSlug as error:
                svc().refused(slug)  # counted: /stats invalid, outcome="invalid"
                return _error(400, error, "invalid_slug")
        return await request_validation_exception_handler(request, exc)

    add_booking_routes(app, lambda: svc().bookings)

    @app.exception_handler(ResilienceError)
    async def _resilience_error(_: Request, exc: ResilienceError) -> JSONResponse:
        return _error(503 if exc.retryable else 400, exc)

    return app
