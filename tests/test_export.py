"""Export of versions (with evidence and winners), runs and ratings, as schema-valid JSON and safe CSV."""

import io
import json

import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from tests.sweep_helpers import FAKE, plan, run, seed
from tests.test_gate import wb
from workbench.db import migrate, session_scope
from workbench.errors import NotFoundError, ValidationError
from workbench.models import Optimization
from workbench.prompts import store
from workbench.rating import pairs
from workbench.release import export


def validate(doc: dict) -> None:
    errors = list(Draft202012Validator(export.load_schema()).iter_errors(doc))
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def sweep_two_versions() -> int:
    """echo@1 hits every expected answer, echo@2 misses all; returns the scored, done sweep."""
    with session_scope() as s:
        store.save_version(
            s, prompt_name="echo", messages=[{"role": "user", "content": "X {{ marker }} {{ text }}"}]
        )
    sweep_id = plan(prompts=["echo@1", "echo@2"], scoring={"metrics": ["exact"]})
    run(sweep_id)
    return sweep_id


def vote_for(sweep_id: int, entry: str, *, rater: str = "ann") -> int:
    """Vote for `entry` on every version pair of the sweep; returns the number of votes."""
    with session_scope() as s:
        candidates = pairs.candidate_pairs(s, sweep_id=sweep_id, by="version")
        for p in candidates:
            side = "left" if p.left_entry == entry else "right"
            pairs.record_vote(s, pair=p, verdict_side=side, rater=rater)
    return len(candidates)


@pytest.fixture
def fake_env(fake_models):
    fake_server = fake_models
    seed(4)
    return fake_server


@pytest.fixture
def library():
    """Two prompts with lineage, a label, a duplicated prompt and an awkward note (no sweeps)."""
    migrate()
    with session_scope() as s:
        v1, _ = store.save_version(
            s, prompt_name="greet", messages=[{"role": "user", "content": "Hi {{ name }}"}], note="=1+1"
        )
        v2, _ = store.save_version(
            s,
            prompt_name="greet",
            messages=[
                {"role": "system", "content": "-be brief"},
                {"role": "user", "content": "Hi {{ name }}"},
            ],
            params={"temperature": 0.2, "max_tokens": 50},
        )
        store.set_label(s, version_id=v2.id, label="production")
        store.set_label(s, version_id=v1.id, label="old")
        store.duplicate_prompt(s, source_name="greet", new_name="another")


def test_json_export_of_all_versions_is_schema_valid_and_lossless(library):
    with session_scope() as s:
        doc = json.loads(export.export_versions(s, fmt="json"))
    validate(doc)
    assert doc["schema_version"] == 2 and doc["workbench_version"]
    assert [(v["prompt"], v["version"]) for v in doc["versions"]] == [
        ("another", 1),
        ("greet", 1),
        ("greet", 2),
    ]
    g2 = doc["versions"][2]
    assert g2["messages"][0] == {"role": "system", "content": "-be brief"}
    assert g2["params"] == {"temperature": 0.2, "max_tokens": 50} and g2["variables"] == ["name"]
    assert g2["labels"] == ["production"] and g2["source"] == "manual"
    assert g2["parent"] == {
        "prompt": "greet",
        "version": 1,
        "content_hash": doc["versions"][1]["content_hash"],
    }
    assert doc["versions"][0]["parent"]["prompt"] == "greet"  # lineage across prompts survives
    assert g2["evidence"] == {"winner": None, "sweep": None, "leaderboard": None, "optimizations": []}


def test_filters_by_prompt_reference_and_label(library):
    with session_scope() as s:
        pick = export.versions_document(s, selection=export.Selection(prompts=["greet"]))
        one = export.versions_document(s, selection=export.Selection(prompts=["greet@1"]))
        labelled = export.versions_document(s, selection=export.Selection(label="production"))
        both = export.versions_document(
            s, selection=export.Selection(prompts=["another"], label="production")
        )
        with pytest.raises(NotFoundError, match="label 'gold'"):
            export.versions_document(s, selection=export.Selection(label="gold"))
    assert [v["version"] for v in pick["versions"]] == [1, 2]
    assert [(v["prompt"], v["version"]) for v in one["versions"]] == [("greet", 1)]
    assert [(v["prompt"], v["version"]) for v in labelled["versions"]] == [("greet", 2)]
    assert both["versions"] == [] and labelled["selection"] == {"label": "production"}


