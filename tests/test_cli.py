"""`python -m workbench`: commands, help text, exit codes (run as real subprocesses where cheap)."""

import argparse
import json
import os
import subprocess
import sys
import time

import pytest

from workbench import config
from workbench.cli import build_parser, main

ROOT = config.PROJECT_ROOT


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


HEAVY = ("litellm", "dspy", "streamlit", "sqlmodel", "llama_cpp", "mlflow")


def heavy_imports(*argv: str) -> list[str]:
    """The heavy modules imported by printing the help of `argv` (in a fresh interpreter)."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, workbench.cli as c\n"
            "try:\n"
            f"    c.main({list(argv)!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(probe.stderr.strip().splitlines()[-1].replace("'", '"'))


def test_help_is_fast_and_imports_nothing_heavy():
    started = time.perf_counter()
    proc = run_cli("--help")
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0 and "prompt" in proc.stdout
    assert heavy_imports("--help") == []
    print(f"--help took {elapsed:.3f} s")


@pytest.mark.parametrize(
    "group", ["sweep", "ratings", "optimize", "export", "prompt", "dataset", "gate", "mlflow"]
)
def test_a_groups_help_imports_nothing_heavy(group):
    assert heavy_imports(group, "--help") == []


def test_every_command_has_help_text():
    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{' '.join([*path, choice.dest])} has no help"
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.dest != "help":
                assert action.help, f"{' '.join(path)} {action.option_strings or action.dest} has no help"

    walk(build_parser(), [])


def test_init_loads_examples_once(capsys):
    assert main(["init"]) == 0
    assert "prompt sentiment" in capsys.readouterr().out
    assert main(["init"]) == 0
    assert "already loaded" in capsys.readouterr().out


def test_prompt_add_list_show_label_render(tmp_path, capsys):
    spec = tmp_path / "greet.yaml"
    spec.write_text(
        "messages:\n  - role: user\n    content: 'Hello {{ name }}'\nparams:\n  temperature: 0.2\n"
    )
    assert main(["prompt", "add", "greet", "--file", str(spec)]) == 0
    assert "Saved greet@1" in capsys.readouterr().out
    assert main(["prompt", "add", "greet", "--file", str(spec)]) == 0
    assert "Unchanged" in capsys.readouterr().out
    j2 = tmp_path / "greet.j2"
    j2.write_text("Hi {{ name }}, from {{ place }}")
    assert main(["prompt", "add", "greet", "--file", str(j2), "--note", "plain"]) == 0
    assert main(["prompt", "label", "greet@1", "production"]) == 0
    capsys.readouterr()
    assert main(["prompt", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "name": "greet",
            "versions": 2,
            "latest": 2,
            "labels": "production->@1",
            "variables": ["name", "place"],
        }
    ]
    assert main(["prompt", "show", "greet:production", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (
        shown["version"] == 1
        and shown["labels"] == ["production"]
        and shown["params"] == {"temperature": 0.2}
    )
    assert main(["prompt", "show", "greet@2", "--diff", "1"]) == 0
    assert "+Hi {{ name }}, from {{ place }}" in capsys.readouterr().out
    assert main(["render", "greet", "--var", "name=Ada", "--var", "place={{ x }}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"role": "user", "content": "Hi Ada, from {{ x }}"}]


def test_dataset_import_list_show(tmp_path, capsys):
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("q,expected\nfirst,1\nsecond,2\n")
    assert main(["dataset", "import", "nums", str(csv_file)]) == 0
    assert "Imported 2 rows" in capsys.readouterr().out
    assert main(["dataset", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "nums", "rows": 2, "labelled": 2, "columns": ["q"]}
    ]
    assert main(["dataset", "show", "nums", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[1] == {"q": "second", "expected": "2"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["render", "nope"], "No prompt named 'nope'"),
        (["prompt", "show", "sentiment@99"], "no version 99"),
        (["render", "sentiment"], "Missing variable 'review'"),
        (["render", "sentiment", "--var", "oops"], "must look like name=value"),
        (["dataset", "import", "x", "/no/such.csv"], "No such file"),
        (["complete", "local/nope", "--message", "hi"], "Unknown local model"),
        (["complete", "openai/gpt-4o-mini", "--message", "hi"], "needs OPENAI_API_KEY"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_maybe_a_hint(argv, message, capsys):
    main(["init"])
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: "))


def test_a_missing_variable_is_explained_in_flags(capsys):
    main(["init"])
    capsys.readouterr()
    assert main(["render", "sentiment"]) == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert "--" not in error  # the core says what is wrong; the CLI says which flag fixes it
    assert hint == "hint: pass it with --var NAME=VALUE (or add the column to the dataset)"


def test_bad_template_file_is_refused_with_position(tmp_path, capsys):
    bad = tmp_path / "bad.j2"
    bad.write_text("ok\n{{ name }")
    assert main(["prompt", "add", "bad", "--file", str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err


@pytest.mark.local_model
def test_complete_with_local_model_returns_real_text():
    proc = run_cli(
        "complete",
        "local/smollm2-135m-instruct",
        "--message",
        "Say hello.",
        "--max-tokens",
        "8",
        "--temperature",
        "0",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["text"].strip() and data["completion_tokens"] > 0 and data["latency_ms"] > 0
    assert data["cost_usd"] == 0.0 and data["model"] == "local/smollm2-135m-instruct"
