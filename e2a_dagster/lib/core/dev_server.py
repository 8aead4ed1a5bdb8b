"""Running ``dagster dev`` for ``e2a dev`` (and the live benchmark): its own process group with its output in a
log file, a readiness probe against the UI, a bounded stop, and no run left queued or in progress behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

# Runs that have not finished: a stopped `e2a dev` leaves none of these behind.
UNFINISHED = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
READY_QUERY = "{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name } } } }"


def start(cmd: Sequence[str], *, log_path: Path, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen:
    """``cmd`` in a new session (a terminal's Ctrl-C reaches ``e2a``, which stops it in order), output appended
    to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(cmd), cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def is_ready(base_url: str, *, timeout: float = 2.0) -> bool:
    """The UI answers and has loaded the code location (its GraphQL lists a repository)."""
    try:
        response = httpx.post(f"{base_url}/graphql", json={"query": READY_QUERY}, timeout=timeout)
        nodes = response.json()["data"]["repositoriesOrError"].get("nodes") or []
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return len(nodes) > 0


def wait_until_ready(base_url: str, proc: subprocess.Popen, *, timeout: float = 300.0, poll: float = 0.5) -> bool:
    """Poll the UI until it is ready (True), the process ends or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if is_ready(base_url):
            return True
        time.sleep(poll)
    return False


def stop(proc: subprocess.Popen, *, timeout: float = 3.0) -> int | None:
    """SIGTERM to the whole process group (webserver, daemon, code server, run workers, dbt), SIGKILL to
    what is left after ``timeout`` seconds (its graceful shutdown takes ~8 s on 2 busy cores: too long for a
    Ctrl-C). Returns the exit code of ``proc``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    # Whatever is still alive in the group (the leader may be gone while a child lingers).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2)
    return proc.returncode


def unfinished_runs(instance) -> list:
    import dagster as dg

    statuses = [dg.DagsterRunStatus[s] for s in UNFINISHED]
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=statuses)))


def wind_down_runs(instance, message: str) -> tuple[int, int]:
    """Before the processes stop: queued runs are canceled (none starts any more), runs in progress are marked
    canceling, so the interrupted run worker records them as canceled, not failed (Dagster's own termination
    protocol). Returns (canceled, canceling)."""
    import dagster as dg

    canceled = canceling = 0
    for run in unfinished_runs(instance):
        if run.status == dg.DagsterRunStatus.QUEUED:
            instance.report_run_canceled(run, message=message)
            canceled += 1
        elif run.status != dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceling(run, message=message)
            canceling += 1
    return canceled, canceling


def cancel_unfinished_runs(instance, message: str) -> int:
    """Mark runs that cannot finish any more (their processes are gone) as canceled. The sensors ask again for
    what a cancelled ingestion run would have loaded (sensors/runs.py)."""
    canceled = 0
    for run in unfinished_runs(instance):
        instance.report_run_canceled(run, message=message)
        canceled += 1
    return canceled