def test_csv_has_one_row_per_version_and_no_live_formulas(library):
    with session_scope() as s:
        text = export.export_versions(s, fmt="csv")
    df = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert len(df) == 3 and list(df["prompt"]) == ["another", "greet", "greet"]
    g1 = df.iloc[1]
    assert g1["note"] == "'=1+1"  # neutralised
    assert json.loads(df.iloc[2]["messages"])[0]["content"] == "-be brief"
    assert json.loads(df.iloc[2]["params"]) == {"max_tokens": 50, "temperature": 0.2}
    for column in df.columns:
        for cell in df[column].astype(str):
            live = cell[:1] in ("=", "+", "@", "\t", "\r") or (cell[:1] == "-" and not _number(cell))
            assert not live, cell


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_empty_database_gives_header_only_csv_and_empty_json():
    migrate()
    with session_scope() as s:
        assert export.export_versions(s, fmt="csv").startswith("prompt,version,labels")
        doc = json.loads(export.export_versions(s, fmt="json"))
        with pytest.raises(ValidationError, match="csv or json"):
            export.export_versions(s, fmt="xlsx")
    validate(doc)
    assert doc["versions"] == []


def test_winner_by_mean_score_carries_sweep_evidence(fake_env):
    sweep_id = sweep_two_versions()
    with session_scope() as s:
        doc = export.versions_document(s, selection=export.Selection(winners=sweep_id))
    validate(doc)
    # On 4 rows, all right against all wrong is no significant difference (exact McNemar p = 0.125):
    # echo@2 is a tied winner, with that test as its evidence.
    rec, tied = doc["versions"]
    assert (rec["prompt"], rec["version"]) == ("echo", 1) and tied["version"] == 2
    ev = rec["evidence"]
    rule = {k: ev["winner"][k] for k in ("sweep_id", "rule", "metric", "value", "best", "tied")}
    assert rule == {
        "sweep_id": sweep_id,
        "rule": "mean_score",
        "metric": "exact",
        "value": 1.0,
        "best": True,
        "tied": True,
    }
    test = tied["evidence"]["winner"]["columns"][0]["comparison"]
    assert (test["p_value"], test["a_only"], test["b_only"], test["n"]) == (0.125, 4, 0, 4)
    assert ev["sweep"]["overall"]["scores"] == {"exact": 1.0} and ev["sweep"]["overall"]["n"] == 4
    [model] = ev["sweep"]["per_model"]
    assert model["model"] == FAKE and model["cost_usd"] > 0 and model["latency_p50_ms"] > 0
    assert ev["sweep"]["dataset"] == "rows" and ev["leaderboard"] is None


def test_winner_by_leaderboard_when_the_sweep_is_rated(fake_env):
    sweep_id = sweep_two_versions()
    assert vote_for(sweep_id, "echo@2") == 4  # people prefer the version that scores worse
    with session_scope() as s:
        doc = export.versions_document(s, selection=export.Selection(winners=sweep_id))
    validate(doc)
    [rec] = doc["versions"]
    assert rec["version"] == 2
    ev = rec["evidence"]
    assert ev["winner"]["rule"] == "leaderboard" and ev["winner"]["rank"] == 1
    board = ev["leaderboard"]
    assert board["position"] == 1 and board["entries"] == 2 and board["votes"] == 4
    assert board["ci_low"] <= board["score"] <= board["ci_high"]
    assert ev["sweep"]["overall"]["scores"] == {"exact": 0.0}


