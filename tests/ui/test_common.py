"""The UI's error boundary: a core error's field becomes advice in the page's terms, never a CLI flag."""

from workbench.errors import MissingVariableError, SweepNotFoundError, WorkbenchError
from workbench.ui.common import FIELD_ADVICE, advice_for, error_text


def test_advice_names_widgets_never_flags_or_commands():
    for field, advice in FIELD_ADVICE.items():
        assert "--" not in advice and "python -m" not in advice, field


def test_error_text_adds_the_advice_for_the_field():
    missing = MissingVariableError("country")
    assert error_text(missing) == f"{missing} {FIELD_ADVICE['variables']}"
    assert advice_for(SweepNotFoundError(7)) == "Pick a sweep from the list."


def test_an_error_without_a_known_field_shows_its_message_alone():
    assert error_text(WorkbenchError("Plain.")) == "Plain."
    assert error_text(WorkbenchError("Odd.", field="no_such_setting")) == "Odd."
