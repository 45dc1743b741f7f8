"""papermill glue: run a runbook notebook, and read what papermill gave the kernel.

Parameters are read the way papermill reads them, with papermill's own code: the injected
cell by its translator's ``inspect`` (what ``--help-notebook`` uses), ``-p`` values by its
command line's type resolution, YAML without dates by its loader.

Nothing secret is left on disk, even when ``deploysim run`` is killed (SIGKILL: no
``finally`` runs). The parameters reach the kernel only in the cell papermill injects, sent
over the kernel's sockets; nbclient keeps the kernel's IPython history in memory. papermill
writes its own output notebook (the parameters cell included) after every cell, through its
I/O layer (``papermill.iorw``): ``deploysim run`` gives it a path under the
``deploysim-redacted://`` scheme, whose handler redacts each write with the run's redactor
before it reaches the disk. That notebook, and the kernel's connection file, live in
``$TMPDIR/deploysim-run-<pid>-*``; a folder whose process is gone is removed when the next
``deploysim run`` starts (:func:`clean_stale_run_dirs`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploysim import yamlsafe
from deploysim.errors import EXIT_NOT_PROMOTED, EXIT_OK, ParameterError, exit_code_named
from deploysim.redact import Redactor, excerpt_text
from deploysim.runbooks.parameters import PARAMETER_MODELS, RUNBOOKS
from deploysim.trail import (
    RECORD_FILE,
    RUNNING,
    export_notebook,
    read_record,
    run_name,
    write_json,
    write_text,
)

# environment set by `deploysim run` for the kernel: the run folder and the output notebook
ENV_RUN_DIR = "DEPLOYSIM_RUN_DIR"
ENV_NOTEBOOK = "DEPLOYSIM_NOTEBOOK"
# the first line of the cell papermill injects (Translator.codify's comment)
INJECTED_HEADER = "# Parameters"
# papermill's output notebook goes through this I/O scheme: every write is redacted first
REDACTED_SCHEME = "deploysim-redacted://"
# private folders of `deploysim run`: deploysim-run-<pid>-<random>
RUN_DIR_PREFIX = "deploysim-run-"
_RUN_DIR = re.compile(re.escape(RUN_DIR_PREFIX) + r"(\d+)-")
# how much of a value an error shows (redacted first, then cut)
EXCERPT = 60


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


# --- inside the kernel: what papermill injected ----------------------------------------------


@contextmanager
def _papermill_quiet() -> Iterator[None]:
    """papermill logs a warning for each line it cannot inspect; inside a runbook's kernel
    that would land in the notebook's output, and the names are recovered below."""
    log = logging.getLogger("papermill")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def parameter_names(source: str) -> set[str]:
    """The names a parameters cell assigns, read by papermill's ``PythonTranslator.inspect``.

    ``inspect`` skips a line holding more than one ``=`` (a value such as ``"replicas=3"``);
    papermill's ``codify`` writes each parameter as one ``name = value`` line, so such a
    line's name is the text before its first ``" = "``.

    >>> sorted(parameter_names('# Parameters\\nduration = "20m"\\noverrides = ["replicas=3"]\\n'))
    ['duration', 'overrides']
    """
    from papermill.translators import PythonTranslator

    with _papermill_quiet():
        names = {p.name for p in PythonTranslator.inspect({"source": source})}
    for line in source.splitlines():
        name, sep, _ = line.partition(" = ")
        if sep and line.count("=") > 1 and name.isidentifier():
            names.add(name)
    return names


def injected_names(namespace: Mapping[str, Any]) -> set[str] | None:
    """Names papermill injected into this kernel, read from its own cell history.

    papermill puts the parameters it was given in a cell that starts ``# Parameters``
    (tagged ``injected-parameters``); papermill only warns about names the notebook does
    not declare, so the runbook reads them back here. None outside IPython.
    """
    history = namespace.get("In")
    if not isinstance(history, list):
        return None
    names: set[str] = set()
    for source in history:
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_HEADER):
            names |= parameter_names(source)
    return names


