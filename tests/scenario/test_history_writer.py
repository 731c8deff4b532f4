"""The history writer's operation path: the bytes orjson would write, and the kept history."""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilience.scenario.history import HistoryWriter, OpRecord, read_history

_text = st.text(max_size=30)
_ints = st.integers(min_value=-(2**62), max_value=2**62)
_ops = st.builds(
    OpRecord,
    t_us=_ints,
    op=st.sampled_from(["lookup", "job"]),
    key=st.sampled_from(["known", "unknown", "invalid"]),
    outcome=_text,
    path=_text,
    reason=st.none() | _text,
    latency_us=_ints,
    attempts=st.integers(min_value=0, max_value=10),
    late_us=_ints,
    phase=_text,
    slug=_text,
    status=st.sampled_from([0, 200, 503]),
)


def _as_mapping(op: OpRecord) -> dict[str, object]:
    status = {"status": op.status} if op.status else {}  # written only when not 0
    return {
        "type": "op",
        "t_us": op.t_us,
        "op": op.op,
        "key": op.key,
        "slug": op.slug,
        "outcome": op.outcome,
        "path": op.path,
        "reason": op.reason,
        "latency_us": op.latency_us,
        "attempts": op.attempts,
        "late_us": op.late_us,
        "phase": op.phase,
        **status,
    }


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.lists(_ops, max_size=30), st.integers(min_value=1, max_value=7))
def test_op_lines_are_the_bytes_orjson_writes_and_the_kept_history_is_the_file(
    tmp_path: Path, ops: list[OpRecord], flush_every: int
) -> None:
    path = tmp_path / "h.jsonl"
    writer = HistoryWriter(path, flush_every=flush_every, keep=True)
    writer.write({"type": "meta", "version": 1, "config": {"workload": {"warmup": 0}}})
    for i, op in enumerate(ops):
        writer.write_op(op)
        if i % 3 == 0:
            writer.write({"type": "breaker", "t_us": i, "from": "closed", "to": "open"})
    writer.write({"type": "end", "t_us": 5, "status": "completed", "workload_end_us": 9})
    writer.close()
    lines = [line for line in path.read_bytes().splitlines() if line.startswith(b'{"type":"op"')]
    assert lines == [orjson.dumps(_as_mapping(op)) for op in ops]
    assert writer.history() == read_history(path)


@settings(max_examples=60)
@given(
    st.lists(st.integers(min_value=0, max_value=10_000_000), max_size=60),
    st.lists(st.tuples(st.floats(0, 11), st.floats(0, 11)), max_size=8),
)
def test_ops_between_is_the_scan_of_start_times_and_follows_appended_ops(
    starts: list[int], windows: list[tuple[float, float]]
) -> None:
    """The bisected start-time index gives what a scan gives, and is rebuilt when ops grow."""
    from resilience.scenario.history import History

    def op(t_us: int) -> OpRecord:
        return OpRecord(t_us, "lookup", "known", "success", "db", None, 10, 1, 0, "steady")

    history = History(meta={}, ops=[op(t) for t in sorted(starts)])
    for a, b in windows:
        expected = [o for o in history.ops if int(a * 1e6) <= o.t_us < int(b * 1e6)]
        assert history.ops_between(a, b) == expected
    history.ops.append(op(20_000_000))
    assert history.ops_between(19.0, 21.0) == [op(20_000_000)]
