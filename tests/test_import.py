"""Import of a JSON export: all or nothing, no duplicates, conflicts reported, round trip exact."""

import copy
import json

import pytest
from sqlmodel import func, select

from tests.test_gate import wb
from workbench.db import migrate, session_scope
from workbench.models import Label, LabelEvent, Prompt, PromptVersion
from workbench.prompts import store
from workbench.release import export
from workbench.release.imports import ImportSchemaError, import_file, json_path


def build_library() -> None:
    with session_scope() as s:
        store.save_version(
            s, prompt_name="greet", messages=[{"role": "user", "content": "Hi {{ name }}"}], note="first"
        )
        v2, _ = store.save_version(
            s,
            prompt_name="greet",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi {{ name }}"},
            ],
            params={"temperature": 0.2},
        )
        store.set_label(s, version_id=v2.id, label="production")
        store.duplicate_prompt(s, source_name="greet", new_name="a copy")
        store.save_version(
            s, prompt_name="summarize", messages=[{"role": "user", "content": "Summarize: {{ text }}"}]
        )


def export_doc(**selection) -> dict:
    with session_scope() as s:
        return json.loads(export.export_versions(s, selection=export.Selection(**selection), fmt="json"))


def import_doc(doc, **kwargs):
    with session_scope() as s:
        return import_file(s, json.dumps(doc), **kwargs)


def snapshot() -> tuple:
    """Every row an import could touch."""
    with session_scope() as s:
        return (
            [(p.name, p.description) for p in s.exec(select(Prompt).order_by(Prompt.id))],
            [
                (v.prompt_id, v.number, v.content_hash, v.original_hash, v.parent_id, v.source)
                for v in s.exec(select(PromptVersion).order_by(PromptVersion.id))
            ],
            [(lb.prompt_id, lb.name, lb.version_id) for lb in s.exec(select(Label).order_by(Label.id))],
            s.exec(select(func.count()).select_from(LabelEvent)).one(),
        )


def use_database(monkeypatch, tmp_path, name: str) -> None:
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", f"sqlite:///{tmp_path / name}")
    migrate()


def normalised(doc: dict) -> str:
    """The document without what may differ: timestamps."""
    doc = copy.deepcopy(doc)
    doc.pop("exported_at")
    for v in doc["versions"]:
        v.pop("created_at")
        v.pop("imported_at")
    return json.dumps(doc, indent=2, sort_keys=True)


def test_round_trip_into_an_empty_database_gives_the_same_versions(tmp_path, monkeypatch):
    migrate()
    build_library()
    first = export_doc()
    use_database(monkeypatch, tmp_path, "empty.db")
    result = import_doc(first)
    assert len(result.added) == 4 and result.conflicts == [] and len(result.created_prompts) == 3
    second = export_doc()
    assert normalised(second) == normalised(first)
    # Provenance survives: the export says where the content came from, the database says "import".
    assert [v["source"] for v in second["versions"]] == [v["source"] for v in first["versions"]]
    assert all(v["imported_at"] for v in second["versions"]) and not any(
        v["imported_at"] for v in first["versions"]
    )
    with session_scope() as s:
        assert {v.source for v in s.exec(select(PromptVersion))} == {"import"}
    assert [v["original_hash"] for v in second["versions"]] == [v["content_hash"] for v in first["versions"]]


def test_identical_content_is_recognised_not_duplicated(tmp_path):
    migrate()
    build_library()
    doc = export_doc()
    before = snapshot()
    result = import_doc(doc)
    assert result.added == [] and len(result.unchanged) == 4 and result.conflicts == []
    assert snapshot() == before


def test_new_versions_of_an_existing_prompt_continue_its_history(tmp_path, monkeypatch):
    migrate()
    build_library()
    doc = export_doc(prompts=["greet"])
    use_database(monkeypatch, tmp_path, "other.db")
    import_doc({**doc, "versions": doc["versions"][:1]})  # only greet@1 here
    result = import_doc(doc)
    assert [(a["file_version"], a["number"]) for a in result.added] == [(2, 2)] and result.conflicts == []
    with session_scope() as s:
        v2 = store.resolve(s, "greet@2")
        assert v2.source == "import" and v2.parent_id == store.resolve(s, "greet@1").id
        assert store.resolve(s, "greet:production").id == v2.id


