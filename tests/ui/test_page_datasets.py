"""The Datasets page: import with preview and mapping, clear errors, browse, save, export."""

import pytest

from tests.ui.conftest import page
from workbench import datasets
from workbench.db import session_scope


def upload(at, name: str, data: bytes):
    at.file_uploader(key="datasets.upload").set_value((name, data, "text/csv")).run()
    return at


def test_import_with_mapping_and_expected_column(examples_db):
    at = page("pages/2_Datasets.py")
    upload(
        at,
        "tickets.csv",
        b"Ticket Text,team,internal\nPrinter is on fire,hardware,x\nCannot log in,accounts,y\n",
    )
    assert not at.exception
    assert any("Read 2 rows" in s.value for s in at.success)
    at.selectbox(key="datasets.expected").set_value("team")
    at.text_input(key="datasets.map.Ticket Text").set_value("ticket")
    at.text_input(key="datasets.map.internal").set_value("")
    at.text_input(key="datasets.name").set_value("tickets")
    at.button(key="datasets.import").click().run()
    assert any("Imported 2 rows into 'tickets'" in s.value for s in at.success)
    with session_scope() as s:
        ds = datasets.require_dataset(s, "tickets")
        rows = datasets.examples_of(s, ds.id)
    assert ds.columns == ["ticket"]
    assert [(r.inputs, r.expected) for r in rows] == [
        ({"ticket": "Printer is on fire"}, "hardware"),
        ({"ticket": "Cannot log in"}, "accounts"),
    ]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("ragged.csv", b"a,b\n1,2\n3\n", "line 3"),
        ("empty.csv", b"", "is empty"),
        ("dupes.csv", b"a,a\n1,2\n", "duplicate column names"),
        ("latin.csv", "a\nné\n".encode("latin-1"), "not UTF-8"),
        ("bad.json", b'{"rows": ', "not valid JSON"),
    ],
)
def test_bad_files_show_an_error_and_import_nothing(examples_db, name, data, message):
    at = upload(page("pages/2_Datasets.py"), name, data)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    with pytest.raises(KeyError):  # no Import button for a file that did not parse
        at.button(key="datasets.import")
    with session_scope() as s:
        assert len(datasets.list_datasets(s)) == 3


def test_importing_over_an_existing_name_is_refused(examples_db):
    at = upload(page("pages/2_Datasets.py"), "capitals.csv", b"country,expected\nChile,Santiago\n")
    at.button(key="datasets.import").click().run()
    assert any("already exists" in e.value for e in at.error)
    with session_scope() as s:
        ds = datasets.require_dataset(s, "capitals")
        assert len(datasets.examples_of(s, ds.id)) == 12


def test_browse_shows_rows_and_save_keeps_them(examples_db):
    at = page("pages/2_Datasets.py")
    at.selectbox(key="datasets.select").set_value("capitals").run()
    editor = at.tabs[0].dataframe[-1].value
    assert list(editor.columns) == ["_id", "country", "expected"] and len(editor) == 12
    assert editor.iloc[0]["country"] == "France" and editor.iloc[0]["expected"] == "Paris"
    at.button(key="datasets.save").click().run()
    assert any("Saved 12 rows" in s.value for s in at.success)
    downloads = at.get("download_button")
    assert len(downloads) == 2
