"""Prompts, immutable versions and movable labels.

Functions take a Session first and keyword arguments after it; they return ORM rows that the
caller may read after the session closes (sessions are made with expire_on_commit=False).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, select

from workbench.errors import NotFoundError, ValidationError
from workbench.models import Label, LabelEvent, Prompt, PromptVersion, utcnow
from workbench.prompts import structured, templates

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,199}$")
LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}$")
PARAM_KEYS = {"model", "temperature", "max_tokens", "top_p", "stop", "seed"}


def check_name(name: str, what: str = "Prompt") -> str:
    """Validate a prompt or dataset name."""
    name = (name or "").strip()
    if not NAME_RE.match(name) or any(c in name for c in "@:"):
        raise ValidationError(
            f"{what} name '{name}' is not allowed: use letters, digits, spaces, '_', '-' or '.', "
            "start with a letter or digit, and keep '@' and ':' out (they select versions and labels)."
        )
    return name


def check_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a version's default parameters (types and ranges)."""
    params = dict(params or {})
    if "temperature" in params and params["temperature"] is not None:
        t = float(params["temperature"])
        if not 0 <= t <= 2:
            raise ValidationError(f"temperature must be between 0 and 2, not {t}.")
        params["temperature"] = t
    if "top_p" in params and params["top_p"] is not None:
        p = float(params["top_p"])
        if not 0 < p <= 1:
            raise ValidationError(f"top_p must be in (0, 1], not {p}.")
        params["top_p"] = p
    if "max_tokens" in params and params["max_tokens"] is not None:
        m = int(params["max_tokens"])
        if m < 1:
            raise ValidationError(f"max_tokens must be at least 1, not {m}.")
        params["max_tokens"] = m
    if "stop" in params and params["stop"] is not None:
        stop = params["stop"]
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ValidationError("stop must be a string or a list of strings.")
        params["stop"] = stop
    if "seed" in params and params["seed"] is not None:
        params["seed"] = int(params["seed"])
    return {k: v for k, v in params.items() if v is not None}


def split_structured(
    params: dict[str, Any] | None, *, response_format: Any = None, tools: Any = None, tool_choice: Any = None
) -> tuple[dict[str, Any], structured.Structured]:
    """Params without response_format / tools / tool_choice, and those settings checked.

    A prompt file may put them among its params; given as arguments they win.
    """
    rest = dict(params or {})
    lifted = {key: rest.pop(key, None) for key in structured.FIELDS}
    given = {"response_format": response_format, "tools": tools, "tool_choice": tool_choice}
    chosen = {k: given[k] if given[k] is not None else lifted[k] for k in structured.FIELDS}
    return rest, structured.Structured.check(**chosen)


@dataclass(frozen=True)
class VersionRef:
    """A parsed reference: NAME, NAME@N or NAME:label."""

    name: str
    number: int | None = None
    label: str | None = None

    @classmethod
    def parse(cls, ref: str) -> VersionRef:
        ref = (ref or "").strip()
        if "@" in ref:
            name, _, num = ref.rpartition("@")
            if not num.isdigit():
                raise ValidationError(f"'{ref}': the part after '@' must be a version number.")
            return cls(name.strip(), number=int(num))
        if ":" in ref:
            name, _, label = ref.rpartition(":")
            return cls(name.strip(), label=label.strip())
        return cls(ref)

    def __str__(self) -> str:
        if self.number is not None:
            return f"{self.name}@{self.number}"
        if self.label:
            return f"{self.name}:{self.label}"
        return self.name


def get_prompt(session: Session, name: str) -> Prompt | None:
    """The prompt called `name`, or None."""
    return session.exec(select(Prompt).where(Prompt.name == name)).first()


def require_prompt(session: Session, name: str) -> Prompt:
    """The prompt called `name`; NotFoundError names the prompts that exist."""
    prompt = get_prompt(session, name)
    if prompt is None:
        names = [p.name for p in list_prompts(session)][:10]
        hint = f" Prompts: {', '.join(names)}." if names else " There are no prompts yet."
        raise NotFoundError(f"No prompt named '{name}'.{hint}")
    return prompt


def list_prompts(session: Session) -> list[Prompt]:
    """All prompts by name."""
    return list(session.exec(select(Prompt).order_by(Prompt.name)))


