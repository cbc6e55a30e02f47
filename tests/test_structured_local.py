"""The embedded SmolLM2 follows a JSON Schema through llama.cpp's grammar-constrained sampling."""

import json

import pytest
from jsonschema import Draft202012Validator
from sqlmodel import select

from workbench import datasets
from workbench.db import migrate, session_scope
from workbench.errors import ProviderError
from workbench.models import Run, Score
from workbench.prompts import store
from workbench.providers.completion import complete
from workbench.sweeps.execute import execute_sweep
from workbench.sweeps.plan import SweepSpec, create_sweep

pytestmark = pytest.mark.local_model

SMOL = "local/smollm2-135m-instruct"
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PLACES = [
    "the Eiffel Tower", "the Colosseum", "Big Ben", "the Brandenburg Gate", "the Sagrada Familia",
    "the Statue of Liberty", "the Sydney Opera House", "the Kremlin", "the Acropolis", "Times Square",
]  # fmt: skip


def test_smollm2_output_validates_against_the_schema_on_every_row():
    migrate()
    with session_scope() as s:
        store.save_version(
            s,
            prompt_name="where",
            messages=[{"role": "user", "content": "In which city is {{ place }}? Answer in JSON."}],
            params={"max_tokens": 64},
            response_format=CITY,
        )
        table = datasets.ParsedTable(["place"], [{"place": p} for p in PLACES])
        datasets.create_dataset(s, name="places", table=table)
        sweep, plan = create_sweep(
            s,
            SweepSpec(
                prompts=["where"],
                models=[SMOL],
                dataset="places",
                # Greedy decoding: the grammar makes every finished reply valid; a reply cut off
                # by max_tokens inside a string would not be (it is recorded as truncated).
                params={"temperature": [0]},
                scoring={"metrics": ["json_valid"]},
            ),
        )
    assert plan.cells == 10
    report = execute_sweep(sweep.id)
    assert report.done == 10 and report.failed == 0
    validator = Draft202012Validator(CITY)
    with session_scope() as s:
        runs = s.exec(select(Run).where(Run.sweep_id == sweep.id)).all()
        scores = s.exec(select(Score).where(Score.metric == "json_valid")).all()
    replies = [(r.output, r.finish_reason) for r in runs]
    assert all(reason == "stop" for _text, reason in replies), replies
    assert all(validator.is_valid(json.loads(text)) for text, _reason in replies), replies
    assert [sc.value for sc in scores] == [1.0] * 10


def test_json_mode_without_a_schema_and_no_tools():
    result = complete(
        SMOL,
        [{"role": "user", "content": "Describe Paris as JSON."}],
        {"response_format": {"type": "json_object"}, "max_tokens": 64, "temperature": 0},
    )
    assert result.finish_reason in ("stop", "length")
    if result.finish_reason == "stop":
        assert isinstance(json.loads(result.text), dict)
    with pytest.raises(ProviderError) as err:
        complete(
            SMOL,
            [{"role": "user", "content": "Weather?"}],
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "get_weather", "parameters": {"type": "object"}},
                    }
                ]
            },
        )
    assert err.value.kind == "unsupported" and not err.value.transient
