"""The cluster's processes through psutil: alive, still ours, gone.

kwokctl starts each component in its own session and records its pid in
``<state>/pids/<component>.pid``; once kwokctl has exited they are nobody's children, so
a dead one may linger as a zombie until init reaps it: a zombie counts as gone.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from ._state import ProcessInfo


def alive(pid: int) -> bool:
    """The pid runs and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def create_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def is_ours(proc: ProcessInfo) -> bool:
    """The pid still runs the process kwokctl started (pids get reused)."""
    if not alive(proc.pid):
        return False
    if proc.create_time:
        return abs(create_time(proc.pid) - proc.create_time) < 0.05
    return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until every pid is gone (or a zombie); return those still running."""
    left = [p for p in pids if alive(p)]
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def mentions(pid: int, text: str) -> bool:
    """The pid runs and its command line contains ``text`` (e.g. the cluster's folder)."""
    try:
        return alive(pid) and text in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def mentioning(text: str) -> list[int]:
    """Pids of running processes (not this one) whose command line contains ``text``: a
    component kwokctl had started but not yet written a pid file for when it was stopped."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and text in " ".join(proc.info["cmdline"] or []) and alive(proc.pid):
                found.append(proc.pid)
    return found


def kill(
    procs: Iterable[ProcessInfo], strays: Iterable[int] = (), mentioning: str = "",
    timeout: float = 5.0,
) -> list[int]:
    """SIGKILL whichever of ``procs`` still runs as ours, and each pid of ``strays`` whose
    command line mentions ``mentioning``; return the pids that outlived it."""
    targets = [p.pid for p in procs if is_ours(p)]
    targets += [pid for pid in strays if mentioning and mentions(pid, mentioning)]
    for pid in targets:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    return wait_gone(targets, timeout)
