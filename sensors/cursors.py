"""Pure cursor helpers for file-based sensors (unit-tested without Dagster)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class FileStamp:
    mtime_ns: int
    name: str
    size: int = 0


@dataclass(frozen=True)
class FileCursor:
    """High-water mark over (mtime, name): files at the mark's mtime already seen are listed by name."""

    mtime_ns: int = -1
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> FileCursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(int(data["mtime_ns"]), tuple(sorted(data.get("names", []))))
        except (ValueError, KeyError, TypeError):
            # An unreadable cursor restarts from the beginning; the ingestion ledger makes that harmless.
            return cls()

    def dump(self) -> str:
        return json.dumps({"mtime_ns": self.mtime_ns, "names": list(self.names)}, sort_keys=True)

    def is_new(self, stamp: FileStamp) -> bool:
        return stamp.mtime_ns > self.mtime_ns or (stamp.mtime_ns == self.mtime_ns and stamp.name not in self.names)


def new_files(
    listing: list[FileStamp], cursor: FileCursor, *, now_ns: int, settle_ns: int = 1_000_000_000
) -> tuple[list[FileStamp], FileCursor]:
    """Files not seen yet, oldest first, and the advanced cursor.

    A file modified less than ``settle_ns`` ago may still be being written: it and everything after it wait for
    the next tick (the cursor never moves past an unsettled file)."""
    fresh = sorted(s for s in listing if cursor.is_new(s))
    taken: list[FileStamp] = []
    for stamp in fresh:
        if stamp.mtime_ns > now_ns - settle_ns:
            break
        taken.append(stamp)
    if not taken:
        return [], cursor
    top = taken[-1].mtime_ns
    names = {s.name for s in taken if s.mtime_ns == top}
    if top == cursor.mtime_ns:
        names |= set(cursor.names)
    return taken, FileCursor(top, tuple(sorted(names)))


def run_key(prefix: str, stamps: list[FileStamp]) -> str:
    """A stable key for the files a run was asked for: the same files (name, mtime, size) give the same key."""
    digest = hashlib.sha256()
    for s in stamps:
        digest.update(f"{s.name}\0{s.mtime_ns}\0{s.size}\n".encode())
    return f"{prefix}:{stamps[0].name}..{stamps[-1].name}:{digest.hexdigest()[:16]}"
