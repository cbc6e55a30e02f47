"""The DSPy side of a prompt version: a signature, a one-predictor program, and the adapter.

`WorkbenchAdapter` renders every call of the program with `messages.build_messages` +
the workbench's Jinja renderer, and takes the whole completion as the single output field. So
the messages DSPy scores are exactly what the saved version renders to, and a small model can
never fail a parse. Calls for any other signature (an instruction proposer's, GEPA's reflection)
go to DSPy's ChatAdapter as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.optimize import messages
from workbench.optimize.dspy_env import import_dspy

dspy = import_dspy()

OUTPUT_DESC = "The model's complete reply."


@dataclass(frozen=True)
class ProgramShape:
    """How a version maps onto a DSPy signature: input fields, the output field, instructions."""

    base: messages.BaseTemplate
    input_names: tuple[str, ...]
    output_name: str
    initial_instructions: str  # the signature's instructions before optimizing

    def owns(self, signature: Any) -> bool:
        """True for this program's signature (whatever instructions an optimizer gave it)."""
        return tuple(signature.input_fields) == self.input_names and list(signature.output_fields) == [
            self.output_name
        ]

    def demos_of(self, demos: list[Any]) -> list[messages.Demo]:
        """DSPy demos (Examples or dicts) as `messages.Demo`s; demos without an answer are skipped."""
        out = []
        for demo in demos or []:
            get = demo.get if hasattr(demo, "get") else (lambda k, d=demo: getattr(d, k, None))
            answer = get(self.output_name)
            if answer is None:
                continue
            inputs = {k: get(k) for k in self.input_names if get(k) is not None}
            out.append(messages.Demo(inputs=inputs, output=str(answer)))
        return out

    def messages(self, instructions: str, demos: list[Any]) -> list[dict[str, str]]:
        """Template messages for a predictor state (the version that would be saved)."""
        changed = None if instructions == self.initial_instructions else instructions
        return messages.build_messages(self.base, instructions=changed, demos=self.demos_of(demos))


def make_shape(version_messages: list[dict[str, Any]], input_names: list[str]) -> ProgramShape:
    """The program shape of a version whose variables (in template order) are `input_names`."""
    base = messages.split_template(version_messages)
    output_name = next(n for n in ("output", "response", "completion_text") if n not in input_names)
    signature = _signature(input_names, output_name, base.instructions)
    return ProgramShape(base, tuple(input_names), output_name, signature.instructions)


def _signature(input_names: list[str] | tuple[str, ...], output_name: str, instructions: str) -> Any:
    fields: dict[str, Any] = {name: (str, dspy.InputField()) for name in input_names}
    fields[output_name] = (str, dspy.OutputField(desc=OUTPUT_DESC))
    # Empty instructions make DSPy write its default ("Given the fields ..."); the shape remembers
    # that text as "unchanged", so it never becomes a system message of its own.
    return dspy.Signature(fields, instructions or None)


def make_program(shape: ProgramShape) -> Any:
    """A fresh one-predictor program for the shape (the optimizer's student)."""
    return dspy.Predict(_signature(shape.input_names, shape.output_name, shape.initial_instructions))


def predictor_of(program: Any) -> Any:
    """The program's single predictor."""
    return program.predictors()[0]


class WorkbenchAdapter(dspy.Adapter):
    """Formats calls of the version's program with the workbench renderer; the reply is the output."""

    def __init__(self, shape: ProgramShape):
        super().__init__()
        self.shape = shape
        self.fallback = dspy.ChatAdapter()

    def __call__(self, lm, lm_kwargs, signature, demos, inputs):
        if not self.shape.owns(signature):
            return self.fallback(lm, lm_kwargs, signature, demos, inputs)
        return super().__call__(lm, lm_kwargs, signature, demos, inputs)

    async def acall(self, lm, lm_kwargs, signature, demos, inputs):
        """Async twin of `__call__`: foreign signatures go to the ChatAdapter."""
        if not self.shape.owns(signature):
            return await self.fallback.acall(lm, lm_kwargs, signature, demos, inputs)
        return await super().acall(lm, lm_kwargs, signature, demos, inputs)

    def format(self, signature, demos, inputs):
        """The rendered messages of the proposed version for these inputs."""
        if not self.shape.owns(signature):
            return self.fallback.format(signature, demos, inputs)
        template = self.shape.messages(signature.instructions, demos)
        return messages.render(template, {k: v for k, v in inputs.items() if v is not None})

    def parse(self, signature, completion):
        """The whole completion is the output."""
        if not self.shape.owns(signature):
            return self.fallback.parse(signature, completion)
        return {self.shape.output_name: completion}

    def _call_postprocess(self, processed_signature, original_signature, outputs, lm, lm_kwargs):
        # An empty reply is an answer (scored as wrong), not a parse failure that counts toward
        # DSPy's max_errors and can abort a whole compile.
        values = []
        for output in outputs:
            text = output.get("text") if isinstance(output, dict) else output
            values.append({self.shape.output_name: text or ""})
        return values
