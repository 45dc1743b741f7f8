"""A ``deploysim run`` killed with SIGKILL leaves no secret on disk, and the next start removes
what it left; papermill's own notebook is redacted on every write.

The kill is made at a known point: the run's scenario is a FIFO, so the kernel blocks in the
validation cell (the parameters already injected, papermill's notebook already written) until
the test opens the FIFO's other end. Then the ``deploysim run`` process is SIGKILLed, and every
file under the run's HOME, TMPDIR, working folder and record folder is searched for the
planted secrets.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from deploysim.errors import ParameterError
from deploysim.redact import REDACTED, Redactor
from deploysim.runbooks import notebook as nbmod
from deploysim.runbooks.notebook import (
    REDACTED_SCHEME,
    RUN_DIR_PREFIX,
    RedactingHandler,
    clean_stale_run_dirs,
    collect_parameters,
)

DEPLOYSIM = Path(sys.executable).parent / "deploysim"
_RNG = random.Random(12)
# plain secrets, with no shape that gives them away: only their names and the by-value net hide them
TOKEN = "kill-me-" + "".join(_RNG.choice(string.ascii_lowercase) for _ in range(10))
URL_PASSWORD = "p/ss@" + "".join(_RNG.choice(string.ascii_lowercase) for _ in range(8))
GUARD = 300  # seconds: a broken run must not hang the suite


def _open_writer(fifo: Path, proc: subprocess.Popen) -> int:
    """Open the FIFO for writing once the kernel has opened it for reading: the kernel is then
    inside the validation cell. Fails if the run ends first."""
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"deploysim run ended (exit {proc.returncode}) before reading its scenario: {err[-2000:]}")
        time.sleep(0.05)
    pytest.fail("the kernel never opened its scenario")


def _files_with(root: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and not path.is_fifo():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)} holds {s[:6]}..." for s in secrets if s.encode() in data]
    return found


def test_a_killed_run_leaves_no_secret_on_disk_and_the_next_start_cleans_up(tmp_path: Path) -> None:
    home, tmpdir, work, runs = (tmp_path / d for d in ("home", "tmp", "work", "runs"))
    for d in (home, tmpdir, work, runs):
        d.mkdir()
    fifo = work / "scenario.yaml"
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if k not in (nbmod.ENV_RUN_DIR, nbmod.ENV_NOTEBOOK)}
    env.update(HOME=str(home), TMPDIR=str(tmpdir), PYDEVD_DISABLE_FILE_VALIDATION="1",
               MPLCONFIGDIR=os.environ.get("MPLCONFIGDIR", str(Path.home() / ".config" / "matplotlib")))
    cmd = [str(DEPLOYSIM), "run", "canary", "-p", "scenario", str(fifo), "-r", "prometheus_token", TOKEN,
           "-p", "prometheus_url", f"https://admin:{URL_PASSWORD}@prometheus.example:9090",
           "--record-dir", str(runs)]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kernels: list[psutil.Process] = []
    writer = None
    try:
        writer = _open_writer(fifo, proc)
        kernels = psutil.Process(proc.pid).children(recursive=True)
        assert kernels, "the kernel runs as a child of deploysim run"
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=GUARD)
        assert proc.returncode == -signal.SIGKILL
        psutil.wait_procs(kernels, timeout=30)  # ipykernel's parent poller ends an orphaned kernel
    finally:
        if writer is not None:
            os.close(writer)
        for child in kernels:  # whatever is still running is ours: end it by its pid
            if child.is_running():
                child.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    leftovers = [p for p in tmpdir.iterdir() if p.name.startswith(f"{RUN_DIR_PREFIX}{proc.pid}-")]
    assert len(leftovers) == 1, sorted(p.name for p in tmpdir.iterdir())  # the kill left its folder behind
    nb = nbformat.read(str(leftovers[0] / "canary.ipynb"), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'prometheus_token = "[REDACTED]"' in injected[0].source  # written, and redacted
    assert nb.metadata.papermill.parameters.prometheus_token == REDACTED

    secrets = (TOKEN, URL_PASSWORD)
    assert _files_with(tmp_path, secrets) == []
    assert not any(s in err for s in secrets)

    # the next start: the folder of the dead process goes
    assert clean_stale_run_dirs(tmpdir) == leftovers
    assert not leftovers[0].exists()


def test_stale_folders_go_live_ones_stay_and_old_ones_are_redacted(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{RUN_DIR_PREFIX}{int(done.stdout)}-abc"
    alive = tmp_path / f"{RUN_DIR_PREFIX}{os.getppid()}-def"  # the process that started the suite
    mine = tmp_path / f"{RUN_DIR_PREFIX}{os.getpid()}-ghi"
    legacy = tmp_path / f"{RUN_DIR_PREFIX}k2j4h1"  # before the pid was in the name
    for folder in (dead, alive, mine, legacy):
        folder.mkdir()
    (dead / "runtime").mkdir()
    old_nb = {"cells": [{"cell_type": "code", "source": f'prometheus_token = "{TOKEN}"\n', "metadata": {},
                         "outputs": [], "execution_count": 1}],
              "metadata": {"papermill": {"parameters": {"prometheus_token": TOKEN}}}, "nbformat": 4,
              "nbformat_minor": 5}
    (legacy / "canary.ipynb").write_text(json.dumps(old_nb))
    assert clean_stale_run_dirs(tmp_path) == [dead]
    assert alive.is_dir() and mine.is_dir() and legacy.is_dir() and not dead.exists()
    text = (legacy / "canary.ipynb").read_text()
    assert TOKEN not in text and REDACTED in text
    assert json.loads(text)["metadata"]["papermill"]["parameters"]["prometheus_token"] == REDACTED


def test_papermills_notebook_is_redacted_on_every_write(tmp_path: Path) -> None:
    import papermill.iorw as iorw

    nbmod._register_redacting_handler()
    nbmod._register_redacting_handler()  # once is enough, twice changes nothing
    assert sum(scheme == REDACTED_SCHEME for scheme, _ in iorw.papermill_io._handlers) == 1
    target = tmp_path / "out.ipynb"
    RedactingHandler.redactors[str(target)] = Redactor.from_parameters({"prometheus_token": TOKEN})
    try:
        nb = new_notebook(cells=[
            new_code_cell(f'# Parameters\nprometheus_token = "{TOKEN}"\n', metadata={"tags": ["injected-parameters"]}),
            new_code_cell("print(token)", outputs=[new_output("stream", name="stdout", text=f"{TOKEN}\n")])])
        nb.metadata["papermill"] = {"parameters": {"prometheus_token": TOKEN},
                                    "output_path": REDACTED_SCHEME + str(target)}
        iorw.write_ipynb(nb, REDACTED_SCHEME + str(target))  # what papermill calls on each save
    finally:
        RedactingHandler.redactors.pop(str(target), None)
    text = target.read_text()
    assert TOKEN not in text and text.count(REDACTED) >= 3
    assert json.loads(text)["metadata"]["papermill"]["output_path"] == str(target)
    assert not list(tmp_path.glob(".*.tmp"))  # written by rename
    assert RedactingHandler.read(REDACTED_SCHEME + str(target)) == text


def test_a_bad_yaml_parameter_is_reported_short_and_without_its_secrets() -> None:
    token = "ghp_" + "Zq7Lm2Xv" * 5
    with pytest.raises(ParameterError) as err:
        collect_parameters(yaml_texts=[f"{{prometheus_token: {token}, candidate: {{error_rate: 0.05, x: " + "y" * 500])
    message = str(err.value)
    assert token not in message and token[:10] not in message
    assert REDACTED in message and "not valid YAML" in message and "\n" not in message
    assert len(message) < 200
    with pytest.raises(ParameterError) as err:
        collect_parameters(yaml_texts=[f"[http://u:{URL_PASSWORD}@h/]"])
    assert URL_PASSWORD not in str(err.value) and "expected a mapping" in str(err.value)
