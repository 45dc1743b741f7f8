"""The hidden folders killed runs leave in a trail, told apart from the ones being filled now.

:func:`deploysim.trail.make_run_folder` fills a run folder under a hidden temporary name and
renames it into place; a run killed between the two leaves the hidden folder behind. The
temporary name says which process fills it (:func:`temp_run_name`), so that such a leftover
can be removed once its process is gone, and a folder of a live process is never touched
(:func:`remove_leftovers`, called by the next run into the same trail and by every reading of
it, :func:`deploysim.trail.scan_runs`).

>>> me = {"pid": 4321, "host": socket.gethostname(), "started": 1740823200.25}
>>> name = temp_run_name("20250301T101500Z-canary-3f2a1c", me, "a1b2c3")
>>> name.startswith(".20250301T101500Z-canary-3f2a1c.4321-1740823200250-"), name.endswith("-a1b2c3.tmp")
(True, True)
>>> leftover_owner(name) == me
True
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import stat
import time
import uuid
from pathlib import Path
from typing import Any

#: ``.<run>.<pid>-<process start, ms>-<host hash>-<nonce>.tmp``, as :func:`temp_run_name` makes it
TEMP_RUN = re.compile(r"^\.(?P<run>.+)\.(?P<pid>\d{1,7})-(?P<started>\d{1,15})-(?P<host>[0-9a-f]{8})-[0-9a-f]{6}\.tmp$")
#: a hidden run folder changed more recently than this is left alone whatever its name says:
#: filling one takes well under a second, and where a pid cannot be trusted (one folder shared
#: by two pid namespaces under one host name) the age still spares a run filling its folder now
LEFTOVER_AGE_SECONDS = 60.0


def host_hash(host: str) -> str:
    """Eight hex digits standing for a host name in a folder name (a name may be long, or hold
    dots and characters a file name should not).

    >>> host_hash("vm")
    '5bce98f7'
    """
    return hashlib.sha256(host.encode()).hexdigest()[:8]


def temp_run_name(name: str, process: dict[str, Any], nonce: str | None = None) -> str:
    """The hidden name the run folder ``name`` is filled under: the pid, the start time (ms
    since 1970) and a hash of the host of the process filling it, and a random nonce. The
    start time tells a pid given to another process since from the run's own.

    ``process`` is :func:`deploysim.trail.process_identity`'s answer.

    >>> temp_run_name("20250301T101500Z-canary-3f2a1c", {"pid": 4321, "host": "vm", "started": 1740823200.25},
    ...               "a1b2c3")
    '.20250301T101500Z-canary-3f2a1c.4321-1740823200250-5bce98f7-a1b2c3.tmp'
    """
    nonce = nonce or uuid.uuid4().hex[:6]
    return f".{name}.{process['pid']}-{round(process['started'] * 1000)}-{host_hash(process['host'])}-{nonce}.tmp"


def leftover_owner(name: str, host: str | None = None) -> dict[str, Any] | None:
    """The process (pid, host, start time) that a hidden run folder's name says fills it, in
    the form :func:`deploysim.history.process_gone` reads; None when the name is not of that
    form (an older name without a pid, a record's temporary file) or names another host than
    ``host`` (this one by default), whose processes cannot be seen from here.

    >>> leftover_owner(temp_run_name("r", {"pid": 42, "host": "vm", "started": 1.5}), host="vm")
    {'pid': 42, 'host': 'vm', 'started': 1.5}
    >>> leftover_owner(temp_run_name("r", {"pid": 42, "host": "elsewhere", "started": 1.5}), host="vm") is None
    True
    >>> leftover_owner(".20240101T000000Z-rolling-abcdef.1234abcd.tmp") is None
    True
    """
    found = TEMP_RUN.match(name)
    host = host or socket.gethostname()
    if found is None or found["host"] != host_hash(host):
        return None
    return {"pid": int(found["pid"]), "host": host, "started": int(found["started"]) / 1000}


def remove_leftovers(parent: str | Path, min_age: float = LEFTOVER_AGE_SECONDS) -> list[Path]:
    """Remove the hidden run folders in ``parent`` that killed runs left, and return them.

    A folder goes when all three hold: it is named by :func:`temp_run_name` for this host; it
    has not changed for ``min_age`` seconds; its process is gone
    (:func:`deploysim.history.process_gone`: no such pid, a zombie, or the pid started at
    another time, so now another process's). Anything else is left as it is: a folder of a
    live process, of another host, of an older name without a pid (its owner cannot be told),
    a symbolic link, or what cannot be looked at. Nothing is raised: a trail that cannot be
    cleaned (read-only, gone) is read all the same.

    The run was killed before its first step, so a leftover holds no more than its first
    record; being hidden, nobody would see such folders pile up.
    """
    from deploysim.history import process_gone  # history reads the trail, which calls this

    parent = Path(parent)
    try:
        names = sorted(n for n in os.listdir(parent) if n.startswith(".") and n.endswith(".tmp"))
    except OSError:
        return []
    removed = []
    for name in names:
        owner = leftover_owner(name)
        if owner is None:
            continue
        try:
            st = os.lstat(parent / name)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or time.time() - st.st_mtime < min_age:
            continue
        if process_gone(owner) is not None:
            shutil.rmtree(parent / name, ignore_errors=True)
            if not os.path.lexists(parent / name):
                removed.append(parent / name)
    return removed
