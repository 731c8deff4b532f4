"""The HTTP target's parts without a server: templates, rendering, classification, scrapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience.scenario.loader import parse_scenario
from resilience.scenario.model import Scenario
from resilience.scenario.target_spec import RequestSpec
from resilience.scenario.workload import arrivals
from resilience.targets.base import Call
from resilience.targets.http.classify import classify
from resilience.targets.http.prometheus import ScrapeError, parse_exposition, scraped_metrics
from resilience.targets.http.render import RequestTemplate
from resilience.targets.http.templates import TemplateError, fill

HTTP = """\
name: units
seed: 4
target: {command: "app --port {port} --db {postgres.url}"}
workload:
  duration: 5s
  rate: 100
  keys: {values: [a, b, c]}
  requests:
    - {name: read, path: "/items/{key}", weight: 3}
    - {name: write, method: POST, path: /items, json: {id: "{seq}", ref: "r-{uuid}"}}
gates:
  - http.read p(99) < 1s
  - http.status.5xx.share < 0.01
  - read.error_rate == 0
"""


def _request(**fields: object) -> RequestSpec:
    return RequestSpec.model_validate({"name": "r", "path": "/x", **fields})


def test_templates_fill_dotted_names_and_refuse_unknown_ones() -> None:
    values = {"port": "8080", "postgres.url": "postgresql://u@h:1/d"}
    assert fill("--port {port} --db {postgres.url} {{literal}}", values) == (
        "--port 8080 --db postgresql://u@h:1/d {literal}"
    )
    with pytest.raises(TemplateError, match=r"no value for \{redis.url\}"):
        fill("{redis.url}", values, field="target.env.REDIS_URL")


def test_status_codes_and_rules_classify_answers() -> None:
    plain = _request()
    assert classify(plain, 200, {}, b"") == ("ok", "", None)
    assert classify(plain, 404, {}, b"")[0] == "error"
    assert classify(plain, 503, {}, b"")[2] == "status 503"
    declared = _request(status={404: "ok", 429: "degraded"})
    assert classify(declared, 404, {}, b"")[0] == "ok"
    assert classify(declared, 429, {}, b"")[0] == "degraded"
    ruled = _request(
        degraded_when=[{"header": "X-Fallback"}, {"json": "/meta/stale", "equals": True}],
        path_from={"json": "/meta/source"},
    )
    body = b'{"meta": {"source": "cache", "stale": true}}'
    assert classify(ruled, 200, {}, body) == ("degraded", "cache", "json /meta/stale")
    assert classify(ruled, 200, {"X-Fallback": "1"}, b"not json")[0:2] == ("degraded", "")
    assert classify(ruled, 200, {}, b'{"meta": {"source": "db", "stale": false}}')[0:2] == (
        "ok",
        "db",
    )
    by_header = _request(path_from={"header": "X-Lookup-Path"})
    assert classify(by_header, 200, {"X-Lookup-Path": "redis"}, b"")[1] == "redis"


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=99))
def test_rendering_depends_only_on_seed_and_sequence(seed: int, seq: int) -> None:
    spec = _request(
        method="POST",
        path="/items/{key}",
        query={"n": "{random_int}"},
        json={"id": "{seq}", "ref": "{uuid}", "tags": ["{key}"]},
    )
    call = Call(seq, "r", "known", "a b/c", "k")
    first = RequestTemplate(spec, seed).render(call)
    assert first == RequestTemplate(spec, seed).render(call)
    assert first.path == "/items/a%20b%2Fc"
    assert first.json["id"] == seq
    assert first.json["tags"] == ["a b/c"]
    other = RequestTemplate(spec, seed).render(Call(seq + 1, "r", "known", "a b/c", "k"))
    assert other.json["ref"] != first.json["ref"]


def test_a_request_renders_the_same_on_its_fast_paths() -> None:
    static = RequestTemplate(_request(path="/a{{b}}", headers={"H": "1"}), 1)
    assert static.render(Call(1, "r", "known", "k", "i")).path == "/a{b}"
    assert static.render(Call(1, "r", "known", "k", "i")) is static.render(
        Call(2, "r", "known", "z", "i")
    )
    only_path = RequestTemplate(_request(path="/i/{key}/{seq}", query={"q": "1"}), 1)
    rendered = only_path.render(Call(7, "r", "known", "a b", "i"))
    assert rendered.path == "/i/a%20b/7"
    assert rendered.query == {"q": "1"}
    both = RequestTemplate(_request(path="/i/{key}", query={"q": "{key}"}), 1)
    assert both.render(Call(7, "r", "known", "a b", "i"))[1:3] == ("/i/a%20b", {"q": "a b"})


def test_requests_are_drawn_by_weight_with_the_same_sequence_per_seed() -> None:
    scenario = parse_scenario(HTTP)
    first = list(arrivals(scenario.workload, ["a", "b", "c"], scenario.seed))
    again = list(arrivals(scenario.workload, ["a", "b", "c"], scenario.seed))
    assert first == again
    reads = sum(1 for a in first if a.op == "read")
    assert 0.65 < reads / len(first) < 0.85  # weight 3 of 4
    assert {a.slug for a in first} <= {"a", "b", "c"}


def test_an_http_scenario_round_trips_through_its_history_meta() -> None:
    scenario = parse_scenario(HTTP)
    again = Scenario.model_validate(scenario.model_dump(mode="json"))
    assert again.workload.requests == scenario.workload.requests
    assert again.target == scenario.target


def test_gate_names_of_an_http_target_are_checked_against_its_requests() -> None:
    from resilience.scenario.loader import ScenarioError

    with pytest.raises(ScenarioError, match=r"unknown metric 'reed\.error_rate'"):
        parse_scenario(HTTP.replace("read.error_rate == 0", "reed.error_rate == 0"))
    with pytest.raises(ScenarioError, match=r"unknown metric 'cache\.hit_rate'"):
        parse_scenario(HTTP.replace("read.error_rate == 0", "cache.hit_rate > 0.5"))


def test_prometheus_text_is_parsed_and_garbage_refused() -> None:
    text = (
        "# TYPE req_total counter\n"
        'req_total{status="200"} 10\nreq_total{status="500"} 2\n'
        "# TYPE temp gauge\ntemp 3.5\n"
    )
    assert parse_exposition(text) == {
        'req_total{status="200"}': 10.0,
        'req_total{status="500"}': 2.0,
        "temp": 3.5,
    }
    with pytest.raises(ScrapeError, match="not Prometheus text"):
        parse_exposition("<html><body>hello</body></html>")


def test_scraped_counters_give_deltas_per_phase_and_gauges_their_last_value() -> None:
    scrapes = [
        {"t_us": 0, "samples": {'req_total{status="500"}': 1.0, "temp": 1.0}},
        {"t_us": 2_000_000, "samples": {'req_total{status="500"}': 4.0, "temp": 2.0}},
        {"t_us": 4_000_000, "samples": {'req_total{status="500"}': 10.0, "temp": 3.0}},
    ]
    during = scraped_metrics(scrapes, [(2.0, 4.0)])
    assert during['prom.req_total{status="500"}.delta'] == 6.0
    assert during["prom.req_total.delta"] == 6.0
    assert during["prom.temp"] == 3.0
    before = scraped_metrics(scrapes, [(0.0, 2.0)])
    assert before["prom.req_total.delta"] == 3.0