def test_a_sweep_without_scores_or_ratings_has_no_winner(fake_env):
    sweep_id = plan()
    run(sweep_id)
    with session_scope() as s, pytest.raises(ValidationError, match="no winner"):
        export.versions_document(s, selection=export.Selection(winners=sweep_id))


def test_optimization_scores_are_evidence(library):
    with session_scope() as s:
        v1, v2 = store.resolve(s, "greet@1"), store.resolve(s, "greet@2")
        s.add(
            Optimization(
                input_version_id=v1.id,
                output_version_id=v2.id,
                optimizer="MIPROv2",
                metric="exact",
                task_model="local/smollm2-135m-instruct",
                baseline_score=0.4,
                final_score=0.7,
                status="done",
            )
        )
    with session_scope() as s:
        doc = export.versions_document(s, selection=export.Selection(prompts=["greet@2"]))
        row = export.version_row(doc["versions"][0])
    validate(doc)
    [opt] = doc["versions"][0]["evidence"]["optimizations"]
    assert opt["final_score"] == 0.7 and opt["input_version"]["version"] == 1
    assert row["optimizer"] == "MIPROv2" and row["optimization_final_score"] == 0.7


def test_runs_and_ratings_one_row_per_cell_and_vote(fake_env):
    sweep_id = sweep_two_versions()
    votes = vote_for(sweep_id, "echo@1")
    with session_scope() as s:
        runs_doc = json.loads(export.export_runs(s, sweep_id=sweep_id, fmt="json"))
        runs_csv = pd.read_csv(io.StringIO(export.export_runs(s, sweep_id=sweep_id, fmt="csv")))
        ratings_doc = json.loads(export.export_ratings(s, sweep_id=sweep_id, fmt="json"))
        ratings_csv = pd.read_csv(io.StringIO(export.export_ratings(s, sweep_id=sweep_id, fmt="csv")))
    validate(runs_doc)
    validate(ratings_doc)
    assert len(runs_doc["runs"]) == len(runs_csv) == 8
    first = runs_doc["runs"][0]
    assert first["variables"] == {"marker": "cell-000", "text": "row 0"} and first["row"] == 1
    assert first["expected"] == "echo: cell-000 row 0" and first["score_exact"] == 1.0
    assert sorted(runs_csv["score_exact"]) == [0.0] * 4 + [1.0] * 4
    assert [v["version"] for v in runs_doc["versions"]] == [1, 2]  # the file is self-contained
    assert len(ratings_doc["ratings"]) == len(ratings_csv) == votes
    assert set(ratings_csv["verdict"]) <= {"a", "b"} and ratings_doc["sweep"]["id"] == sweep_id


def test_cli_writes_each_format(fake_env, tmp_path, capsys):
    sweep_id = sweep_two_versions()
    vote_for(sweep_id, "echo@1")
    for args in (
        ["versions", "--format", "json"],
        ["versions", "--format", "csv", "--winners", str(sweep_id)],
        ["versions", "--format", "json", "--winners", str(sweep_id)],
        ["versions", "--format", "csv", "--prompt", "echo@2"],
        ["runs", str(sweep_id), "--format", "csv"],
        ["runs", str(sweep_id), "--format", "json"],
        ["ratings", str(sweep_id), "--format", "csv"],
        ["ratings", str(sweep_id), "--format", "json"],
    ):
        out = tmp_path / f"{args[0]}-{len(list(tmp_path.iterdir()))}.{args[args.index('--format') + 1]}"
        assert wb("export", *args, "--out", str(out)) == 0, args
        assert out.stat().st_size > 0
        if out.suffix == ".json":
            validate(json.loads(out.read_text()))
    assert "Wrote runs of sweep" in capsys.readouterr().err
    assert wb("export", "runs", "999", "--format", "csv") == 2
    assert "No sweep with id 999" in capsys.readouterr().err


def test_every_export_import_gate_option_has_help():
    import argparse

    from workbench.cli.release import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())

    def walk(p, path):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{path} {choice.dest} has no help"
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.dest != "help":
                assert action.help, f"{path} {action.option_strings or action.dest} has no help"

    walk(parser, "workbench")
