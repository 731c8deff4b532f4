"""The generic user: Locust's fast HTTP client sending a profile's ``requests:``.

Each step picks a request by ``weight``, a key from the profile's keys (Zipf
over the listed or catalogue keys, exponent ``workload.zipf_s``), renders the
request with the HTTP target's own templates
(:class:`resilience.targets.http.render.RequestTemplate`: ``{key}``,
``{seq}``, ``{uuid}``, ``{random_int}``) and classifies the answer with the
scenario's rules (:func:`resilience.targets.http.classify.classify`:
``status`` table, ``degraded_when``). ``error`` is a Locust failure;
``degraded`` a success whose request context carries ``outcome: degraded``
(counted by :mod:`loadtests.buckets` for the ``degraded_ratio`` metrics).
Requests are named by their ``name``, so gates say ``http.lookup p(95) < 50ms``.

The user's generator is seeded from ``workload.seed``, the Locust worker
index and the user's serial number, so a run is reproducible per user.
"""

from __future__ import annotations

import itertools
import random
from typing import Any
from urllib.parse import urlencode

from locust import FastHttpUser, task

from loadtests.options import resolve
from loadtests.workload import ZipfSampler, catalogue_slugs
from resilience.targets.base import Call
from resilience.targets.http.classify import classify
from resilience.targets.http.render import RequestTemplate

__all__ = ["TargetUser"]

_SERIAL = itertools.count()


class TargetUser(FastHttpUser):
    """Send the profile's requests to ``--host``; the locustfile picks it for an HTTP target."""

    network_timeout = 10.0  # the locustfile sets the largest request ``timeout``
    connection_timeout = 5.0

    def on_start(self) -> None:
        settings = resolve(self.environment.parsed_options, host=self.environment.host)
        target = settings.load_target
        if target is None or not target.requests:
            raise RuntimeError("TargetUser needs a profile with requests (an HTTP target)")
        worker = getattr(self.environment.runner, "worker_index", 0)
        serial = next(_SERIAL)
        self._rng = random.Random(f"{settings.seed}-{worker}-{serial}")
        self._seq = itertools.count(serial * 1_000_000_000)
        self._templates = [RequestTemplate(spec, target.seed) for spec in target.requests]
        self._weights = list(itertools.accumulate(spec.weight for spec in target.requests))
        keys = list(target.keys or ()) or catalogue_slugs(
            seed=target.seed, size=target.catalogue_size
        )
        self._keys = keys
        self._sampler = ZipfSampler(len(keys), s=settings.zipf_s)
        self._wait_bounds = settings.wait_s

    def wait_time(self) -> float:
        low, high = self._wait_bounds
        return low + self._rng.random() * (high - low)

    @task
    def step(self) -> None:
        """One request: chosen by weight, rendered for a drawn key, classified."""
        template = self._rng.choices(self._templates, cum_weights=self._weights)[0]
        key = self._keys[self._sampler.sample(self._rng)]
        seq = next(self._seq)
        call = Call(seq, template.name, "known", key, f"{seq}")
        request = template.render(call)
        url = request.path
        if request.query:
            url += ("&" if "?" in url else "?") + urlencode(request.query)
        with self.client.request(
            request.method,
            url,
            name=template.name,
            headers=request.headers or None,
            json=request.json,
            data=request.body,
            catch_response=True,
        ) as response:
            status = int(response.status_code or 0)
            if status == 0:
                response.failure(f"no answer: {response.error or 'connection error'}")
                return
            headers = response.headers or {}  # case-insensitive lookups
            body = response.content or b""
            outcome, _path, reason = classify(template.spec, status, headers, body)
            if outcome == "error":
                response.failure(reason or f"status {status}")
                return
            response.success()
            if outcome == "degraded":
                meta: Any = getattr(response, "request_meta", None)
                if meta is not None:
                    meta["context"] = {**(meta.get("context") or {}), "outcome": "degraded"}
