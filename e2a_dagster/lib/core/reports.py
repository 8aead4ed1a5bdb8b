"""Small text renderers for materialization metadata and CLI output."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(row.get(h, "")) for h in headers) + " |" for row in rows]
    return "\n".join(lines)


def text_table(rows: Sequence[dict]) -> str:
    if not rows:
        return "(none)"
    headers = list(rows[0])
    widths = {h: max(len(str(h)), *(len(str(r.get(h, ""))) for r in rows)) for h in headers}
    line = "  ".join(str(h).ljust(widths[h]) for h in headers).rstrip()
    sep = "  ".join("-" * widths[h] for h in headers)
    body = ["  ".join(str(r.get(h, "")).ljust(widths[h]) for h in headers).rstrip() for r in rows]
    return "\n".join([line, sep, *body])