def test_conflicting_history_is_reported_and_nothing_overwritten(tmp_path, monkeypatch):
    migrate()
    build_library()
    doc = export_doc(prompts=["greet"])
    use_database(monkeypatch, tmp_path, "theirs.db")
    with session_scope() as s:  # here greet has its own version 1 and production label
        mine, _ = store.save_version(s, prompt_name="greet", messages=[{"role": "user", "content": "Yo"}])
        store.set_label(s, version_id=mine.id, label="production")
    result = import_doc(doc)
    assert [(c["file_version"], c["db_version"], c["imported_as"]) for c in result.conflicts] == [(1, 1, 2)]
    assert "kept both" in result.conflicts[0]["message"]
    assert [(a["file_version"], a["number"]) for a in result.added] == [(1, 2), (2, 3)]
    [kept] = result.labels_kept
    assert kept["label"] == "production" and kept["number"] == 1 and "stays at @1" in kept["message"]
    assert "python -m" not in kept["message"]  # shown on the Export page too: no command to type
    with session_scope() as s:
        v1 = store.resolve(s, "greet@1")
        assert v1.messages == [{"role": "user", "content": "Yo"}] and v1.source == "manual"
        assert store.resolve(s, "greet:production").id == v1.id
        v3 = store.resolve(s, "greet@3")
        assert v3.parent_id == store.resolve(s, "greet@2").id  # mapped to the imported parent


def test_dry_run_reports_and_writes_nothing(tmp_path, monkeypatch):
    migrate()
    build_library()
    doc = export_doc()
    use_database(monkeypatch, tmp_path, "dry.db")
    before = snapshot()
    result = import_doc(doc, dry_run=True)
    assert len(result.added) == 4 and result.dry_run and "would add" in result.lines()[0]
    assert snapshot() == before


def _bad(doc: dict, mutate) -> dict:
    doc = copy.deepcopy(doc)
    mutate(doc)
    return doc


def _msg(i: int, **change):
    return lambda d: d["versions"][i]["messages"][0].update(**change)


def _ver(i: int, **change):
    return lambda d: d["versions"][i].update(**change)


@pytest.mark.parametrize(
    "mutate, path, message",
    [
        (_msg(3, role="bot"), "$.versions[3].messages[0].role", "'bot' is not one of"),
        (lambda d: d.update(schema_version=3), "$.schema_version", "reads schema_version 1 or 2"),
        (lambda d: d.pop("schema_version"), "$.schema_version", "missing"),
        (lambda d: d["versions"][2].pop("content_hash"), "$.versions[2]", "'content_hash' is a required"),
        (_ver(1, content_hash="abc"), "$.versions[1].content_hash", "does not match"),
        (_msg(3, content="{% if %}"), "$.versions[3].messages[0].content", "Template error"),
        (_ver(3, params={"temperature": 9}), "$.versions[3].params", "between 0 and 2"),
        (_ver(3, prompt="a@b"), "$.versions[3].prompt", "not allowed"),
        (_ver(3, prompt="greet", version=2), "$.versions[3].version", "appears twice"),
        (lambda d: d.update(extra=1), "$", "Additional properties"),
    ],
)
def test_a_bad_file_is_rejected_whole_with_the_problem_located(tmp_path, monkeypatch, mutate, path, message):
    migrate()
    build_library()
    doc = _bad(export_doc(), mutate)
    use_database(monkeypatch, tmp_path, "target.db")
    before = snapshot()
    with pytest.raises(ImportSchemaError) as info:
        import_doc(doc)
    assert info.value.path == path and message in str(info.value)
    assert "nothing was changed" in str(info.value)
    assert snapshot() == before


