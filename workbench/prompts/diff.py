"""Text diffs between two versions (messages, params, response format, tools), from the standard library."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from workbench.models import PromptVersion
from workbench.prompts.conversation import is_placeholder
from workbench.prompts.structured import of_version


def version_text(version: PromptVersion) -> str:
    """A readable text form of a version: each message under a role header (a placeholder as
    `### placeholder: NAME`), then the params, response format, tools and tool choice (each as
    indented JSON with sorted keys, so a change shows as the lines it touches)."""
    parts = []
    for msg in version.messages:
        if is_placeholder(msg):
            parts.append(f"### placeholder: {msg['content']}")
            continue
        parts.append(f"### {msg['role']}")
        parts.append(msg["content"])
    if version.params:
        parts.append("### params")
        parts.append(json.dumps(version.params, indent=2, sort_keys=True))
    for key, value in of_version(version).to_dict().items():
        if value is not None:
            parts.append(f"### {key}")
            parts.append(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
    return "\n".join(parts) + "\n"


def unified(
    a: PromptVersion, b: PromptVersion, *, a_name: str = "a", b_name: str = "b", context: int = 3
) -> str:
    """A unified diff from version a to version b."""
    return "".join(
        difflib.unified_diff(
            version_text(a).splitlines(keepends=True),
            version_text(b).splitlines(keepends=True),
            fromfile=a_name,
            tofile=b_name,
            n=context,
        )
    )


@dataclass(frozen=True)
class SideBySideRow:
    """One aligned row of a side-by-side diff; tag is equal | replace | delete | insert."""

    tag: str
    left: str | None
    right: str | None
    left_no: int | None
    right_no: int | None


def side_by_side(a_text: str, b_text: str) -> list[SideBySideRow]:
    """Align two texts line by line for a two-column view (changes tagged per row)."""
    a_lines, b_lines = a_text.splitlines(), b_text.splitlines()
    rows: list[SideBySideRow] = []
    matcher = difflib.SequenceMatcher(a=a_lines, b=b_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                rows.append(SideBySideRow("equal", a_lines[i1 + k], b_lines[j1 + k], i1 + k + 1, j1 + k + 1))
            continue
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            left = a_lines[i1 + k] if i1 + k < i2 else None
            right = b_lines[j1 + k] if j1 + k < j2 else None
            row_tag = (
                tag
                if tag != "replace"
                else (
                    "replace"
                    if left is not None and right is not None
                    else ("delete" if right is None else "insert")
                )
            )
            rows.append(
                SideBySideRow(
                    row_tag,
                    left,
                    right,
                    i1 + k + 1 if left is not None else None,
                    j1 + k + 1 if right is not None else None,
                )
            )
    return rows


def side_by_side_html(a: PromptVersion, b: PromptVersion, *, a_name: str = "a", b_name: str = "b") -> str:
    """An HTML table with changes highlighted (difflib.HtmlDiff)."""
    return difflib.HtmlDiff(wrapcolumn=70).make_table(
        version_text(a).splitlines(),
        version_text(b).splitlines(),
        fromdesc=a_name,
        todesc=b_name,
        context=False,
    )
