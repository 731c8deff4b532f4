"""The booking rules of the stub, pure and deterministic from a seed.

Availability: every date has the same slot times (09:00 to 16:00 hourly);
each slot's capacity is drawn from ``Random(f"{seed}/{date}/{time}")`` (1–4),
so two stubs with the same seed agree. Bookings take one place of a slot;
cancelling gives it back.

Exactly once: ``create`` with an ``Idempotency-Key`` already used returns the
booking made the first time (``replayed``), never a second one; the same key
with a different request is a conflict. ``duplicates`` counts what the stub
cannot prevent but can see: two live bookings with the same client
``reference`` made under different keys (a caller that retried with a fresh
key each time).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SLOT_TIMES", "Booking", "BookingError", "BookingStore", "CreateResult"]

SLOT_TIMES = tuple(f"{hour:02d}:00" for hour in range(9, 17))


class BookingError(Exception):
    """A refused request: HTTP ``status``, a machine ``code`` and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(slots=True)
class Booking:
    booking_id: str
    date: str
    time: str
    customer: dict[str, str]
    reference: str
    idempotency_key: str
    status: str = "confirmed"

    def to_json(self) -> dict[str, Any]:
        return {
            "booking_id": self.booking_id,
            "date": self.date,
            "time": self.time,
            "customer": dict(self.customer),
            "reference": self.reference,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class CreateResult:
    booking: Booking
    replayed: bool


@dataclass
class BookingStore:
    """All bookings of one stub run."""

    seed: int = 0
    bookings: dict[str, Booking] = field(default_factory=dict)
    by_key: dict[str, tuple[tuple[Any, ...], str]] = field(default_factory=dict)
    taken: dict[tuple[str, str], int] = field(default_factory=dict)
    replays: int = 0

    def capacity(self, date: str, time: str) -> int:
        return random.Random(f"{self.seed}/{date}/{time}").randint(1, 4)

    def availability(self, date: str) -> list[dict[str, Any]]:
        """The slots of date with their remaining places. Raises BookingError (400)."""
        _check_date(date)
        slots = []
        for time in SLOT_TIMES:
            capacity = self.capacity(date, time)
            remaining = capacity - self.taken.get((date, time), 0)
            slots.append({"time": time, "capacity": capacity, "remaining": remaining})
        return slots

    def create(self, key: str, request: dict[str, Any]) -> CreateResult:
        """Book request's slot once per key. Raises BookingError (400/404/409/422)."""
        date, time = str(request.get("date", "")), str(request.get("time", ""))
        customer = request.get("customer")
        reference = str(request.get("reference", ""))
        fingerprint = (date, time, reference, tuple(sorted((customer or {}).items())))
        seen = self.by_key.get(key)
        if seen is not None:
            if seen[0] != fingerprint:
                raise BookingError(
                    409, "idempotency_key_reused", "Idempotency-Key reused with another request"
                )
            self.replays += 1
            return CreateResult(self.bookings[seen[1]], replayed=True)
        _check_date(date)
        if time not in SLOT_TIMES:
            raise BookingError(422, "invalid_time", f"time must be one of {', '.join(SLOT_TIMES)}")
        if not isinstance(customer, dict) or not customer.get("name"):
            raise BookingError(422, "invalid_customer", "customer.name is required")
        if self.taken.get((date, time), 0) >= self.capacity(date, time):
            raise BookingError(409, "slot_full", f"no place left on {date} at {time}")
        booking_id = f"bk-{self.seed}-{len(self.bookings) + 1:06d}"
        booking = Booking(
            booking_id,
            date,
            time,
            {str(k): str(v) for k, v in customer.items()},
            reference,
            key,
        )
        self.bookings[booking_id] = booking
        self.by_key[key] = (fingerprint, booking_id)
        self.taken[(date, time)] = self.taken.get((date, time), 0) + 1
        return CreateResult(booking, replayed=False)

    def get(self, booking_id: str) -> Booking:
        booking = self.bookings.get(booking_id)
        if booking is None:
            raise BookingError(404, "not_found", f"no booking {booking_id}")
        return booking

    def cancel(self, booking_id: str) -> Booking:
        """Cancel (idempotent: cancelling a cancelled booking is not an error)."""
        booking = self.get(booking_id)
        if booking.status != "cancelled":
            booking.status = "cancelled"
            slot = (booking.date, booking.time)
            self.taken[slot] = self.taken.get(slot, 1) - 1
        return booking

    @property
    def duplicates(self) -> int:
        """Live bookings beyond the first per client reference (0 when exactly once)."""
        per_reference: dict[str, int] = {}
        for booking in self.bookings.values():
            if booking.reference and booking.status == "confirmed":
                per_reference[booking.reference] = per_reference.get(booking.reference, 0) + 1
        return sum(count - 1 for count in per_reference.values())

    def summary(self) -> dict[str, int]:
        confirmed = sum(1 for b in self.bookings.values() if b.status == "confirmed")
        return {
            "bookings": len(self.bookings),
            "confirmed": confirmed,
            "cancelled": len(self.bookings) - confirmed,
            "idempotent_replays": self.replays,
            "duplicates": self.duplicates,
        }


def _check_date(date: str) -> None:
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise BookingError(400, "invalid_date", f"date must be YYYY-MM-DD; got {date!r}") from None
