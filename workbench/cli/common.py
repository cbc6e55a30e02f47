"""Helpers every command group shares: the database, variables, output, and the advice for an error.

Core errors describe a problem in domain words and name the setting it is about in `exc.field`;
`hint_for` turns that setting into advice in this adapter's terms (a flag, a command). The entry
module (`workbench/cli/__init__.py`) imports this module, never the other way round.

Machine output (`--json`, or `--format json` to stdout) is kept pure by `machine_output`, which
`main` wraps around such a command: only the CLI's own code writes to the real standard output;
what libraries print (DSPy's progress lines, a C library writing to file descriptor 1) goes to
standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

# The setting an error names (`WorkbenchError.field`, see workbench/errors.py) -> what to do about it
# on the command line. Fields the CLI has nothing to add for are simply absent.
HINTS: dict[str, str] = {
    "response_format": "give the schema with --schema FILE (add --strict for strict mode)",
    "tools": "give the tools with --tools FILE",
    "tool_choice": "use --tool-choice auto|none|required|NAME",
    "override": "add --override to save it anyway (the lineage records the override and the evidence)",
    "restart": "start a new run with the same settings: python -m workbench optimize again ID",
    "tracking_uri": "give the server with --tracking-uri URI, or set MLFLOW_TRACKING_URI",
    "experiment": "choose another experiment with --experiment NAME",
    "variables": "pass it with --var NAME=VALUE (or add the column to the dataset)",
    "regex": "give the pattern with --regex PATTERN",
    "json_schema": "give the schema with --json-schema FILE",
    "judge_model": "choose the judge with --judge-model MODEL (see: python -m workbench models)",
    "judge_rubric": "give the rubric with --judge-rubric TEXT",
    "models": "choose them with --models m1,m2 (see: python -m workbench models)",
    "model": "see the models you can call, and the keys they need, with: python -m workbench models",
    "score": "choose the metric with --score METRIC (for example --score exact)",
    "metric": "choose the metric with --metric NAME (see: python -m workbench optimize run --help)",
    "sweep": "list sweeps with: python -m workbench sweep list",
    "optimization": "list optimizations with: python -m workbench optimize list",
    "prompt": "list prompts with: python -m workbench prompt list",
    "version": "list prompts and their versions with: python -m workbench prompt list",
    "label": "see a prompt's labels with: python -m workbench prompt list",
    "dataset": "list datasets with: python -m workbench dataset list",
    "template": "fix the template in the file, then: python -m workbench prompt add NAME --file FILE",
    "max_calls": "raise the cap with --max-calls N, or use fewer rows with --limit N",
    "margin": "set the allowed drop with --margin X (a number of at least 0; older name --max-regression)",
    "max_regression": "set the allowed drop with --margin X (older name --max-regression)",
    "alpha": "use --alpha between 0 and 1 (for example --alpha 0.05 for 95% intervals)",
    "column": "give a column label or a unique part of it, e.g. --a NAME@2 (labels: python -m workbench "
    "sweep show SWEEP)",
    "delta": "use --delta above 0 (for example --delta 0.05 for five points on a 0-1 score)",
    "power": "use --power between 0 and 1 (for example --power 0.8)",
    "max_cost": "set the cost limit with --max-cost USD",
    "min_score": "set the floor with --min-score X",
    "promote": "give the baseline as NAME:label (for example NAME:production), or leave out --promote",
    "budget": "raise the limit with --budget USD, or use fewer rows with --limit N",
    "retry_failed": "add --retry-failed to run the failed cells again",
    "rounds": "use --rounds N with N at least 1",
    "expected": "name the answer column with --expected COLUMN",
    "params": "give a grid as --param NAME=V1,V2 (or --temperatures 0,0.7)",
    "repeats": "use --repeats N with N at least 1",
    "concurrency": "use --concurrency N with N at least 1",
    "train_fraction": "use --train-fraction between 0 and 1",
    "format": "use --format csv or --format json",
}


def hint_for(exc: BaseException) -> str | None:
    """Command-line advice for an error about one setting (`exc.field`), or None when there is none."""
    field = getattr(exc, "field", None)
    return HINTS.get(field) if field else None


def ensure_db() -> None:
    """Create or upgrade the database so a command can run on a fresh checkout."""
    from workbench.db import migrate

    migrate()


def session():
    """A session for one unit of work (commits on success)."""
    from workbench.db import session_scope

    return session_scope()


def parse_vars(pairs: list[str] | None) -> dict[str, Any]:
    """`--var name=value` pairs as a dict; `name=@file.txt` reads the value from a file."""
    from workbench.errors import ValidationError

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValidationError(f"--var '{pair}' must look like name=value.")
        key, value = pair.split("=", 1)
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValidationError(f"--var {key}: cannot read {value[1:]}: {exc.strerror}.") from None
        out[key.strip()] = value
    return out


def split_list(value: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def print_json(data: Any) -> None:
    """Pretty JSON on stdout (dates and other objects as strings)."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    sys.stdout.flush()


