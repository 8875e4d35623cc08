"""Template variables in metric queries: `{{name}}` or `{{ name }}`, nothing else.

Names are letters, digits, dots, underscores and dashes: `{{revision}}`, `{{stableRevision}}`,
`{{canaryRevision}}`, `{{rollout}}`, `{{namespace}}`, `{{args.x}}`; dashes because Argo
Rollouts templates commonly say `{{args.service-name}}` or `{{ args.api-token }}` (its
docs/features/analysis.md). There is no escaping, no filters, no defaults: a placeholder the
caller does not know is an error, as is anything else between `{{` and `}}`, or a `{{` that
is never closed, so a typo never reaches a metrics provider as literal braces. Values are
inserted as they are; quoting them for the query language is the caller's business.
Substituted values are not scanned again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class TemplateError(ValueError):
    """A placeholder that cannot be filled in."""


def render(text: str, variables: Mapping[str, str]) -> str:
    """Replace every `{{name}}` / `{{ name }}` in text by variables[name]."""
    known = ", ".join(sorted(variables)) or "none"
    parts: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        _check_unclosed(text[last : match.start()], text, last)
        name = match.group(1).strip()
        if not _NAME.fullmatch(name):
            raise TemplateError(
                f"placeholder {match.group(0)!r} at column {match.start() + 1} is not a name"
                f" (letters, digits, '.', '_' and '-'); known: {known}"
            )
        if name not in variables:
            raise TemplateError(
                f"unknown placeholder {{{{{name}}}}} at column {match.start() + 1}; known: {known}"
            )
        parts.append(text[last : match.start()])
        parts.append(variables[name])
        last = match.end()
    _check_unclosed(text[last:], text, last)
    parts.append(text[last:])
    return "".join(parts)


def _check_unclosed(segment: str, text: str, offset: int) -> None:
    at = segment.find("{{")
    if at >= 0:
        raise TemplateError(
            f"'{{{{' at column {offset + at + 1} is not closed by '}}}}' (or holds a brace): {text!r}"
        )