def notebook_output_path(hint: str | None = None) -> Path | None:
    """Where papermill is writing the executed notebook, seen from inside its kernel.

    In order: ``PAPERMILL_OUTPUT_PATH`` (papermill --inject-output-path), the path
    ``deploysim run`` gives in ``$DEPLOYSIM_NOTEBOOK``, then the command line of the papermill
    process that started this kernel (plain ``papermill in.ipynb out.ipynb``).
    """
    if hint:
        return Path(hint)
    if os.environ.get(ENV_NOTEBOOK):
        return Path(os.environ[ENV_NOTEBOOK])
    return _papermill_cli_output()


def _papermill_cli_output() -> Path | None:
    try:
        import psutil

        parent = psutil.Process(os.getppid())
        argv, cwd = parent.cmdline(), parent.cwd()
    except Exception:  # noqa: BLE001 - no parent info: no copy, the record says so
        return None
    rest: list[str] | None = None
    for i, arg in enumerate(argv):
        if Path(arg).name == "papermill" and i > 0:
            rest = argv[i + 1:]
            break
        if arg == "-m" and argv[i + 1:i + 2] == ["papermill"]:
            rest = argv[i + 2:]
            break
    if rest is None:
        return None
    try:
        from papermill.cli import papermill as command

        ctx = command.make_context("papermill", list(rest), resilient_parsing=True)
    except Exception:  # noqa: BLE001
        return None
    out = ctx.params.get("output_path")
    if not out or out == "-" or "://" in str(out):
        return None
    path = Path(out)
    return path if path.is_absolute() else Path(cwd) / path


# --- outside: deploysim run, papermill's Python API with the same parameters ------------------


def find_runbook(name: str) -> Path:
    """A runbook by name (``canary``, ``blue-green``) or path (``runbooks/canary.ipynb``)."""
    path = Path(name)
    if path.suffix == ".ipynb":
        if path.is_file():
            return path
        raise ParameterError(f"runbook {name!r}: no such file")
    stem = name.replace("-", "_")
    for base in (Path.cwd() / "runbooks", repo_root() / "runbooks"):
        if (base / f"{stem}.ipynb").is_file():
            return base / f"{stem}.ipynb"
    raise ParameterError(f"runbook {name!r}: not found; allowed: {', '.join(RUNBOOKS)} or a path to a .ipynb")


def notebook_parameters(runbook: str) -> dict[str, dict[str, Any]]:
    """A runbook's parameters as papermill's ``--help-notebook`` lists them."""
    import papermill

    return papermill.inspect_notebook(str(find_runbook(runbook)))