OLD_WINNER = {"sweep_id": 3, "rule": "mean_score", "metric": "exact", "value": 1.0}  # before tied winners
COMPARISON = {
    "n": 12,
    "diff": -0.083,
    "ci_low": -0.35,
    "ci_high": 0.18,
    "p_value": 1.0,
    "test": "exact McNemar",
}


def _winner(rule: dict):
    return lambda d: d["versions"][0]["evidence"].update(winner=rule)


def test_winner_evidence_from_before_and_after_tied_winners_imports(tmp_path, monkeypatch):
    migrate()
    build_library()
    doc = export_doc()
    tied = {
        **OLD_WINNER,
        "best": False,
        "tied": True,
        "best_column": "greet@2 | m",
        "columns": [{"column": "greet@1 | m", "best": False, "comparison": COMPARISON}],
    }
    use_database(monkeypatch, tmp_path, "winners.db")
    for rule in (OLD_WINNER, tied):
        assert len(import_doc(_bad(doc, _winner(rule)), dry_run=True).added) == 4


def test_a_winner_comparison_is_schema_checked(tmp_path, monkeypatch):
    migrate()
    build_library()
    columns = [{"column": "greet@1 | m", "best": False, "comparison": {**COMPARISON, "p_value": 2}}]
    doc = _bad(export_doc(), _winner({**OLD_WINNER, "columns": columns}))
    with pytest.raises(ImportSchemaError) as info:
        import_doc(doc)
    assert info.value.path == "$.versions[0].evidence.winner.columns[0].comparison.p_value"


def test_not_json_and_not_an_export(tmp_path):
    migrate()
    with session_scope() as s:
        with pytest.raises(ImportSchemaError, match=r"not valid JSON: .* line 1"):
            import_file(s, b"{nope", filename="x.json")
        with pytest.raises(ImportSchemaError, match="JSON object"):
            import_file(s, b"[1, 2]")
        with pytest.raises(ImportSchemaError, match="not UTF-8"):
            import_file(s, b"\xff\xfe{")
    assert json_path(["versions", 3, "messages", 0, "role"]) == "$.versions[3].messages[0].role"
    assert json_path(["odd key"]) == '$["odd key"]'


def test_cli_import_dry_run_then_import(tmp_path, monkeypatch, capsys):
    migrate()
    build_library()
    path = tmp_path / "versions.json"
    assert wb("export", "versions", "--format", "json", "--out", str(path)) == 0
    use_database(monkeypatch, tmp_path, "cli.db")
    assert wb("import", str(path), "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.startswith("Dry run: nothing was written.") and "4 versions would add" in out
    assert snapshot()[1] == []
    assert wb("import", str(path), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["added"]) == 4 and report["created_prompts"] == ["a copy", "greet", "summarize"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1}))
    assert wb("import", str(bad)) == 2
    assert "at $: 'exported_at' is a required property" in capsys.readouterr().err
    assert wb("import", str(tmp_path / "missing.json")) == 2


def test_import_in_one_transaction_on_each_backend(session):
    """Dry run (a savepoint rolled back), a failing import, then the real one, in one session."""
    store.save_version(session, prompt_name="greet", messages=[{"role": "user", "content": "Hi {{ name }}"}])
    doc = json.loads(export.to_json(export.versions_document(session)))
    doc["versions"][0]["prompt"] = "hello"
    doc["versions"].append(
        {**doc["versions"][0], "version": 2, "messages": [{"role": "user", "content": "Yo"}]}
    )
    import_file(session, json.dumps(doc), dry_run=True)
    assert store.get_prompt(session, "hello") is None
    broken = copy.deepcopy(doc)
    broken["versions"][1]["messages"][0]["content"] = "{{ oops"
    with pytest.raises(ImportSchemaError, match=r"\$\.versions\[1\]\.messages\[0\]\.content"):
        import_file(session, json.dumps(broken))
    assert store.get_prompt(session, "hello") is None
    result = import_file(session, json.dumps(doc))
    assert [a["number"] for a in result.added] == [1, 2]
    hello = store.get_prompt(session, "hello")
    assert [v.source for v in store.versions_of(session, hello.id)] == ["import", "import"]