def write_output(text: str, out: str | None, done: str) -> None:
    """Write `text` to the file `out` (then say `Wrote {done} to FILE.` on stderr), or to stdout."""
    if not out or out == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    from workbench.errors import ValidationError

    try:
        Path(out).write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise ValidationError(f"Cannot write {out}: {exc.strerror}.") from None
    print(f"Wrote {done} to {out}.", file=sys.stderr)


def wants_machine_output(args: argparse.Namespace) -> bool:
    """Whether the command prints a machine-readable document on stdout (`--json`, or `--format
    json` without `--out FILE`)."""
    if getattr(args, "json", False) is True:
        return True
    return getattr(args, "format", None) == "json" and getattr(args, "out", None) in (None, "-")


class _CliOnlyStdout(io.TextIOBase):
    """`sys.stdout` under `machine_output`: text written by the CLI's own modules goes to the real
    standard output, text written by any other code (libraries, the core) to standard error."""

    def __init__(self, document: Any, other: Any):
        super().__init__()
        self.document, self.other = document, other

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.document, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.other.fileno()  # a library that writes to the descriptor reaches stderr

    @property
    def buffer(self) -> Any:  # bytes written by a library: to stderr as well
        return self.other.buffer

    def write(self, text: str) -> int:
        # The caller of print() or of write(): print is a builtin, so the frame above is its caller.
        module = sys._getframe(1).f_globals.get("__name__", "")
        ours = module == "workbench.cli" or module.startswith("workbench.cli.")
        return (self.document if ours else self.other).write(text)

    def flush(self) -> None:
        for stream in (self.document, self.other):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


