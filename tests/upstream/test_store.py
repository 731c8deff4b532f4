"""The booking stub's rules, without HTTP."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience.upstream.store import SLOT_TIMES, BookingError, BookingStore

DATE = "2026-12-05"


def _request(time: str = "10:00", reference: str = "r1", name: str = "Ada") -> dict[str, object]:
    return {"date": DATE, "time": time, "customer": {"name": name}, "reference": reference}


def test_availability_is_a_function_of_the_seed() -> None:
    assert BookingStore(7).availability(DATE) == BookingStore(7).availability(DATE)
    assert [s["time"] for s in BookingStore(7).availability(DATE)] == list(SLOT_TIMES)
    seeds = {
        tuple(s["capacity"] for s in BookingStore(seed).availability(DATE)) for seed in range(5)
    }
    assert len(seeds) > 1


def test_a_repeated_key_returns_the_first_booking_and_books_once() -> None:
    store = BookingStore(1)
    first = store.create("k1", _request())
    again = store.create("k1", _request())
    assert (first.replayed, again.replayed) == (False, True)
    assert again.booking.booking_id == first.booking.booking_id
    assert store.summary() == {
        "bookings": 1,
        "confirmed": 1,
        "cancelled": 0,
        "idempotent_replays": 1,
        "duplicates": 0,
    }


def test_a_key_reused_with_another_request_is_a_conflict() -> None:
    store = BookingStore(1)
    store.create("k1", _request())
    with pytest.raises(BookingError) as info:
        store.create("k1", _request(time="11:00"))
    assert (info.value.status, info.value.code) == (409, "idempotency_key_reused")


def test_retrying_with_fresh_keys_is_reported_as_duplicates() -> None:
    store = BookingStore(1)
    slot = next(s["time"] for s in store.availability(DATE) if s["capacity"] >= 2)
    store.create("k1", _request(time=slot))
    store.create("k2", _request(time=slot))
    assert store.duplicates == 1


def test_a_full_slot_and_bad_input_are_refused_with_their_status() -> None:
    store = BookingStore(1)
    slot = next(s for s in store.availability(DATE) if s["capacity"] == 1)["time"]
    store.create("k1", _request(time=slot, reference="a"))
    cases = [
        ("k2", _request(time=slot, reference="b"), 409),
        ("k3", _request(time="25:00"), 422),
        ("k4", {**_request(), "customer": {}}, 422),
        ("k5", {**_request(), "date": "05/12/2026"}, 400),
    ]
    for key, request, status in cases:
        with pytest.raises(BookingError) as info:
            store.create(key, request)
        assert info.value.status == status


def test_cancel_gives_the_place_back_and_is_idempotent() -> None:
    store = BookingStore(1)
    slot = next(s for s in store.availability(DATE) if s["capacity"] == 1)["time"]
    booking = store.create("k1", _request(time=slot)).booking
    store.cancel(booking.booking_id)
    store.cancel(booking.booking_id)
    assert store.get(booking.booking_id).status == "cancelled"
    assert store.create("k2", _request(time=slot, reference="r2")).booking.status == "confirmed"


@given(st.lists(st.tuples(st.sampled_from(["k1", "k2", "k3"]), st.sampled_from(SLOT_TIMES[:2]))))
def test_each_key_books_at_most_once_whatever_the_retries(attempts: list[tuple[str, str]]) -> None:
    store = BookingStore(3)
    for key, time in attempts:
        with contextlib.suppress(BookingError):
            store.create(key, _request(time=time, reference=key))
    assert len({b.idempotency_key for b in store.bookings.values()}) == len(store.bookings)
    assert store.duplicates == 0