# A file written by the workbench before schema version 2 (no response formats, tools or
# placeholders): it still imports, with the hash it was exported with.
V1_EXPORT = {
    "schema_version": 1,
    "exported_at": "2026-11-20T10:00:00Z",
    "workbench_version": "0.1.0",
    "selection": {},
    "versions": [
        {
            "prompt": "qa",
            "prompt_description": "",
            "version": 1,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "{{ question }}"},
            ],
            "params": {"temperature": 0.0},
            "variables": ["question"],
            "content_hash": "e6727fcc8671a454288810253e6ad79bd98bd2accf41bb62eca10bf64937c3a3",
            "original_hash": "e6727fcc8671a454288810253e6ad79bd98bd2accf41bb62eca10bf64937c3a3",
            "labels": ["production"],
            "parent": None,
            "source": "manual",
            "note": "",
            "created_at": "2026-11-19T09:00:00Z",
            "imported_at": None,
            "evidence": {"winner": None, "sweep": None, "leaderboard": None, "optimizations": []},
        }
    ],
}


def test_an_old_schema_version_1_export_still_imports():
    migrate()
    result = import_doc(V1_EXPORT)
    assert [a["number"] for a in result.added] == [1] and result.warnings == []
    with session_scope() as s:
        v = store.resolve(s, "qa:production")
        assert v.content_hash == V1_EXPORT["versions"][0]["content_hash"] and v.response_format is None
    again = export_doc()
    assert again["schema_version"] == 2 and again["versions"][0]["tools"] is None
    # A version 1 file is read by the version 1 schema: a v2-only field there is refused.
    bad = _bad(V1_EXPORT, _ver(0, tools=[{"type": "function", "function": {"name": "f"}}]))
    with pytest.raises(ImportSchemaError, match="Additional properties"):
        import_doc(bad)


def test_structured_versions_and_placeholders_round_trip(tmp_path, monkeypatch):
    migrate()
    with session_scope() as s:
        store.save_version(
            s,
            prompt_name="agent",
            messages=[{"role": "system", "content": "Help."}, {"placeholder": "history"}],
            response_format={"type": "object", "properties": {"city": {"type": "string"}}},
            tools=[{"name": "get_weather", "parameters": {"type": "object", "properties": {}}}],
            tool_choice="get_weather",
        )
    first = export_doc()
    record = first["versions"][0]
    assert record["messages"][1] == {"role": "placeholder", "content": "history"}
    assert record["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    use_database(monkeypatch, tmp_path, "structured.db")
    result = import_doc(first)
    assert len(result.added) == 1 and result.warnings == []
    assert normalised(export_doc()) == normalised(first)
    with session_scope() as s:
        assert store.resolve(s, "agent").variables == ["history"]


@pytest.mark.parametrize(
    "mutate, path, message",
    [
        (
            _ver(0, tools=[{"type": "function", "function": {"name": "bad name"}}]),
            "$.versions[0].tools[0].function.name",
            "letters, digits",
        ),
        (_ver(0, tool_choice="auto"), "$.versions[0].tool_choice", "needs tools"),
        (
            _ver(0, response_format={"type": "json_schema", "json_schema": {"schema": {"type": "nope"}}}),
            "$.versions[0].response_format.json_schema.schema.type",
            "not a valid JSON Schema",
        ),
        (_msg(0, role="placeholder", content="2 bad"), "$.versions[0].messages[0].content", "plain name"),
    ],
)
def test_a_bad_structured_setting_is_located(mutate, path, message):
    migrate()
    build_library()
    doc = _bad(export_doc(), mutate)
    with pytest.raises(ImportSchemaError) as info:
        import_doc(doc)
    assert info.value.path == path and message in str(info.value)
