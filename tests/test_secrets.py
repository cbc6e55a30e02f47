"""Nothing secret leaves: a key planted in the environment appears in no export, whatever field it hits."""

import pytest

from tests.fakeserver import Reply
from tests.sweep_helpers import write_models_file
from tests.test_export import sweep_two_versions, vote_for
from tests.test_gate import wb
from workbench.db import migrate, session_scope
from workbench.prompts import store

PLANTED = "sk-planted-SECRET"
OPENAI_KEY = f"{PLANTED}-openai-0123456789"
FAKE_KEY = f"{PLANTED}-fake-abcdef"


@pytest.fixture
def leaky(fake_server, tmp_path, monkeypatch):
    """Keys in the environment, and in places a careless user or provider could put them."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("WB_FAKE_KEY", FAKE_KEY)
    monkeypatch.setenv(
        "WORKBENCH_MODELS", str(write_models_file(tmp_path / "models.toml", fake_server.base_url))
    )
    migrate()
    from tests.sweep_helpers import seed

    seed(4)
    # A provider that echoes the key into an output, and a note with a pasted key.
    fake_server.script("cell-002", [Reply(text=f"my key is {FAKE_KEY}")])
    sweep_id = sweep_two_versions()
    with session_scope() as s:
        store.save_version(
            s, prompt_name="leaky", messages=[{"role": "user", "content": "hi"}], note=f"key={OPENAI_KEY}"
        )
    vote_for(sweep_id, "echo@1")
    return sweep_id


def test_no_export_format_contains_a_planted_key(leaky, tmp_path, capsys):
    sweep_id = str(leaky)
    commands = [
        ["versions", "--format", "json"],
        ["versions", "--format", "csv"],
        ["versions", "--format", "csv", "--winners", sweep_id],
        ["versions", "--format", "json", "--winners", sweep_id],
        ["runs", sweep_id, "--format", "json"],
        ["runs", sweep_id, "--format", "csv"],
        ["ratings", sweep_id, "--format", "json"],
        ["ratings", sweep_id, "--format", "csv"],
    ]
    texts = []
    for i, args in enumerate(commands):
        out = tmp_path / f"export-{i}"
        assert wb("export", *args, "--out", str(out)) == 0, args
        texts.append(out.read_text(encoding="utf-8"))
    for args in commands[:2]:  # standard output goes through the same writers
        assert wb("export", *args) == 0
        texts.append(capsys.readouterr().out)
    everything = "\n".join(texts)
    assert PLANTED not in everything
    assert everything.count("[redacted]") >= 4  # the planted values did reach the exported fields
    assert "my key is [redacted]" in everything and "key=[redacted]" in everything


def test_provider_error_text_never_carries_a_key(monkeypatch):
    """A provider that echoes the key (some put it in the URL) must not get it into the database."""
    from workbench.providers.completion import classify_exception

    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSy-planted-GEMINI-key-123")

    class FakeStatusError(Exception):
        status_code = 400

    err = classify_exception(FakeStatusError("400 for url https://x/v1?key=AIzaSy-planted-GEMINI-key-123"))
    assert "AIzaSy-planted" not in str(err) and "[redacted]" in str(err)
