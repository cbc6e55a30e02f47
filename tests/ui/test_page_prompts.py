"""The Prompts page: edit, preview, save versions, diff, labels, duplicate, bad templates."""

from tests.ui.conftest import page
from workbench.db import session_scope
from workbench.prompts import store


def gen(at):
    return at.session_state["store.gen"]


def test_edit_and_save_a_second_version_then_diff(examples_db):
    at = page("pages/1_Prompts.py")
    assert at.selectbox(key="store.select").value == "capital"
    g = gen(at)
    at.text_area(key=f"store.content.{g}.0").set_value("Answer with the capital city only, in English.")
    at.text_input(key=f"store.note.{g}").set_value("English names")
    at.button(key=f"store.save.{g}").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Saved capital@2."]
    assert at.selectbox(key="store.version").value == 2
    with session_scope() as s:
        v2 = store.resolve(s, "capital@2")
        assert v2.note == "English names" and v2.parent_id == store.resolve(s, "capital@1").id
    html = [h.proto.body for h in at.tabs[1].get("html")]
    assert any("English" in body and "diff_add" in body for body in html)


def test_saving_unchanged_content_creates_nothing(examples_db):
    at = page("pages/1_Prompts.py")
    at.button(key=f"store.save.{gen(at)}").click().run()
    assert any("No change" in i.value for i in at.info)
    with session_scope() as s:
        assert len(store.versions_of(s, store.get_prompt(s, "capital").id)) == 1


def test_broken_template_is_shown_inline_and_not_saved(examples_db):
    at = page("pages/1_Prompts.py")
    g = gen(at)
    at.text_area(key=f"store.content.{g}.1").set_value("Capital of {{ country }")
    at.button(key=f"store.save.{g}").click().run()
    errors = [e.value for e in at.error]
    assert any("message 2" in e and "line 1" in e and "column 12" in e for e in errors), errors
    assert any("nothing was saved" in i.value for i in at.info)
    with session_scope() as s:
        assert len(store.versions_of(s, store.get_prompt(s, "capital").id)) == 1


def test_preview_names_missing_variables_and_renders_values(examples_db):
    at = page("pages/1_Prompts.py")
    (warning,) = [w.value for w in at.warning if "Missing variable 'country'" in w.value]
    # The page says what to do in its own terms (the Variables inputs), never with a CLI flag.
    assert "under Variables" in warning and "--" not in warning and "python -m" not in warning
    at.text_input(key="store.var.country").set_value("{{ 7*7 }} Peru").run()
    texts = [t.value for t in at.text]
    assert "What is the capital of {{ 7*7 }} Peru?" in texts


def test_add_and_reorder_turns(examples_db):
    at = page("pages/1_Prompts.py")
    at.button(key=f"store.add.{gen(at)}").click().run()
    draft = at.session_state["store.draft"]["messages"]
    assert [m["role"] for m in draft] == ["system", "user", "assistant"]
    at.button(key=f"store.up.{gen(at)}.1").click().run()
    assert [m["role"] for m in at.session_state["store.draft"]["messages"]] == [
        "user",
        "system",
        "assistant",
    ]


def test_labels_and_history(examples_db):
    at = page("pages/1_Prompts.py")
    at.text_input(key="store.label_actor").set_value("ada")
    at.button(key="store.set_label").click().run()
    assert not at.exception
    with session_scope() as s:
        assert store.resolve(s, "capital:production").number == 1
    history = at.tabs[2].dataframe[-1].value
    assert list(history["label"]) == ["production"] and list(history["by"]) == ["ada"]


def test_new_prompt_with_bad_name_is_refused(examples_db):
    at = page("pages/1_Prompts.py")
    at.selectbox(key="store.select").set_value("➕ New prompt").run()
    at.text_input(key="store.new_name").set_value("bad@name").run()
    at.button(key=f"store.save.{gen(at)}").click().run()
    assert any("'@'" in e.value for e in at.error)
    at.text_input(key="store.new_name").set_value("triage").run()
    at.button(key=f"store.save.{gen(at)}").click().run()
    assert [s.value for s in at.success] == ["Saved triage@1."]


def test_duplicate_prompt(examples_db):
    at = page("pages/1_Prompts.py")
    at.text_input(key="store.dup_name").set_value("capital-copy")
    at.button(key="store.duplicate").click().run()
    assert not at.exception
    assert at.selectbox(key="store.select").value == "capital-copy"
