"""Machine output is pure: every command that prints JSON (`--json`, or `--format json` to stdout)
prints that document alone on stdout, whatever the libraries under it print.

The commands are found by walking the real parser, so a new command with `--json` is run here
too: its positional arguments come from `POSITIONALS` by name, other arguments from `EXTRA`, and a
command this file cannot build arguments for fails with a message saying what to add. Each command
runs as `python -m workbench ...` in a subprocess (real stdout, real file descriptor 1) on its own
copy of one database holding real data: two prompt versions run as a sweep against the scripted
fake server, votes, a pending sweep, a finished and a pending optimization, an export file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakeserver import FakeOpenAIServer
from tests.sweep_helpers import FAKE
from workbench import config
from workbench.cli import build_parser

ROOT = config.PROJECT_ROOT
RUN_SWEEP = ["--prompt", "echo@1", "--prompt", "echo@2", "--dataset", "rows", "--models", FAKE]
RUN_SWEEP += ["--score", "exact"]
# The default optimizer (DSPy's BootstrapFewShot) prints "Bootstrapped N full traces ..." itself.
OPTIMIZE = ["--prompt", "cap", "--dataset", "caps", "--model", FAKE, "--optimizer", "bootstrap"]
OPTIMIZE += ["--limit", "4", "--save"]
GATE = ["--prompt", "echo@2", "--baseline", "echo@1", "--dataset", "rows", "--models", FAKE]

# Positional arguments by their dest: a key of the prepared data, or a literal value.
POSITIONALS = {
    "sweep_id": "done_sweep",
    "optimization_id": "done_optimization",
    "file": "export_file",
    "ref": "=echo@1",
    "name": "=rows",
    "model": "=" + FAKE,
}
# Arguments beyond the positionals, by command.
EXTRA = {
    "render": ["--var", "marker=m", "--var", "text=t"],
    "complete": ["--message", "Say hello"],
    "sweep run": RUN_SWEEP,
    "ratings show": ["--rounds", "30"],
    "compare": ["--a", "echo@1", "--b", "echo@2"],
    "gate": GATE,
    "optimize run": OPTIMIZE,
    "optimize save": ["--override"],
    "optimize-save": ["--force"],
}
# Positionals that must name something else than the default for this command.
OVERRIDES = {
    "mlflow pull": {"name": "=echo"},  # the prompt the fixture pushed to the tracking store
    "sweep resume": {"sweep_id": "pending_sweep"},
    "optimize resume": {"optimization_id": "pending_optimization"},
}
EXIT_CODES = {"gate": {0, 1, 3}}  # the gate's verdict is its exit code; it prints JSON for each


@dataclass(frozen=True)
class Command:
    """A command that prints machine output: its words, the parser of its arguments, the flag."""

    words: tuple[str, ...]
    parser: argparse.ArgumentParser
    flag: tuple[str, ...]

    @property
    def name(self) -> str:
        return " ".join(self.words)


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers = getattr(action.choices, "parsers", action.choices)
            yield action, dict(parsers)


def _machine_flag(parser: argparse.ArgumentParser) -> tuple[str, ...] | None:
    for action in parser._actions:
        if "--json" in action.option_strings:
            return ("--json",)
        if "--format" in action.option_strings and "json" in (action.choices or ()):
            return ("--format", "json")
    return None


def machine_commands(parser: argparse.ArgumentParser | None = None, words: tuple[str, ...] = ()):
    """Every command of the real parser that can print machine output on stdout."""
    parser = parser or build_parser()
    found = []
    subs = list(_subcommands(parser))
    flag = _machine_flag(parser)
    # A group's own spelling (`sweep --prompt ...`, `ratings 5`, `optimize --prompt ...`, the older
    # forms) runs the code of one of its verbs, which is run below: each command is a Python
    # start-up and often a LiteLLM import, seconds of the suite, so only verbs and lone commands run.
    if flag and words and not subs:
        found.append(Command(words, parser, flag))
    for _, parsers in subs:
        for name, sub in parsers.items():
            found += machine_commands(sub, (*words, name))
    return found


COMMANDS = machine_commands()


def argv_of(command: Command, data: dict[str, str]) -> list[str]:
    """The command line for `command` on the prepared data."""
    out = list(command.words)
    names = {**POSITIONALS, **OVERRIDES.get(command.name, {})}
    for action in command.parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        if action.dest not in names:
            pytest.fail(
                f"`{command.name}` prints JSON and takes <{action.dest}>: add a value for it to "
                "POSITIONALS (or OVERRIDES) in tests/test_cli_json.py"
            )
        value = names[action.dest]
        out.append(value[1:] if value.startswith("=") else data[value])
    return [*out, *EXTRA.get(command.name, []), *command.flag]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A database with real data and the environment to use it; each test copies the database."""
    from tests import optimize_helpers, sweep_helpers, test_ratings
    from workbench.db import dispose_engines, session_scope
    from workbench.optimize.run import create_optimization
    from workbench.release.export import export_versions

    tmp = tmp_path_factory.mktemp("cli-json")
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_DATABASE_URL", f"sqlite:///{tmp / 'prepared.db'}")
        test_ratings.setup_rating_env(server, tmp, mp)  # echo@1, echo@2, dataset rows, models file
        optimize_helpers.setup(tmp, mp, server)  # cap@1, dataset caps
        optimize_helpers.answer(server)
        sweep_id = test_ratings.version_sweep()
        test_ratings.rate_all(sweep_id, "version", "ann", test_ratings.prefer_version_1)
        pending_sweep = sweep_helpers.plan(prompts=["echo@1"], models=[FAKE], use_cache=False)
        done = optimize_helpers.optimize(optimizer="labeled", settings={"k": 2})
        with session_scope() as s:
            pending, _ = create_optimization(s, optimize_helpers._spec(optimizer="labeled"))
            pending_id = pending.id
            (tmp / "versions.json").write_text(export_versions(s, fmt="json"), encoding="utf-8")
        dispose_engines()
        env = dict(os.environ)  # the models file and its key, set above
        # MLflow's own store in a file (the server-side code is in the dev requirements); `mlflow
        # pull` needs a prompt there, pushed once here.
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        pushed = run_cli(["mlflow", "push", "echo@1"], env)
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        yield {
            "db": tmp / "prepared.db",
            "env": env,
            "done_sweep": str(sweep_id),
            "pending_sweep": str(pending_sweep),
            "done_optimization": str(done),
            "pending_optimization": str(pending_id),
            "export_file": str(tmp / "versions.json"),
        }