def collect_parameters(files: Iterable[str] = (), yaml_texts: Iterable[str] = (),
                       values: Iterable[tuple[str, str]] = (),
                       raw: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """Parameters from papermill's options, merged in papermill's order: ``-f`` files,
    ``-y`` YAML, ``-p`` values (``True``, ``None``, numbers read as such), ``-r`` text.

    >>> collect_parameters(yaml_texts=["{candidate: {error_rate: 0.05}}"], values=[("seed", "3")])
    {'candidate': {'error_rate': 0.05}, 'seed': 3}
    """
    import yaml
    from papermill.cli import _resolve_type
    from papermill.iorw import NoDatesSafeLoader

    parameters: dict[str, Any] = {}
    for file in files:
        try:
            text = yamlsafe.read_text(file)
            yamlsafe.check(text)  # within bounds before papermill's loader expands it
            loaded = yaml.load(text, Loader=NoDatesSafeLoader) or {}  # noqa: S506 - a safe loader
        except (OSError, ValueError, yaml.YAMLError) as exc:
            why = _yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else str(exc)
            raise ParameterError(f"-f {file}: cannot read YAML parameters ({why})") from None
        if not isinstance(loaded, dict):
            raise ParameterError(f"-f {file}: expected a mapping of parameter names to values")
        parameters.update(loaded)
    for text in yaml_texts:
        try:
            yamlsafe.check(text)
            loaded = yaml.load(text, Loader=NoDatesSafeLoader) or {}  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            raise ParameterError(f"-y {excerpt(text)!r}: not valid YAML ({_yaml_problem(exc)})") from None
        if not isinstance(loaded, dict):
            raise ParameterError(f"-y {excerpt(text)!r}: expected a mapping like '{{candidate: {{error_rate: 0.05}}}}'")
        parameters.update(loaded)
    for name, value in values:
        parameters[name] = _resolve_type(value)
    for name, value in raw:
        parameters[name] = value
    return parameters


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """``text`` redacted, then cut to ``limit`` characters (:func:`~deploysim.redact.excerpt_text`)."""
    return excerpt_text(text, limit)


def _yaml_problem(exc: BaseException) -> str:
    """A YAML error in one line: its problem and where, without the echoed source line
    (PyYAML quotes the line it stopped at, tokens and all)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem:
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{problem}{where}"
    return excerpt(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


# --- papermill's own notebook: redacted on every write, in a folder cleaned after a kill ------


class RedactingHandler:
    """A papermill I/O handler for ``deploysim-redacted://<path>``: each write of the output
    notebook is redacted with the redactor registered for ``<path>``, then written atomically.

    papermill saves the output notebook at the start, after each cell and every 30 s while a
    cell prints (``NotebookExecutionManager.save`` → ``iorw.write_ipynb`` →
    ``papermill_io.write``), so the disk never holds an unredacted copy.
    """

    redactors: dict[str, Redactor] = {}

    @staticmethod
    def local(path: str) -> str:
        return path[len(REDACTED_SCHEME):] if path.startswith(REDACTED_SCHEME) else path

    @classmethod
    def read(cls, path: str) -> str:
        return Path(cls.local(path)).read_text(encoding="utf-8")

    @classmethod
    def listdir(cls, path: str) -> list[str]:
        return [str(p) for p in Path(cls.local(path)).iterdir()]

    @classmethod
    def write(cls, buf: str, path: str) -> None:
        import nbformat

        target = Path(cls.local(path))
        redactor = cls.redactors.get(str(target), Redactor())
        nb = redactor.notebook(nbformat.reads(buf, as_version=4))
        papermill_meta = nb.metadata.get("papermill", {})
        if str(papermill_meta.get("output_path", "")).startswith(REDACTED_SCHEME):
            papermill_meta["output_path"] = str(target)  # where it is, as the reader sees it
        write_text(target, nbformat.writes(nb))

    @classmethod
    def pretty_path(cls, path: str) -> str:
        return cls.local(path)


def _register_redacting_handler() -> None:
    from papermill.iorw import papermill_io

    if not any(scheme == REDACTED_SCHEME for scheme, _ in papermill_io._handlers):
        papermill_io.register(REDACTED_SCHEME, RedactingHandler)


class _RedactingFilter(logging.Filter):
    """papermill's log (``--log-output`` echoes the notebook's output): redacted as it goes."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(record.getMessage())
        record.args = ()
        return True


def _owner_gone(folder: Path, pid: int) -> bool:
    """The process that made ``folder`` has ended (a process with its pid started after the
    folder was last written is another one)."""
    import psutil

    try:
        started = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.Error:  # not ours to look at: alive as far as we can tell
        return False
    try:
        return started > folder.stat().st_mtime + 1
    except OSError:
        return False


