"""Slug validation: the one gate every lookup and job passes first.

A slug is 1 to :data:`MAX_SLUG_LENGTH` characters of lowercase ASCII letters
and digits in groups joined by single hyphens (``roof-repair``,
``hvac-2-zone``). Nothing is normalised: ``Roof-Repair`` is refused rather
than silently lowercased, so a caller learns about the bad input instead of
getting a different service's answer.
"""

from __future__ import annotations

import functools
import re

from resilience.errors import InvalidSlug

__all__ = ["MAX_SLUG_LENGTH", "SLUG_PATTERN", "is_valid_slug", "validate_slug"]

MAX_SLUG_LENGTH = 100
"""Longest accepted slug, in characters."""

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
"""The accepted form, as a regular expression (also published in OpenAPI)."""

_SLUG_RE = re.compile(SLUG_PATTERN)


def is_valid_slug(slug: object) -> bool:
    """True when ``slug`` is a well-formed slug (never raises)."""
    if type(slug) is str:
        return len(slug) <= MAX_SLUG_LENGTH and _is_valid_str(slug)
    return isinstance(slug, str) and _matches(slug)


@functools.lru_cache(maxsize=4096)
def _is_valid_str(slug: str) -> bool:
    """:func:`_matches`, remembered: every lookup checks its slug, mostly a popular one.

    Only plain ``str`` of at most :data:`MAX_SLUG_LENGTH` characters come
    here, so the memo stays small whatever the input.
    """
    return _matches(slug)


def _matches(slug: str) -> bool:
    return 0 < len(slug) <= MAX_SLUG_LENGTH and _SLUG_RE.fullmatch(slug) is not None


def validate_slug(slug: object) -> str:
    """Return ``slug`` unchanged, or raise :class:`InvalidSlug` saying what is wrong."""
    if is_valid_slug(slug):
        return slug  # type: ignore[return-value]  # is_valid_slug proved it is a str
    raise InvalidSlug(_explain(slug), context={"slug": repr(slug)[:120]})


def _explain(slug: object) -> str:
    if not isinstance(slug, str):
        return f"slug must be a string, got {type(slug).__name__}"
    if not slug:
        return "slug is empty"
    if len(slug) > MAX_SLUG_LENGTH:
        return f"slug is {len(slug)} characters long; the maximum is {MAX_SLUG_LENGTH}"
    bad = sorted(
        {c for c in slug if not (c.isascii() and (c.islower() or c.isdigit() or c == "-"))}
    )
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        return f"slug contains characters outside a-z, 0-9 and '-': {shown}"
    return (
        "slug must be groups of a-z/0-9 joined by single hyphens "
        "(no leading, trailing or double '-')"
    )
