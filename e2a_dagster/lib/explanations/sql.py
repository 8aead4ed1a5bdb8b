"""The schema names the explanations interpolate into SQL: plain identifiers only."""

from __future__ import annotations

import re

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def plain_schema(name: str) -> str:
    """``name`` if it is a plain schema name, else ``ValueError``."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain schema name: {name!r}")
    return name
