"""Filling ``{name}`` templates: target commands, URLs, env values and requests.

``{{`` and ``}}`` are literal braces. A name may contain one dot
(``{postgres.url}``): it is looked up as a whole, never as an attribute.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

__all__ = ["TemplateError", "fill"]


class TemplateError(ValueError):
    """A template names something that has no value."""


def fill(text: str, values: Mapping[str, str], *, field: str = "template") -> str:
    """``text`` with every ``{name}`` replaced by ``values[name]``."""
    out: list[str] = []
    for literal, name, spec, conversion in string.Formatter().parse(text):
        out.append(literal)
        if name is None:
            continue
        if spec or conversion:
            raise TemplateError(f"{field}: write {{{name}}} without a format spec or conversion")
        try:
            out.append(values[name])
        except KeyError:
            known = ", ".join("{" + k + "}" for k in sorted(values))
            raise TemplateError(f"{field}: no value for {{{name}}} (known: {known})") from None
    return "".join(out)
