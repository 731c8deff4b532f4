"""The wizard user: Locust's fast HTTP client driving the reference service.

Each user keeps its own seeded :class:`random.Random`, so a run is
reproducible per user. Requests are named per endpoint (``/services/[slug]``,
``/jobs``, ``/jobs/[id]``) so gates can name an endpoint's percentiles; the
refused-slug lookups are reported under their own name
(``/services/[invalid]``) because their expected answer is a 4xx.

Settings come from the command line (:mod:`loadtests.options`) through
``environment.parsed_options``; nothing is read at import time.
"""

from __future__ import annotations

import itertools
import random
from typing import Any
from urllib.parse import quote

from locust import FastHttpUser, task

from loadtests.options import resolve
from loadtests.workload import (
    WorkloadMix,
    ZipfSampler,
    catalogue_slugs,
    idempotency_key,
    job_answers,
)

__all__ = ["WizardUser"]

_SERIAL = itertools.count()
_CATALOGUES: dict[tuple[int, int], tuple[list[str], ZipfSampler]] = {}


def _catalogue(seed: int, size: int, zipf_s: float) -> tuple[list[str], ZipfSampler]:
    """Slugs and sampler, built once per process and shared by its users."""
    key = (seed, size)
    if key not in _CATALOGUES or _CATALOGUES[key][1].s != zipf_s:
        slugs = catalogue_slugs(seed=seed, size=size)
        _CATALOGUES[key] = (slugs, ZipfSampler(len(slugs), s=zipf_s))
    return _CATALOGUES[key]


class WizardUser(FastHttpUser):
    """Look a service up, sometimes post a job for it and read the job back."""

    # Tighter than Locust's 60 s: a stalled service shows up as failures, not hung users.
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        settings = resolve(self.environment.parsed_options, host=self.environment.host)
        # Worker index too: users on different worker processes must not share a
        # sequence (same idempotency keys would turn their jobs into replays).
        worker = getattr(self.environment.runner, "worker_index", 0)
        self._rng = random.Random(f"{settings.seed}-{worker}-{next(_SERIAL)}")
        self._mix = WorkloadMix(
            unknown_ratio=settings.unknown_ratio,
            invalid_ratio=settings.invalid_ratio,
            zipf_s=settings.zipf_s,
        )
        self._slugs, self._sampler = _catalogue(
            settings.catalogue_seed, settings.catalogue_size, settings.zipf_s
        )
        self._wait_bounds = settings.wait_s
        self._job_ratio = settings.job_ratio

    def wait_time(self) -> float:
        low, high = self._wait_bounds
        return low + self._rng.random() * (high - low)

    @task
    def wizard_step(self) -> None:
        """One lookup; with probability ``job_ratio`` also post a job and read it back."""
        kind, slug = self._mix.choose(self._rng, self._slugs, self._sampler)
        if kind == "invalid":
            self._lookup_invalid(slug)
            return
        self._lookup(slug)
        if self._rng.random() < self._job_ratio:
            self._post_and_read_job(slug)

    def _lookup(self, slug: str) -> None:
        with self.client.get(
            f"/services/{quote(slug, safe='')}", name="/services/[slug]", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"lookup answered {response.status_code}")

    def _lookup_invalid(self, slug: str) -> None:
        with self.client.get(
            f"/services/{quote(slug, safe='')}", name="/services/[invalid]", catch_response=True
        ) as response:
            if response.status_code in (400, 422):
                response.success()
            else:
                response.failure(
                    f"malformed slug answered {response.status_code}, expected 400/422"
                )

    def _post_and_read_job(self, slug: str) -> None:
        """201 (stored) or 200 (replay): read it back; 202 (queued in the outbox): done."""
        body: dict[str, Any] = {
            "micro_id": slug,
            "answers": job_answers(self._rng),
            "idempotency_key": idempotency_key(self._rng),
        }
        with self.client.post("/jobs", json=body, name="/jobs", catch_response=True) as response:
            if response.status_code == 202:
                return  # accepted into the service's outbox (database away): nothing to read yet
            if response.status_code not in (200, 201):
                response.failure(f"job refused with {response.status_code}")
                return
            try:
                job_id = str(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                response.failure("job answer has no id")
                return
        with self.client.get(f"/jobs/{job_id}", name="/jobs/[id]", catch_response=True) as read:
            if read.status_code != 200:
                read.failure(f"job read-back answered {read.status_code}")
            elif str(read.json().get("id")) != job_id:
                read.failure("job read-back returned another job")
