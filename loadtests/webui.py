"""``resilience load --web``: our fault timeline and gates beside Locust's own web UI.

When Locust runs with its web UI (not ``--headless``), :func:`attach_web` adds
two routes to it: ``/resilience.json`` (the profile's planned faults, what
happened to each so far, and every gate judged on the run so far) and
``/resilience``, a small page showing them, refreshed every 2 s like Locust's
own charts. The gates are judged once more, for the exit code and the
reports, when Locust quits (:class:`~loadtests.gates.GateHook`).
"""

from __future__ import annotations

from typing import Any

from loadtests.gates import DEFAULT_GATES, GateHook, judge
from loadtests.options import resolve

__all__ = ["attach_web", "state"]


def state(environment: Any, faults: Any) -> dict[str, Any]:
    """Planned faults, fault records so far, and the gates on the run so far."""
    settings = resolve(environment.parsed_options, host=environment.host)
    shown = ("name", "at", "duration", "target", "action", "toxic")
    planned = [
        {k: v for k, v in dict(f).items() if k in shown}
        for f in (settings.profile.faults if settings.profile else ())
    ]
    applier = getattr(faults, "applier", None)
    records = [r.to_dict() for r in applier.records] if applier is not None else []
    gates: list[dict[str, Any]] = []
    if settings.gates_enabled and environment.runner is not None:
        metrics, _ = GateHook.metrics(environment, settings)
        try:
            results = judge(settings.gates or DEFAULT_GATES, metrics)
        except ValueError as exc:
            gates = [{"gate": "?", "status": "error", "observed": None, "message": str(exc)}]
        else:
            gates = [
                {
                    "gate": r.gate.gate.subject,
                    "status": r.status,
                    "observed": r.observed_text,
                    "target": r.target_text,
                }
                for r in results
            ]
    return {"planned_faults": planned, "faults": records, "gates": gates}


_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<title>resilience – faults and gates</title>
<style>body{font-family:system-ui,sans-serif;margin:20px}
table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #dee2e6;padding:4px 8px;font-size:13px}.pass{color:#2b8a3e}
.fail{color:#c92a2a;font-weight:700}.nodata{color:#e67700}</style></head><body>
<p><a href="/">← Locust</a></p><h1>Fault timeline</h1><table id="faults"></table>
<h1>Gates (on the run so far)</h1><table id="gates"></table>
<script>
const text = v => v === null || v === undefined ? "" : String(v).replace(/</g, "&lt;");
const cell = v => `<td>${text(v)}</td>`;
async function refresh() {
  const s = await (await fetch("resilience.json")).json();
  document.getElementById("faults").innerHTML =
    "<tr><th>fault</th><th>target</th><th>at</th><th>duration</th><th>happened</th></tr>" +
    s.planned_faults.map(f => "<tr>" + cell(f.name) + cell(f.target) + cell(f.at) +
      cell(f.duration) + cell(s.faults.filter(r => r.fault === f.name)
        .map(r => `${r.op} at ${r.applied_at_s}s${r.ok ? "" : " FAILED: " + r.error}`).join("; ")) +
      "</tr>").join("");
  document.getElementById("gates").innerHTML =
    "<tr><th>gate</th><th>observed</th><th>target</th><th>verdict</th></tr>" +
    s.gates.map(g => "<tr>" + cell(g.gate) + cell(g.observed) + cell(g.target) +
      `<td class="${g.status}">${g.status}</td></tr>`).join("");
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""


def attach_web(environment: Any, faults: Any) -> None:
    """Add ``/resilience`` and ``/resilience.json`` to Locust's web UI (if it runs one)."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return
    from flask import jsonify

    web_ui.app.add_url_rule(
        "/resilience.json", "resilience_json", lambda: jsonify(state(environment, faults))
    )
    web_ui.app.add_url_rule("/resilience", "resilience_page", lambda: _PAGE)