def clean_stale_run_dirs(base: str | Path | None = None) -> list[Path]:
    """Remove the private folders of ``deploysim run`` processes that are gone (killed), and
    redact in place the notebooks of folders in the older ``deploysim-run-<random>`` form
    (their process is unknown). Returns the folders removed.
    """
    root = Path(base) if base is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        folders = sorted(p for p in root.glob(RUN_DIR_PREFIX + "*") if p.is_dir() and not p.is_symlink())
    except OSError:
        return removed
    for folder in folders:
        owner = _RUN_DIR.match(folder.name)
        if owner is None:
            for notebook in folder.glob("*.ipynb"):
                _redact_file(notebook)
            continue
        if int(owner.group(1)) != os.getpid() and _owner_gone(folder, int(owner.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _redact_file(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError):
        return
    clean = json.dumps(Redactor().data(data), indent=1) + "\n"
    if clean != text:
        write_text(path, clean)


@dataclass
class RunResult:
    """What ``deploysim run`` reports: the folder, the outcome, the notebook's error if any."""

    folder: Path | None
    outcome: str | None
    ok: bool
    status: str
    error_name: str | None = None
    exit_code: int = EXIT_OK


def run_notebook(runbook: str, parameters: dict[str, Any], log_output: bool = False) -> RunResult:
    """Execute a runbook with papermill; the audit folder gets the final notebook and HTML.

    papermill writes the executed notebook into a private temporary folder, redacted on every
    write (see the module); a copy goes into the run folder. Leftovers of killed runs are
    removed first.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = find_runbook(runbook)
    name = path.stem
    model = PARAMETER_MODELS.get(name)
    default_dir = model.model_fields["record_dir"].default if model else "runs"
    record_dir = parameters.get("record_dir", default_dir)
    folder = (Path(str(record_dir)) / run_name(name)).resolve()
    redactor = Redactor.from_parameters(parameters)
    error: PapermillExecutionError | None = None
    clean_stale_run_dirs()
    _register_redacting_handler()
    log_filter = _RedactingFilter(redactor)
    logging.getLogger("papermill").addFilter(log_filter)
    tmp = tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-")
    try:
        out = Path(tmp) / f"{name}.ipynb"
        RedactingHandler.redactors[str(out)] = redactor
        env = {ENV_RUN_DIR: str(folder), ENV_NOTEBOOK: str(out),
               "JUPYTER_RUNTIME_DIR": str(Path(tmp) / "runtime")}  # the kernel's connection file
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            papermill.execute_notebook(str(path), REDACTED_SCHEME + str(out), parameters=parameters,
                                       progress_bar=False, log_output=log_output)
        except PapermillExecutionError as exc:
            error = exc
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        if folder.is_dir() and out.is_file():
            files = export_notebook(out, folder, name, redactor)
            data = read_record(folder)
            data["run"]["notebook"] = {"copied": True, **files, "complete": True}
            write_json(folder / RECORD_FILE, redactor.data(data))
    finally:
        RedactingHandler.redactors.pop(str(Path(tmp) / f"{name}.ipynb"), None)
        logging.getLogger("papermill").removeFilter(log_filter)
        shutil.rmtree(tmp, ignore_errors=True)
    if not folder.is_dir():
        message = redactor.text(error.evalue) if error else "the runbook did not start a run"
        return RunResult(None, None, False, message, error.ename if error else None,
                         exit_code_named(error.ename) if error else EXIT_NOT_PROMOTED)
    run = read_record(folder)["run"]
    if error is not None and error.ename != "RolloutNotPromoted" and run.get("outcome") in (RUNNING, None):
        run["status"] = f"{error.ename}: {redactor.text(error.evalue)}"
    ok = bool(run.get("ok")) and error is None
    return RunResult(folder, run.get("outcome"), ok, run.get("status", ""), error.ename if error else None,
                     _exit_code(run, ok, error.ename if error else None))


def _exit_code(run: dict[str, Any], ok: bool, error_name: str | None) -> int:
    """The code the run recorded (its session knew the exception itself), else the error's
    by name: errors defined where the parent process never imported them are found only so."""
    if ok:
        return EXIT_OK
    recorded = run.get("exit_code")
    if isinstance(recorded, int) and recorded != EXIT_OK:
        return recorded
    return exit_code_named(error_name) if error_name else EXIT_NOT_PROMOTED