@contextlib.contextmanager
def machine_output(enabled: bool = True) -> Iterator[None]:
    """While the block runs, only the CLI's own output reaches standard output.

    Python-level writes to `sys.stdout` from anything but `workbench.cli` go to `sys.stderr`, and
    file descriptor 1 itself points at standard error (C libraries such as llama.cpp print there
    directly); the CLI's own text goes to a duplicate of the original descriptor.
    """
    if not enabled or isinstance(sys.stdout, _CliOnlyStdout):
        yield
        return
    original = sys.stdout
    with contextlib.suppress(OSError, ValueError, AttributeError):
        original.flush()
    try:
        on_fd1 = original.fileno() == 1
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        on_fd1 = False  # a replaced stream (a test's capture): it is not affected by moving fd 1
    saved: int | None = None
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptor 1 (or 2) at all: nothing at the C level to move
        if saved is not None:
            os.close(saved)
        saved = None
    document: Any = original
    if on_fd1 and saved is not None:
        encoding = getattr(original, "encoding", None) or "utf-8"
        errors = getattr(original, "errors", None) or "strict"
        document = open(os.dup(saved), "w", encoding=encoding, errors=errors, closefd=True)  # noqa: SIM115
    sys.stdout = _CliOnlyStdout(document, sys.stderr)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout = original
        if document is not original:
            document.close()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def show_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A command function that prints `parser`'s help and exits 2 (a group called without a verb)."""

    def run(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run


def option_adder(container: Any, *, inherit: bool) -> Callable[..., Any]:
    """`add_argument` for `container`; with `inherit`, options get no default of their own.

    A group such as `sweep` carries its default verb's options itself, so `sweep --prompt P ...`
    works without the verb. argparse copies a verb's whole namespace over the group's, so the same
    options on the verb (`sweep run`) must not bring defaults, or they would erase what was given
    before the verb.
    """

    def add(*names: str, **kwargs: Any) -> Any:
        if inherit and names[0].startswith("-"):
            kwargs["default"] = argparse.SUPPRESS
        return container.add_argument(*names, **kwargs)

    return add


class DefaultVerb(argparse._SubParsersAction):
    """Verbs of a group where a first word that is no verb belongs to `default_verb`.

    `ratings 5` reads as `ratings show 5`, the way llm's click DefaultGroup does it: the word is
    handed to the default verb's parser, nothing is rewritten before parsing.
    """

    class _Verbs(Mapping):
        """The verbs as argparse's `choices`, where every word passes the choice check: a word that
        is no verb goes to the default verb (see `__call__`), which parses it or reports it."""

        def __init__(self, parsers: dict[str, argparse.ArgumentParser]):
            self.parsers = parsers

        def __getitem__(self, word: str) -> argparse.ArgumentParser:
            return self.parsers[word]

        def __iter__(self) -> Iterator[str]:
            return iter(self.parsers)

        def __len__(self) -> int:
            return len(self.parsers)

        def __contains__(self, word: object) -> bool:
            return True

    def __init__(self, *args: Any, default_verb: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.choices = self._Verbs(self._name_parser_map)
        self.default_verb = default_verb

    def __call__(self, parser, namespace, values, option_string=None):
        if values and values[0] not in self._name_parser_map:
            values = [self.default_verb, *values]
        super().__call__(parser, namespace, values, option_string)


ALIAS_FORMATTER = argparse.RawDescriptionHelpFormatter


def add_verb(verbs: argparse._SubParsersAction, name: str, text: str, *, hidden: bool = False, **kw: Any):
    """A verb's parser; a hidden one (an older spelling) gets no line in the command list."""
    if hidden:  # argparse lists only verbs given a `help`; the group's epilog documents the old ones
        return verbs.add_parser(name, description=text, **kw)
    return verbs.add_parser(name, help=text, description=text, **kw)


@contextlib.contextmanager
def workers_warmed(
    spec: Any, processes: int | None = None, *, sweep_id: int | None = None, pending: int = 0
) -> Iterator[None]:
    """Start the worker processes of a sweep about to be planned (`spec`, a SweepSpec) or resumed
    (`sweep_id` with `pending` cells) now, so they import LiteLLM while this process plans (and
    imports it too): ready by the first call (workbench.sweeps.standby). The ones the sweep did not
    use (planning failed, a small sweep) stop when the command ends."""
    from workbench.sweeps import standby

    _warm(spec, processes, sweep_id, pending)
    try:
        yield
    finally:
        standby.pool().stop_all()


def _warm(spec: Any, processes: int | None, sweep_id: int | None, pending: int) -> None:
    from workbench.db import get_engine
    from workbench.errors import WorkbenchError
    from workbench.sweeps import plan
    from workbench.sweeps import processes as procs

    try:
        with session() as s:
            if spec is None:
                spec = plan.spec_of(plan.require_sweep(s, sweep_id))
            else:
                pending = plan.grid_size(s, spec)
        procs.warm(get_engine(), pending, spec.models, processes)
    except WorkbenchError:
        pass  # planning says what is wrong with the spec
