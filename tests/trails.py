"""Audit trails made in-process for the tests that read them (no notebook, no papermill)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from deploysim.errors import RolloutNotPromoted
from deploysim.runbooks import session

BAD = {"candidate": {"error_rate": 0.05}}
GOOD = {"candidate": {"error_rate": 0.001}}


def make_run(name: str, params: dict, record_dir: Path) -> Path:
    """One runbook run in-process, 20 minutes simulated: validate, execute, record, close."""
    run = session.validate_parameters(name, {"duration": "20m", "record_dir": str(record_dir), **params})
    with redirect_stdout(io.StringIO()):
        run.execute()
        run.finish()
        try:
            run.close()
        except RolloutNotPromoted:
            pass
    assert run.folder is not None
    return run.folder