def create_prompt(session: Session, *, name: str, description: str = "") -> Prompt:
    """Create an empty prompt; refuses a name that exists."""
    name = check_name(name)
    if get_prompt(session, name):
        raise ValidationError(f"A prompt named '{name}' already exists.")
    prompt = Prompt(name=name, description=description)
    session.add(prompt)
    session.flush()
    return prompt


def versions_of(session: Session, prompt_id: int) -> list[PromptVersion]:
    """All versions of a prompt, oldest first."""
    stmt = select(PromptVersion).where(PromptVersion.prompt_id == prompt_id)
    return list(session.exec(stmt.order_by(PromptVersion.number)))


def latest_version(session: Session, prompt_id: int) -> PromptVersion | None:
    """The newest version of a prompt, or None when it has none."""
    stmt = select(PromptVersion).where(PromptVersion.prompt_id == prompt_id)
    return session.exec(stmt.order_by(col(PromptVersion.number).desc())).first()


def save_version(
    session: Session,
    *,
    prompt_name: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
    note: str = "",
    source: str = "manual",
    parent_id: int | None = None,
    original_hash: str | None = None,
    create: bool = True,
    response_format: Any = None,
    tools: Any = None,
    tool_choice: Any = None,
) -> tuple[PromptVersion, bool]:
    """Save content as the next version of a prompt; returns (version, created).

    Versions are immutable: this never changes an existing row. Content identical to an
    existing version of the same prompt returns that version with created=False. The parent
    defaults to the prompt's latest version. `response_format`, `tools` and `tool_choice` are
    checked and normalised by `structured` (they may also come inside `params`).
    """
    msgs = templates.check_messages(messages)
    params, extra = split_structured(
        params, response_format=response_format, tools=tools, tool_choice=tool_choice
    )
    params = check_params(params)
    variables = templates.message_variables(msgs)
    digest = templates.content_hash(msgs, params, **extra.to_dict())
    prompt = get_prompt(session, prompt_name)
    if prompt is None:
        if not create:
            raise NotFoundError(f"No prompt named '{prompt_name}'.")
        prompt = create_prompt(session, name=prompt_name)
    existing = session.exec(
        select(PromptVersion).where(
            PromptVersion.prompt_id == prompt.id, PromptVersion.content_hash == digest
        )
    ).first()
    if existing is not None:
        return existing, False
    latest = latest_version(session, prompt.id)
    if parent_id is not None:
        parent = session.get(PromptVersion, parent_id)
        if parent is None:
            raise NotFoundError(f"Parent version id {parent_id} does not exist.")
    version = PromptVersion(
        prompt_id=prompt.id,
        number=(latest.number + 1) if latest else 1,
        messages=msgs,
        params=params,
        variables=variables,
        **extra.to_dict(),
        content_hash=digest,
        original_hash=original_hash or digest,
        parent_id=parent_id if parent_id is not None else (latest.id if latest else None),
        source=source,
        note=note,
    )
    session.add(version)
    session.flush()
    return version, True


def resolve(session: Session, ref: str | VersionRef) -> PromptVersion:
    """The version a reference names: NAME (latest), NAME@N, or NAME:label."""
    r = VersionRef.parse(ref) if isinstance(ref, str) else ref
    prompt = require_prompt(session, r.name)
    if r.number is not None:
        version = session.exec(
            select(PromptVersion).where(
                PromptVersion.prompt_id == prompt.id, PromptVersion.number == r.number
            )
        ).first()
        if version is None:
            latest = latest_version(session, prompt.id)
            top = latest.number if latest else 0
            raise NotFoundError(f"'{r.name}' has no version {r.number} (versions 1..{top}).")
        return version
    if r.label:
        label = session.exec(select(Label).where(Label.prompt_id == prompt.id, Label.name == r.label)).first()
        if label is None:
            names = [lb.name for lb in labels_of(session, prompt.id)]
            hint = f" Labels: {', '.join(names)}." if names else " It has no labels yet."
            raise NotFoundError(f"'{r.name}' has no label '{r.label}'.{hint}")
        return session.get(PromptVersion, label.version_id)
    latest = latest_version(session, prompt.id)
    if latest is None:
        raise NotFoundError(f"'{r.name}' has no versions yet.")
    return latest


