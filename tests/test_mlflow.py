"""MLflow against a real `mlflow server` (SQLite store, temp artifact root, 127.0.0.1): log a sweep,
push and pull prompts, and read everything back with MlflowClient. One server per test session.

The commands run through the real CLI parser; until `mlflow` is in `workbench.cli.GROUPS` the
tests add it to the tuple for the duration of a test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.sweep_helpers import FAKE, FAKE2, plan, run, seed
from workbench import config
from workbench.db import session_scope
from workbench.prompts import store

pytest.importorskip("mlflow", reason="the MLflow tests need mlflow (requirements-dev.txt)")

SECRET = "sk-mlflow-test-secret-0123456789"
STARTUP_S = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real MLflow tracking server with a SQLite store and a temp artifact root; its URL."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = (root / "server.log").open("w")
    env = {
        **os.environ,
        **config.OFFLINE_ENV,  # the server imports litellm: without these it fetches a price table
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited:\n" + (root / "server.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - started > STARTUP_S:
                pytest.fail(
                    "mlflow server did not answer /health:\n" + (root / "server.log").read_text()[-3000:]
                )
            time.sleep(0.25)
        print(f"mlflow server ready after {time.monotonic() - started:.1f} s")
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        log.close()


@pytest.fixture
def cli(monkeypatch):
    """`main` with the mlflow group registered."""
    import workbench.cli as cli_module

    if "mlflow" not in cli_module.GROUPS:
        monkeypatch.setattr(cli_module, "GROUPS", (*cli_module.GROUPS, "mlflow"))
    return cli_module.main


@pytest.fixture
def wb_db() -> None:
    """The per-test SQLite database, migrated (one backend: the MLflow server's state is shared)."""
    from workbench.db import migrate

    migrate()


@pytest.fixture
def client(mlflow_server, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


def _runs(client, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def _artifact(client, run_id: str, path: str, tmp_path: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text()


def _sweep_with_votes() -> int:
    from workbench.rating.pairs import candidate_pairs, record_vote

    sweep_id = plan(
        models=[FAKE, FAKE2], params={"temperature": [0, 0.7]}, scoring={"metrics": ["exact", "length"]}
    )
    run(sweep_id)
    with session_scope() as s:
        for i, pair in enumerate(candidate_pairs(s, sweep_id=sweep_id, by="model")[:4]):
            record_vote(s, pair=pair, verdict_side="left" if i % 2 else "right", rater="ana")
    return sweep_id


def test_log_sweep_one_child_per_column_with_the_summary_and_no_duplicates(
    fake_models, client, cli, capsys, tmp_path
):
    from workbench.sweeps.summary import runs_frame, summarize

    seed(4)
    sweep_id = _sweep_with_votes()
    with session_scope() as s:
        table = summarize(runs_frame(s, sweep_id))
        version = store.resolve(s, "echo@1")
    assert cli(["mlflow", "log-sweep", str(sweep_id), "--experiment", "sweeps"]) == 0
    out = capsys.readouterr().out
    assert "4 column runs (4 created, 0 updated)" in out and "/#/experiments/" in out

    (parent,), children = _runs(client, "sweeps")
    assert len(children) == len(table) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert parent.data.tags["workbench.sweep_id"] == str(sweep_id) and parent.info.status == "FINISHED"
    assert parent.data.params["dataset"] == "rows" and parent.data.metrics["cells"] == 16
    assert json.loads(parent.data.params["grid"]) == {"temperature": [0, 0.7]}
    assert parent.data.metrics["cost_usd"] == pytest.approx(float(table["cost_usd"].sum()))
    by_label = {c.data.tags["workbench.column"]: c for c in children}
    assert set(by_label) == set(table["column"])
    for row in table.to_dict("records"):
        child = by_label[row["column"]]
        assert child.data.params["version"] == "echo@1" and child.data.params["model"] == row["model"]
        assert child.data.params["temperature"] in ("0", "0.0", "0.7")
        assert child.data.tags["workbench.content_hash"] == version.content_hash
        numbers = {k: v for k, v in row.items() if k not in ("column", "version", "model", "grid")}
        numbers = {k: float(v) for k, v in numbers.items() if v is not None and v == v}  # NaN: not logged
        assert {"score_exact_mean", "failed", "completion_tokens", "cost_usd", "latency_p95_ms"} <= set(
            numbers
        )
        assert {k: child.data.metrics[k] for k in numbers} == pytest.approx(numbers)
        assert "rating_model_score" in child.data.metrics  # the model leaderboard has votes
    first = by_label[table["column"].iat[0]]
    outputs = json.loads(_artifact(client, first.info.run_id, "outputs.json", tmp_path))
    assert len(outputs["data"]) == int(table["n"].iat[0]) and "output" in outputs["columns"]
    messages = _artifact(client, first.info.run_id, "messages.txt", tmp_path)
    assert "{{ marker }} {{ text }}" in messages and "cell-000 row 0" in messages
    parent_files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"summary.json", "sweep_config.json", "comparisons.json", "ratings"} <= parent_files
    others = [c for label, c in by_label.items() if label != table["column"].iat[0]]
    assert all(c.data.metrics["paired_exact_diff"] == 0 for c in others)  # the echo is always right

    # Logged again: the same runs, updated in place; unchanged metrics are not sent twice.
    assert cli(["mlflow", "log-sweep", str(sweep_id), "--experiment", "sweeps", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["parent"]["run_id"] == parent.info.run_id and not again["parent"]["created"]
    assert not any(c["created"] for c in again["columns"])
    _, children2 = _runs(client, "sweeps")
    assert {c.info.run_id for c in children2} == {c.info.run_id for c in children}
    assert len(client.get_metric_history(first.info.run_id, "score_exact_mean")) == 1
    outputs2 = json.loads(_artifact(client, first.info.run_id, "outputs.json", tmp_path / "again"))
    assert len(outputs2["data"]) == len(outputs["data"])  # replaced, not appended


def test_log_sweep_redacts_keys(fake_models, client, cli, monkeypatch, tmp_path):
    from workbench import datasets

    monkeypatch.setenv("WB_SERVICE_TOKEN", SECRET)
    with session_scope() as s:
        store.save_version(s, prompt_name="echo", messages=[{"role": "user", "content": "{{ text }}"}])
        datasets.create_dataset(
            s, name="rows", table=datasets.ParsedTable(["text"], [{"text": f"my key is {SECRET}"}])
        )
    sweep_id = plan()
    run(sweep_id)
    assert cli(["mlflow", "log-sweep", str(sweep_id), "--experiment", "secrets"]) == 0
    (parent,), (child,) = _runs(client, "secrets")
    texts = [json.dumps([r.data.params, r.data.tags]) for r in (parent, child)]
    texts += [_artifact(client, child.info.run_id, p, tmp_path / p) for p in ("outputs.json", "messages.txt")]
    assert "[redacted]" in texts[2] and "[redacted]" in texts[3]
    assert not any(SECRET in t for t in texts)


def _labelled_prompt() -> None:
    """greet@1 (staging), greet@2 with a filter and params (production, and prod.v2, no alias)."""
    with session_scope() as s:
        v1, _ = store.save_version(
            s, prompt_name="greet", messages=[{"role": "user", "content": "Hello {{ name }}"}]
        )
        v2, _ = store.save_version(
            s,
            prompt_name="greet",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello {{ name | upper }}{# a comment #}"},
            ],
            params={"model": FAKE, "temperature": 0.2, "max_tokens": 64, "stop": ["\n"], "seed": 7},
            note="shout",
        )
        store.set_label(s, version_id=v1.id, label="staging")
        store.set_label(s, version_id=v2.id, label="production")
        store.set_label(s, version_id=v2.id, label="prod.v2")


def test_push_registers_versions_with_aliases_and_tags_and_pull_gives_the_same_hash(
    wb_db, client, cli, capsys, tmp_path, monkeypatch
):
    _labelled_prompt()
    with session_scope() as s:
        hashes = {v.number: v.content_hash for v in store.versions_of(s, store.get_prompt(s, "greet").id)}
    assert cli(["mlflow", "push", "greet", "--all"]) == 0
    out = capsys.readouterr().out
    assert "label not an alias: 'prod.v2'" in out and "/#/prompts/greet?promptVersion=2" in out

    prod = client.get_prompt_version_by_alias("greet", "production")
    assert int(prod.version) == 2 and set(prod.aliases) == {"production"}
    assert int(client.get_prompt_version_by_alias("greet", "staging").version) == 1
    assert prod.tags["workbench.content_hash"] == hashes[2] and prod.tags["workbench.parent"] == "greet@1"
    assert prod.tags["workbench.labels"] == "prod.v2, production"
    assert json.loads(prod.tags["workbench.evidence"])["optimizations"] == []
    assert prod.model_config["model_name"] == FAKE and prod.model_config["stop_sequences"] == ["\n"]
    # Kept as Jinja: MLflow's own format renders the filter (the marker makes it use Jinja).
    assert prod.format(name="ada")[1]["content"] == "Hello ADA"

    # Pushed again: nothing new in MLflow.
    assert cli(["mlflow", "push", "greet@2"]) == 0
    assert "already registered as MLflow prompt greet version 2" in capsys.readouterr().out
    assert len(client.search_prompt_versions("greet")) == 2

    # Pulled into the same database: recognised, nothing added.
    assert cli(["mlflow", "pull", "greet", "--alias", "production"]) == 0
    assert "already here as greet@2" in capsys.readouterr().out
    # Pulled into a fresh database: the same content hash, source mlflow, aliases as labels.
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert cli(["mlflow", "pull", "greet", "--version", "2", "--json"]) == 0
    pulled = json.loads(capsys.readouterr().out)
    assert pulled["created"] and pulled["content_hash"] == hashes[2]
    with session_scope() as s:
        v = store.resolve(s, "greet:production")
        assert v.source == "mlflow" and v.origin_source == "manual" and v.content_hash == hashes[2]
        assert v.messages[1]["content"] == "Hello {{ name | upper }}{# a comment #}"
        assert v.params["stop"] == ["\n"] and v.params["seed"] == 7


def test_pull_of_a_prompt_made_in_mlflow(wb_db, client, cli, capsys):
    client.register_prompt(
        name="made-in-mlflow",
        template="Summarise {{text}} in {{ n }} words.",
        model_config={"provider": "openai", "model_name": "gpt-4o-mini", "temperature": 0.5},
    )
    assert cli(["mlflow", "pull", "made-in-mlflow"]) == 0
    assert "as made-in-mlflow@1 (source mlflow)" in capsys.readouterr().out
    with session_scope() as s:
        v = store.resolve(s, "made-in-mlflow@1")
        assert v.messages == [{"role": "user", "content": "Summarise {{text}} in {{ n }} words."}]
        assert v.params == {"model": "openai/gpt-4o-mini", "temperature": 0.5}
        assert v.variables == ["text", "n"]


def test_pull_names_what_mlflow_does_not_have(wb_db, client, cli, capsys):
    assert cli(["mlflow", "pull", "no-such-prompt"]) == 2
    assert "MLflow has no prompt named 'no-such-prompt'" in capsys.readouterr().err
    client.register_prompt(name="one", template="Hi {{ x }}")
    assert cli(["mlflow", "pull", "one", "--alias", "gone"]) == 2
    assert "has no alias 'gone'" in capsys.readouterr().err
    assert cli(["mlflow", "pull", "one", "--version", "5"]) == 2
    assert "has no version 5 (versions 1..1)" in capsys.readouterr().err


def _counts() -> tuple[int, int]:
    from sqlmodel import func, select

    from workbench.models import Label, PromptVersion

    with session_scope() as s:
        return s.exec(select(func.count()).select_from(PromptVersion)).one(), s.exec(
            select(func.count()).select_from(Label)
        ).one()


def test_unreachable_server_is_a_clear_error_and_changes_nothing(fake_models, cli, capsys, monkeypatch):
    seed(2)
    sweep_id = plan()
    run(sweep_id)
    _labelled_prompt()
    before = _counts()
    dead = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    for argv in (
        ["mlflow", "pull", "greet"],
        ["mlflow", "push", "greet", "--all"],
        ["mlflow", "log-sweep", str(sweep_id), "--tracking-uri", dead],
    ):
        assert cli(argv) == 1, argv
        err = capsys.readouterr().err
        assert f"Cannot reach the MLflow tracking server at {dead}" in err and "nothing was changed" in err
    assert _counts() == before


def test_no_tracking_uri_is_a_clear_error(wb_db, cli, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert cli(["mlflow", "pull", "greet"]) == 2
    assert "MLFLOW_TRACKING_URI is not set" in capsys.readouterr().err


def test_credentials_in_the_uri_stay_out_of_messages(wb_db, cli, capsys):
    dead = f"http://alice:hunter2secret@127.0.0.1:{_free_port()}"
    assert cli(["mlflow", "pull", "greet", "--tracking-uri", dead]) == 1
    err = capsys.readouterr().err
    assert "hunter2secret" not in err and "alice" not in err and "http://127.0.0.1:" in err


def test_help_does_not_import_mlflow():
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, workbench.cli as c\n"
            "c.GROUPS = tuple(dict.fromkeys((*c.GROUPS, 'mlflow')))\n"
            "for verb in ([], ['log-sweep'], ['pull']):\n"
            "    try:\n"
            "        c.main(['mlflow', *verb, '--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in ('mlflow', 'sqlmodel', 'pandas') if m in sys.modules), file=sys.stderr)",
        ],
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "log-sweep" in probe.stdout and "--tracking-uri" in probe.stdout
    assert probe.stderr.strip().splitlines()[-1] == "[]"


def _send_sweep_page(sweep_id: int) -> None:
    from workbench.ui.mlflow import send_sweep_button

    send_sweep_button(sweep_id)


def test_send_buttons_write_to_mlflow_and_link_there(fake_models, client, mlflow_server):
    from streamlit.testing.v1 import AppTest

    seed(2)
    sweep_id = plan()
    run(sweep_id)
    at = AppTest.from_function(_send_sweep_page, args=(sweep_id,), default_timeout=60).run()
    at.button(key=f"mlflow.sweep.{sweep_id}.send").click().run()
    assert not at.exception and not at.error
    assert "Logged sweep" in at.success[0].value and "1 column runs" in at.success[0].value
    (link,) = at.get("link_button")
    assert link.proto.url.startswith(f"{mlflow_server}/#/experiments/")
    assert len(_runs(client, "prompt-workbench")[1]) == 1
    at.button(key=f"mlflow.sweep.{sweep_id}.send").click().run()  # again: updated, not duplicated
    assert "Updated sweep" in at.success[0].value and len(_runs(client, "prompt-workbench")[1]) == 1

    at = AppTest.from_file(str(config.PROJECT_ROOT / "pages/1_Prompts.py"), default_timeout=60).run()
    with session_scope() as s:
        version = store.resolve(s, "echo")
    at.button(key=f"mlflow.push.{version.id}.send").click().run()
    assert not at.exception and not at.error
    assert at.success[-1].value.startswith("Registered echo@1 as MLflow prompt echo version 1")
    assert at.get("link_button")[0].proto.url == f"{mlflow_server}/#/prompts/echo?promptVersion=1"
    assert client.get_prompt_version("echo", 1).tags["workbench.content_hash"] == version.content_hash


def test_response_format_tools_and_placeholders_survive_push_and_pull(
    wb_db, client, cli, capsys, tmp_path, monkeypatch
):
    import inspect

    if "tools" not in inspect.signature(store.save_version).parameters:
        pytest.skip("this workbench has no structured output yet")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tool = {
        "name": "lookup",
        "description": "Find a city",
        "parameters": {"type": "object", "properties": {}},
    }
    with session_scope() as s:
        version, _ = store.save_version(
            s,
            prompt_name="tooling",
            messages=[
                {"role": "system", "content": "Answer as JSON about {{ topic }}."},
                {"role": "placeholder", "content": "history"},
            ],
            response_format=schema,
            tools=[tool],
            tool_choice="auto",
        )
        original = version.content_hash
    assert cli(["mlflow", "push", "tooling"]) == 0
    assert "registered as MLflow prompt tooling version 1" in capsys.readouterr().out
    registered = client.get_prompt_version("tooling", 1)
    assert registered.response_format == version.response_format
    assert json.loads(registered.tags["workbench.tools"]) == version.tools
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert cli(["mlflow", "pull", "tooling", "--json"]) == 0
    pulled = json.loads(capsys.readouterr().out)
    assert pulled["created"] and pulled["content_hash"] == original