def run_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    # Run from the database's folder, not the checkout: MLflow's file-based store puts its
    # artifacts under ./mlruns of the working directory.
    folder = Path(env["WORKBENCH_DATABASE_URL"].removeprefix("sqlite:///")).parent
    return subprocess.run(
        [sys.executable, "-m", "workbench", *argv],
        cwd=folder,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_walk_finds_the_machine_commands():
    names = {c.name for c in COMMANDS}
    assert {"models", "sweep run", "gate", "optimize run", "import", "export versions"} <= names
    assert not set(EXTRA) - names and not set(OVERRIDES) - names, "stale entries"


@pytest.fixture(scope="module")
def outputs(prepared, tmp_path_factory) -> dict[str, tuple[list[str], subprocess.CompletedProcess | str]]:
    """Every command run once, each on its own copy of the prepared database, a few at a time:
    most of each run is Python start-up, which two cores share well. Commands writing MLflow's
    store run one after another (it is one SQLite file). A command whose arguments cannot be
    built maps to the reason."""
    from concurrent.futures import ThreadPoolExecutor

    def run(command: Command) -> tuple[list[str], subprocess.CompletedProcess | str]:
        try:
            argv = argv_of(command, prepared)
        except pytest.fail.Exception as exc:
            return [], str(exc)
        db = tmp_path_factory.mktemp("cmd") / "workbench.db"
        shutil.copy(prepared["db"], db)
        return argv, run_cli(argv, {**prepared["env"], "WORKBENCH_DATABASE_URL": f"sqlite:///{db}"})

    mlflow = [c for c in COMMANDS if c.words[0] == "mlflow"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        serial = pool.submit(lambda: {c.name: run(c) for c in mlflow})
        parallel = {c.name: pool.submit(run, c) for c in COMMANDS if c not in mlflow}
        return {**serial.result(), **{name: f.result() for name, f in parallel.items()}}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_machine_output_is_only_json(command, outputs):
    argv, proc = outputs[command.name]
    if isinstance(proc, str):
        pytest.fail(proc)
    assert proc.returncode in EXIT_CODES.get(command.name, {0}), (argv, proc.stderr[-3000:])
    try:
        json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"{' '.join(argv)}: stdout is not one JSON document ({exc}):\n{proc.stdout[:2000]}")


NOISY = textwrap.dedent(
    """
    import ctypes, os, sys, threading
    import workbench.cli as cli
    from workbench.cli.common import print_json

    def noisy(args):
        print("a library's print")
        sys.stdout.write("a library's write\\n")
        sys.__stdout__.write("a write to the original stream\\n")
        sys.__stdout__.flush()
        os.write(1, b"a write to file descriptor 1\\n")
        libc = ctypes.CDLL(None)
        libc.puts(b"a C library's puts")
        libc.fflush(None)
        worker = threading.Thread(target=print, args=("a thread's print",))
        worker.start()
        worker.join()
        print_json({"ok": True, "text": "caf\\u00e9"})
        return 0

    build = cli.build_parser

    def build_parser():
        parser = build()
        sub = next(a for a in parser._actions if a.dest == "command")
        c = sub.add_parser("noisy", help="Prints from everywhere.")
        c.add_argument("--json", action="store_true", help="JSON.")
        c.set_defaults(func=noisy)
        return parser

    cli.build_parser = build_parser
    sys.exit(cli.main(sys.argv[1:]))
    """
)
NOISE = (
    "a library's print",
    "a library's write",
    "a write to the original stream",
    "a write to file descriptor 1",
    "a C library's puts",
    "a thread's print",
)


@pytest.mark.parametrize("machine", [True, False], ids=["json", "text"])
def test_library_output_goes_to_stderr_only_under_json(machine, tmp_path):
    """Python prints, writes to the original stream, to descriptor 1 and from C all reach stderr
    under --json; without it nothing changes (the command's stdout is the terminal's)."""
    argv = ["noisy", "--json"] if machine else ["noisy"]
    env = {**os.environ, "WORKBENCH_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}"}
    proc = subprocess.run(
        [sys.executable, "-c", NOISY, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    if machine:
        assert json.loads(proc.stdout) == {"ok": True, "text": "café"}
        assert all(line in proc.stderr for line in NOISE), proc.stderr
    else:
        assert all(line in proc.stdout for line in NOISE), proc.stdout


def test_stdout_is_restored_after_a_json_command(capfd, tmp_path, monkeypatch):
    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_DATABASE_URL", f"sqlite:///{tmp_path / 'r.db'}")
    before = sys.stdout
    assert main(["dataset", "list", "--json"]) == 0
    assert sys.stdout is before
    assert json.loads(capfd.readouterr().out) == []
    print("after", flush=True)
    os.write(1, b"fd after\n")
    assert capfd.readouterr().out == "after\nfd after\n"
