"""papermill glue: run a runbook notebook, and read what papermill gave the kernel.

Parameters are read the way papermill reads them, with papermill's own code: the injected
cell by its translator's ``inspect`` (what ``--help-notebook`` uses), ``-p`` values by its
command line's type resolution, YAML without dates by its loader.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploysim.errors import EXIT_NOT_PROMOTED, EXIT_OK, ParameterError, exit_code_named
from deploysim.redact import Redactor
from deploysim.runbooks.parameters import PARAMETER_MODELS, RUNBOOKS
from deploysim.trail import RECORD_FILE, RUNNING, export_notebook, read_record, run_name, write_json

# environment set by `deploysim run` for the kernel: the run folder and the output notebook
ENV_RUN_DIR = "DEPLOYSIM_RUN_DIR"
ENV_NOTEBOOK = "DEPLOYSIM_NOTEBOOK"
# the first line of the cell papermill injects (Translator.codify's comment)
INJECTED_HEADER = "# Parameters"


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
    from papermill.iorw import NoDatesSafeLoader, read_yaml_file

    parameters: dict[str, Any] = {}
    for file in files:
        try:
            parameters.update(read_yaml_file(file) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise ParameterError(f"-f {file}: cannot read YAML parameters ({exc})") from None
    for text in yaml_texts:
        try:
            loaded = yaml.load(text, Loader=NoDatesSafeLoader) or {}  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            raise ParameterError(f"-y {text!r}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise ParameterError(f"-y {text!r}: expected a mapping like '{{candidate: {{error_rate: 0.05}}}}'")
        parameters.update(loaded)
    for name, value in values:
        parameters[name] = _resolve_type(value)
    for name, value in raw:
        parameters[name] = value
    return parameters


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

    papermill writes the executed notebook into a private temporary folder (it holds the
    parameters as given, secrets included); a redacted copy goes into the run folder.
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
    with tempfile.TemporaryDirectory(prefix="deploysim-run-") as tmp:
        out = Path(tmp) / f"{name}.ipynb"
        saved = {k: os.environ.get(k) for k in (ENV_RUN_DIR, ENV_NOTEBOOK)}
        os.environ[ENV_RUN_DIR] = str(folder)
        os.environ[ENV_NOTEBOOK] = str(out)
        try:
            papermill.execute_notebook(str(path), str(out), parameters=parameters, progress_bar=False,
                                       log_output=log_output)
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
