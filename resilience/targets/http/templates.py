"""Filling ``{name}`` templates: target commands, URLs, env values and requests.

``{{`` and ``}}`` are literal braces. A name may contain one dot
(``{postgres.url}``): it is looked up as a whole, never as an attribute.
:func:`compile_template` parses a template once (the workload renders the
same request templates thousands of times a second); :func:`fill` is the
one-off form.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

__all__ = ["Template", "TemplateError", "compile_template", "fill"]


class TemplateError(ValueError):
    """A template names something that has no value."""


class Template:
    """A parsed template: literal text and the names between them."""

    __slots__ = ("_field", "_parts", "names", "text")

    def __init__(self, text: str, parts: list[tuple[str, str | None]], field: str) -> None:
        self.text = text
        self._parts = parts
        self._field = field
        self.names: frozenset[str] = frozenset(n for _, n in parts if n is not None)

    def __call__(self, values: Mapping[str, str]) -> str:
        if not self.names:
            return self.text
        out: list[str] = []
        for literal, name in self._parts:
            out.append(literal)
            if name is not None:
                try:
                    out.append(values[name])
                except KeyError:
                    known = ", ".join("{" + k + "}" for k in sorted(values))
                    raise TemplateError(
                        f"{self._field}: no value for {{{name}}} (known: {known})"
                    ) from None
        return "".join(out)


def compile_template(text: str, *, field: str = "template") -> Template:
    """``text`` parsed once; call the result with the values to fill it."""
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in string.Formatter().parse(text):
        if name is not None and (spec or conversion):
            raise TemplateError(f"{field}: write {{{name}}} without a format spec or conversion")
        parts.append((literal, name))
    if all(name is None for _, name in parts):  # no placeholder: the text with {{ }} resolved
        return Template("".join(literal for literal, _ in parts), parts, field)
    return Template(text, parts, field)


def fill(text: str, values: Mapping[str, str], *, field: str = "template") -> str:
    """``text`` with every ``{name}`` replaced by ``values[name]``."""
    return compile_template(text, field=field)(values)
