"""The model list: local models always, models.toml entries with keys by name."""

import dataclasses

import pytest

from workbench.errors import ModelUnavailableError, ValidationError
from workbench.providers import catalog
from workbench.providers.local.specs import LOCAL_MODELS

TOML = """
[[model]]
id = "openai/gpt-4o-mini"
api_key_env = "WB_TEST_KEY"

[[model]]
id = "openai/my-proxy-model"
api_base = "http://127.0.0.1:9/v1"
input_price_per_million = 1.5
output_price_per_million = 3
max_concurrency = 2
"""


@pytest.fixture
def models_file(tmp_path, monkeypatch):
    path = tmp_path / "models.toml"
    path.write_text(TOML)
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    monkeypatch.delenv("WB_TEST_KEY", raising=False)
    return path


def test_local_models_are_always_listed_first(models_file):
    ids = [m.id for m in catalog.list_models()]
    assert ids[:2] == ["local/smollm2-135m-instruct", "local/gemma-3-270m"]
    local = catalog.get_model("local/gemma-3-270m")
    assert local.available and not local.chat and local.max_concurrency == 1


def test_a_model_added_to_the_local_registry_is_listed_and_callable(models_file, monkeypatch):
    tiny = dataclasses.replace(LOCAL_MODELS["local/smollm2-135m-instruct"], id="local/tiny", chat=False)
    monkeypatch.setitem(LOCAL_MODELS, tiny.id, tiny)
    assert "local/tiny" in [m.id for m in catalog.list_models()]
    entry = catalog.require_callable("local/tiny")
    assert entry.kind == "local" and not entry.chat and entry.input_price_per_million == 0.0


def test_cloud_model_needs_its_key(models_file, monkeypatch):
    entry = catalog.get_model("openai/gpt-4o-mini")
    assert not entry.available and entry.unavailable_reason == "needs WB_TEST_KEY"
    with pytest.raises(ModelUnavailableError, match="WB_TEST_KEY"):
        catalog.require_callable("openai/gpt-4o-mini")
    monkeypatch.setenv("WB_TEST_KEY", "sk-test-secret")
    assert catalog.require_callable("openai/gpt-4o-mini").available
    assert "sk-test-secret" not in str(entry.public_dict())


def test_prices_concurrency_and_api_base(models_file):
    entry = catalog.get_model("openai/my-proxy-model")
    assert entry.available  # an api_base without a key env needs no key
    assert (entry.input_price_per_million, entry.output_price_per_million) == (1.5, 3.0)
    assert entry.max_concurrency == 2


def test_unknown_ids(models_file):
    assert catalog.get_model("anthropic/claude-x").api_key_env == "ANTHROPIC_API_KEY"
    assert catalog.get_model("ollama/llama3").available
    with pytest.raises(ModelUnavailableError, match="Unknown local model"):
        catalog.get_model("local/nope")


def test_keys_in_the_file_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.toml"
    path.write_text('[[model]]\nid = "openai/x"\napi_key = "sk-oops"\n')
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    with pytest.raises(ValidationError, match="api_key_env"):
        catalog.list_models()


def test_malformed_toml_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "m.toml"
    path.write_text("[[model]\nid=")
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    with pytest.raises(ValidationError, match="not valid TOML"):
        catalog.list_models()


def test_bundled_models_file_parses():
    from workbench import config

    entries = catalog.load_models_file(config.PROJECT_ROOT / "data" / "models.toml")
    assert entries and all(e.api_key_env for e in entries)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[model]]\nid = "openai/x"\nmax_concurrency = "eight"\n', "max_concurrency"),
        ('model = "x"\n', r"\[\[model\]\]"),
        ('[[model]]\nid = "openai/x"\nchat = "no"\n', "true or false"),
        ('[[model]]\nid = "openai/x"\napi_base = 5\n', "api_base must be text"),
        ('[[model]]\nid = "openai/x"\ninput_price_per_million = "cheap"\n', "prices must be numbers"),
    ],
)
def test_wrong_types_in_the_models_file_are_explained(tmp_path, monkeypatch, text, message):
    path = tmp_path / "m.toml"
    path.write_text(text)
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    with pytest.raises(ValidationError, match=message):
        catalog.list_models()
