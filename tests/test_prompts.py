"""Immutable versions, labels with history, references and diffs (on SQLite and PostgreSQL)."""

import pytest

from workbench.errors import NotFoundError, TemplateError, ValidationError
from workbench.prompts import diff, store

V1 = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Q: {{ question }}"}]
V2 = [{"role": "system", "content": "Be terse and kind."}, {"role": "user", "content": "Q: {{ question }}"}]


def test_edit_saves_next_version_with_parent_and_hash(session):
    v1, created1 = store.save_version(session, prompt_name="qa", messages=V1, params={"temperature": 0})
    v2, created2 = store.save_version(session, prompt_name="qa", messages=V2, note="kinder")
    assert (created1, created2) == (True, True)
    assert (v1.number, v2.number) == (1, 2)
    assert v2.parent_id == v1.id
    assert v1.content_hash != v2.content_hash and len(v2.content_hash) == 64
    assert v2.variables == ["question"]
    assert store.resolve(session, "qa@1").messages == V1  # v1 untouched by the edit


def test_identical_content_is_not_duplicated(session):
    v1, _ = store.save_version(session, prompt_name="qa", messages=V1)
    again, created = store.save_version(session, prompt_name="qa", messages=[dict(m) for m in V1])
    assert created is False and again.id == v1.id
    assert len(store.versions_of(session, v1.prompt_id)) == 1


def test_bad_template_saves_nothing(session):
    with pytest.raises(TemplateError):
        store.save_version(session, prompt_name="broken", messages=[{"role": "user", "content": "{{ x "}])
    assert store.get_prompt(session, "broken") is None


def test_params_are_validated(session):
    with pytest.raises(ValidationError, match="temperature"):
        store.save_version(session, prompt_name="p", messages=V1, params={"temperature": 3})
    v, _ = store.save_version(
        session, prompt_name="p", messages=V1, params={"stop": "###", "max_tokens": "5"}
    )
    assert v.params == {"stop": ["###"], "max_tokens": 5}


def test_references_resolve_latest_number_and_label(session):
    v1, _ = store.save_version(session, prompt_name="qa", messages=V1)
    v2, _ = store.save_version(session, prompt_name="qa", messages=V2)
    store.set_label(session, version_id=v1.id, label="production")
    assert store.resolve(session, "qa").id == v2.id
    assert store.resolve(session, "qa@1").id == v1.id
    assert store.resolve(session, "qa:production").id == v1.id
    with pytest.raises(NotFoundError, match="no version 9"):
        store.resolve(session, "qa@9")
    with pytest.raises(NotFoundError, match="no label 'staging'"):
        store.resolve(session, "qa:staging")
    with pytest.raises(NotFoundError, match="Prompts: qa"):
        store.resolve(session, "nope")


def test_labels_move_and_keep_history(session):
    v1, _ = store.save_version(session, prompt_name="qa", messages=V1)
    v2, _ = store.save_version(session, prompt_name="qa", messages=V2)
    store.set_label(session, version_id=v1.id, label="production", actor="ada")
    store.set_label(session, version_id=v2.id, label="production", actor="bob")
    store.set_label(session, version_id=v2.id, label="production", actor="bob")  # no-op, no event
    history = store.label_history(session, v1.prompt_id, "production")
    assert [(e.from_version_id, e.to_version_id, e.actor) for e in history] == [
        (v1.id, v2.id, "bob"),
        (None, v1.id, "ada"),
    ]
    assert store.labels_by_version(session, v1.prompt_id) == {v2.id: ["production"]}
    store.remove_label(session, prompt_id=v1.prompt_id, label="production")
    assert store.labels_of(session, v1.prompt_id) == []
    assert len(store.label_history(session, v1.prompt_id)) == 3


def test_label_and_prompt_names_are_checked(session):
    v1, _ = store.save_version(session, prompt_name="qa", messages=V1)
    with pytest.raises(ValidationError):
        store.set_label(session, version_id=v1.id, label="has space")
    with pytest.raises(ValidationError, match="'@'"):
        store.save_version(session, prompt_name="bad@name", messages=V1)


def test_duplicate_prompt_keeps_lineage(session):
    v1, _ = store.save_version(session, prompt_name="qa", messages=V1)
    copy = store.duplicate_prompt(session, source_name="qa", new_name="qa-copy")
    assert copy.number == 1 and copy.parent_id == v1.id and copy.messages == V1
    with pytest.raises(ValidationError, match="already exists"):
        store.duplicate_prompt(session, source_name="qa", new_name="qa-copy")


def test_unified_and_side_by_side_diff(session):
    v1, _ = store.save_version(session, prompt_name="qa", messages=V1)
    v2, _ = store.save_version(session, prompt_name="qa", messages=V2)
    text = diff.unified(v1, v2, a_name="qa@1", b_name="qa@2")
    assert "-Be terse." in text and "+Be terse and kind." in text and text.startswith("--- qa@1")
    rows = diff.side_by_side(diff.version_text(v1), diff.version_text(v2))
    changed = [r for r in rows if r.tag != "equal"]
    assert [(r.tag, r.left, r.right) for r in changed] == [("replace", "Be terse.", "Be terse and kind.")]
    html = diff.side_by_side_html(v1, v2)
    assert "kind." in html and "diff_add" in html