def labels_of(session: Session, prompt_id: int) -> list[Label]:
    """The labels of a prompt, by name."""
    return list(session.exec(select(Label).where(Label.prompt_id == prompt_id).order_by(Label.name)))


def labels_by_version(session: Session, prompt_id: int) -> dict[int, list[str]]:
    """Map version id -> label names pointing at it."""
    out: dict[int, list[str]] = {}
    for label in labels_of(session, prompt_id):
        out.setdefault(label.version_id, []).append(label.name)
    return out


def set_label(session: Session, *, version_id: int, label: str, actor: str = "") -> Label:
    """Point `label` at a version (creating or moving it) and record the move in its history."""
    label = (label or "").strip()
    if not LABEL_RE.match(label):
        raise ValidationError(
            f"Label '{label}' is not allowed: start with a letter; use letters, digits, '_', '-', '.'."
        )
    version = session.get(PromptVersion, version_id)
    if version is None:
        raise NotFoundError(f"Version id {version_id} does not exist.")
    row = session.exec(select(Label).where(Label.prompt_id == version.prompt_id, Label.name == label)).first()
    previous = row.version_id if row else None
    if row is None:
        row = Label(prompt_id=version.prompt_id, name=label, version_id=version.id)
        session.add(row)
    elif row.version_id == version.id:
        return row
    else:
        row.version_id = version.id
        row.updated_at = utcnow()
    session.add(
        LabelEvent(
            prompt_id=version.prompt_id,
            label=label,
            from_version_id=previous,
            to_version_id=version.id,
            actor=actor,
        )
    )
    session.flush()
    return row


def remove_label(session: Session, *, prompt_id: int, label: str, actor: str = "") -> None:
    """Delete a label (its history stays)."""
    row = session.exec(select(Label).where(Label.prompt_id == prompt_id, Label.name == label)).first()
    if row is None:
        raise NotFoundError(f"No label '{label}' on this prompt.")
    session.add(
        LabelEvent(
            prompt_id=prompt_id, label=label, from_version_id=row.version_id, to_version_id=None, actor=actor
        )
    )
    session.delete(row)
    session.flush()


def label_history(session: Session, prompt_id: int, label: str | None = None) -> list[LabelEvent]:
    """Label moves of a prompt, newest first."""
    stmt = select(LabelEvent).where(LabelEvent.prompt_id == prompt_id)
    if label:
        stmt = stmt.where(LabelEvent.label == label)
    return list(session.exec(stmt.order_by(col(LabelEvent.id).desc())))


def duplicate_prompt(session: Session, *, source_name: str, new_name: str) -> PromptVersion:
    """Copy the latest version of a prompt into a new prompt (version 1, parent = the source)."""
    src = resolve(session, source_name)
    if get_prompt(session, check_name(new_name)):
        raise ValidationError(f"A prompt named '{new_name}' already exists.")
    prompt = create_prompt(session, name=new_name)
    version = PromptVersion(
        prompt_id=prompt.id,
        number=1,
        messages=src.messages,
        params=src.params,
        variables=src.variables,
        response_format=src.response_format,
        tools=src.tools,
        tool_choice=src.tool_choice,
        content_hash=src.content_hash,
        original_hash=src.content_hash,
        parent_id=src.id,
        source=src.source,
        note=f"Duplicated from {source_name}",
    )
    session.add(version)
    session.flush()
    return version


def version_counts(session: Session) -> dict[int, int]:
    """Map prompt id -> number of versions."""
    stmt = select(PromptVersion.prompt_id, func.count()).group_by(PromptVersion.prompt_id)
    return {pid: n for pid, n in session.exec(stmt)}


def resolve_name(session: Session, version: PromptVersion) -> str:
    """'name@N' for a version."""
    prompt = session.get(Prompt, version.prompt_id)
    return f"{prompt.name}@{version.number}"


def render_version(
    version: PromptVersion, variables: dict[str, Any], *, context: str = ""
) -> list[dict[str, Any]]:
    """Render a version's messages with `variables` (placeholders expanded to their conversations)."""
    return templates.render_messages(version.messages, variables, context=context)


def call_params(version: PromptVersion) -> dict[str, Any]:
    """What a call of this version sends besides the messages: its default params (without
    `model`) and its response format, tools and tool choice when it has them."""
    params = {k: v for k, v in (version.params or {}).items() if k != "model"}
    return {**params, **structured.of_version(version).request_params()}
