"""Prompt templates in ``prompts/``: Jinja2, one file per prompt, a YAML front matter with at least
``version``.

A template renders twice, with ``part = "system"`` and ``part = "user"``. Prompts receive structured facts
only (see ``explanations.facts.load_exception_facts``), never raw event payloads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

from e2a_dagster.lib.core.settings import PROJECT_ROOT

PROMPTS_DIR = PROJECT_ROOT / "prompts"


class PromptError(ValueError):
    pass


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    meta: dict
    source: str

    @classmethod
    def load(cls, name: str, prompts_dir: Path = PROMPTS_DIR) -> Prompt:
        path = prompts_dir / f"{name}.j2"
        text = path.read_text(encoding="utf-8")
        if not text.startswith("---\n"):
            raise PromptError(f"{path}: no front matter (a '---' block with `version:` first)")
        try:
            header, body = text[4:].split("\n---\n", 1)
        except ValueError:
            raise PromptError(f"{path}: the front matter is not closed by a '---' line") from None
        meta = yaml.safe_load(header) or {}
        if "version" not in meta:
            raise PromptError(f"{path}: the front matter has no `version`")
        return cls(name=name, version=f"{name}@{meta['version']}", meta=meta, source=body)

    @property
    def max_tokens(self) -> int:
        return int(self.meta.get("max_tokens", 600))

    def render(self, **context) -> tuple[str, str]:
        """(system message, user message)."""
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
        env.filters["tojson"] = lambda value, indent=None: json.dumps(
            value, indent=indent, ensure_ascii=False, sort_keys=True
        )
        template = env.from_string(self.source)
        system = template.render(part="system", **context).strip()
        user = template.render(part="user", **context).strip()
        return system, user
