"""Locust load profiles for the reference service.

Two kinds of module live here, and the split is the point:

* pure modules, importable without Locust or gevent and unit-tested as such:
  :mod:`loadtests.stages` (load shapes as functions of elapsed seconds),
  :mod:`loadtests.workload` (Zipf slug choice, invalid/unknown slugs, job bodies),
  :mod:`loadtests.profile` (profile files), :mod:`loadtests.timeline` (a cursor
  over the scenario's fault plan) and :mod:`loadtests.results` (Locust statistics and
  the service's ``/stats`` turned into the metric mapping gates evaluate);
* Locust adapters, which only translate: :mod:`loadtests.users`,
  :mod:`loadtests.shapes`, :mod:`loadtests.options`, :mod:`loadtests.faults`
  and :mod:`loadtests.gates`. :mod:`loadtests.locustfile` wires them together.

Locust stays a leaf: only this directory imports it, never the ``resilience``
package (``resilience load`` runs Locust as a subprocess).
"""
