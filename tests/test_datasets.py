"""Dataset import (all or nothing, with clear errors), editing and export."""

import json

import pytest

from workbench import datasets
from workbench.errors import ImportFileError, ValidationError


def test_csv_import_with_expected_column(session):
    table = datasets.parse_file(b'question,answer\nWhat is 2+2?,4\n"Hello, world",greeting\n', "qa.csv")
    ds = datasets.create_dataset(session, name="qa", table=table, expected_column="answer")
    rows = datasets.examples_of(session, ds.id)
    assert [(r.inputs, r.expected) for r in rows] == [
        ({"question": "What is 2+2?"}, "4"),
        ({"question": "Hello, world"}, "greeting"),
    ]
    assert ds.columns == ["question"]
    assert datasets.row_counts(session)[ds.id] == (2, 2)


def test_json_and_jsonl_import_keep_structured_values(session):
    records = [{"text": "a", "meta": {"k": 1}}, {"text": "b", "expected": "B"}]
    table = datasets.parse_file(json.dumps(records).encode(), "rows.json")
    assert table.columns == ["text", "meta", "expected"]
    jsonl = "\n".join(json.dumps(r) for r in records).encode()
    assert datasets.parse_file(jsonl, "rows.jsonl").rows == table.rows
    ds = datasets.create_dataset(session, name="js", table=table, expected_column="expected")
    rows = datasets.examples_of(session, ds.id)
    assert rows[0].inputs == {"text": "a", "meta": {"k": 1}} and rows[0].expected is None
    assert rows[1].expected == "B"


def test_column_mapping_renames_and_drops(session):
    table = datasets.parse_csv("Review Text,stars,gold\nnice,5,positive\n")
    ds = datasets.create_dataset(
        session, name="m", table=table, expected_column="gold", mapping={"Review Text": "review", "stars": ""}
    )
    assert ds.columns == ["review"]
    assert datasets.examples_of(session, ds.id)[0].inputs == {"review": "nice"}


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.csv", "is empty"),
        (b"a,b\n", "header.csv", "no rows"),
        (b"a,b\n1,2\n3\n", "ragged.csv", "line 3: 1 values but the header has 2 columns"),
        (b"a,a\n1,2\n", "dupes.csv", "duplicate column names: a"),
        (b"a,\n1,2\n", "noname.csv", "column 2 has no name"),
        ("a,b\nné,2\n".encode("latin-1"), "latin.csv", "not UTF-8"),
        (b"[1, 2]", "list.json", "row 1 is not an object"),
        (b'{"a": ', "bad.json", "not valid JSON"),
        (b'{"a": 1}\nnot json\n', "bad.jsonl", "line 2 is not valid JSON"),
        (b"a\n1\n", "data.xlsx", "use a .csv, .json or .jsonl"),
    ],
)
def test_bad_files_get_clear_errors(data, name, message):
    with pytest.raises(ImportFileError, match=message):
        datasets.parse_file(data, name)


def test_size_limit(monkeypatch):
    monkeypatch.setattr(datasets, "MAX_IMPORT_BYTES", 100)
    with pytest.raises(ImportFileError, match="the limit is"):
        datasets.parse_file(b"a\n" + b"x\n" * 100, "big.csv")


def test_failed_import_leaves_nothing_behind(session):
    table = datasets.parse_csv("a,b\n1,2\n")
    with pytest.raises(ValidationError, match="not in the file"):
        datasets.create_dataset(session, name="half", table=table, expected_column="missing")
    assert datasets.get_dataset(session, "half") is None
    datasets.create_dataset(session, name="dup", table=table)
    with pytest.raises(ValidationError, match="already exists"):
        datasets.create_dataset(session, name="dup", table=table)


def test_replace_rows_updates_in_place_and_adds(session):
    ds = datasets.create_dataset(
        session, name="e", table=datasets.parse_csv("q,expected\nx,1\ny,2\n"), expected_column="expected"
    )
    first, second = datasets.examples_of(session, ds.id)
    datasets.replace_rows(
        session,
        dataset_id=ds.id,
        rows=[{"_id": second.id, "q": "y2", "expected": "22"}, {"q": "z", "expected": ""}],
    )
    rows = datasets.examples_of(session, ds.id)
    assert [(r.id == second.id, r.inputs, r.expected) for r in rows] == [
        (True, {"q": "y2"}, "22"),
        (False, {"q": "z"}, None),
    ]
    assert first.id not in {r.id for r in rows}


def test_export_neutralises_formulas(session):
    rows = [{"q": '=HYPERLINK("http://x")', "expected": "+1"}, {"q": "safe", "expected": "-"}]
    text = datasets.to_csv(rows)
    assert "'=HYPERLINK" in text and "'+1" in text and "safe" in text


def test_rows_with_sweep_results_cannot_be_rewritten_but_can_be_copied(session):
    from workbench.models import Run, Sweep
    from workbench.prompts import store

    ds = datasets.create_dataset(
        session, name="used", table=datasets.parse_csv("q,expected\nx,1\ny,2\n"), expected_column="expected"
    )
    first, second = datasets.examples_of(session, ds.id)
    version, _ = store.save_version(
        session, prompt_name="p", messages=[{"role": "user", "content": "{{ q }}"}]
    )
    sweep = Sweep(name="s")
    session.add(sweep)
    session.flush()
    session.add(Run(sweep_id=sweep.id, version_id=version.id, model="m", example_id=first.id, cache_key="k"))
    session.flush()
    edited = [
        {"_id": first.id, "q": "x CHANGED", "expected": "1"},
        {"_id": second.id, "q": "y", "expected": "2"},
    ]
    with pytest.raises(ValidationError, match="Rows 1 have sweep results"):
        datasets.replace_rows(session, dataset_id=ds.id, rows=edited)
    with pytest.raises(ValidationError, match="Rows 1"):
        datasets.replace_rows(session, dataset_id=ds.id, rows=[edited[1]])  # deleting row 1
    # Unused rows stay editable.
    datasets.replace_rows(
        session,
        dataset_id=ds.id,
        rows=[{"_id": first.id, "q": "x", "expected": "1"}, {"_id": second.id, "q": "y2", "expected": "22"}],
    )
    copy = datasets.copy_dataset(session, name="used-v2", rows=edited)
    assert [(e.inputs, e.expected) for e in datasets.examples_of(session, copy.id)] == [
        ({"q": "x CHANGED"}, "1"),
        ({"q": "y"}, "2"),
    ]
    assert copy.columns == ["q"]


def test_datasets_that_cover_the_variables_come_first(session):
    for name, columns in (("a", ["text"]), ("b", ["country", "text"]), ("c", ["country"]), ("d", ["x"])):
        table = datasets.ParsedTable(columns, [dict.fromkeys(columns, "v")])
        datasets.create_dataset(session, name=name, table=table)
    fits = datasets.fit_for_variables(session, ["country", "text"])
    assert [(f.name, f.missing, f.covers) for f in fits] == [
        ("b", (), True),
        ("a", ("country",), False),
        ("c", ("text",), False),
        ("d", ("country", "text"), False),
    ]
    assert all(f.covers for f in datasets.fit_for_variables(session, []))
