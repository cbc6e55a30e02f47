"""Prompt versions to and from MLflow's Prompt Registry: `push` and `pull`.

`push` registers a version's messages as an MLflow chat prompt (how templates, params and names
convert: `convert`), with the version's labels as aliases and its lineage and evidence as version
tags (`workbench.*`: prompt, version, content_hash, original_hash, source, parent, parent_hash,
note, labels, variables, evidence as JSON). A version whose content hash MLflow already holds under
that prompt is not registered twice: its tags and aliases are brought up to date. `pull` brings one
registered version in as a workbench version with source "mlflow", deduplicated by content hash
(content already in the prompt is recognised, nothing is added); the aliases become labels where
the prompt has no label of that name yet (as an import does). Both check the server answers before
anything else, so an unreachable server changes nothing on either side.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import Session

from workbench.errors import NotFoundError, ValidationError
from workbench.mlflow_sync import client as mlc
from workbench.mlflow_sync import convert
from workbench.models import PromptVersion
from workbench.prompts import store
from workbench.providers.redact import scrub, secret_values

TAG = "workbench."
MAX_NOTE = 4000


@dataclass
class PushResult:
    """What `push` did for one version."""

    prompt: str
    version: int
    mlflow_name: str
    mlflow_version: int
    created: bool
    aliases: list[str] = field(default_factory=list)
    skipped_labels: list[str] = field(default_factory=list)
    jinja_marker: bool = False
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        verb = "registered as" if self.created else "already registered as"
        where = f"MLflow prompt {self.mlflow_name} version {self.mlflow_version}"
        out = [f"{self.prompt}@{self.version} {verb} {where}."]
        if self.aliases:
            out.append(f"aliases: {', '.join(self.aliases)}")
        out += [f"label not an alias: {s}" for s in self.skipped_labels]
        if self.jinja_marker:
            out.append("note: the Jinja marker was added so MLflow renders its expressions with Jinja")
        if self.url:
            out.append(f"Open: {self.url}")
        return out


@dataclass
class PullResult:
    """What `pull` did."""

    prompt: str
    number: int
    created: bool
    mlflow_name: str
    mlflow_version: int
    content_hash: str
    labels_set: list[str] = field(default_factory=list)
    labels_kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        where = f"MLflow prompt {self.mlflow_name} version {self.mlflow_version}"
        if self.created:
            out = [f"Pulled {where} as {self.prompt}@{self.number} (source mlflow)."]
        else:
            out = [f"{where} is already here as {self.prompt}@{self.number} (same content); nothing added."]
        out += [f"label {self.prompt}:{name} -> @{self.number}" for name in self.labels_set]
        out += [f"label kept: {text}" for text in self.labels_kept]
        out += [f"note: {n}" for n in self.notes]
        return out


def _evidence(session: Session, version: PromptVersion) -> dict[str, Any]:
    from workbench.release.export import version_record

    return version_record(session, version)["evidence"]


def version_tags(session: Session, version: PromptVersion, *, marker: bool) -> dict[str, str]:
    """The `workbench.*` tags of a pushed version: identity, lineage and evidence."""
    prompt_name = store.resolve_name(session, version).rpartition("@")[0]
    parent = session.get(PromptVersion, version.parent_id) if version.parent_id else None
    labels = store.labels_by_version(session, version.prompt_id).get(version.id, [])
    tags = {
        "prompt": prompt_name,
        "version": str(version.number),
        "content_hash": version.content_hash,
        "original_hash": version.original_hash or version.content_hash,
        "source": version.origin_source or version.source,
        "parent": store.resolve_name(session, parent) if parent else "",
        "parent_hash": parent.content_hash if parent else "",
        "note": (version.note or "")[:MAX_NOTE],
        "labels": ", ".join(sorted(labels)),
        "variables": ", ".join(version.variables or []),
        "evidence": json.dumps(_evidence(session, version), sort_keys=True, default=str),
        "jinja_marker": "true" if marker else "false",
    }
    for name in ("tools", "tool_choice"):
        value = getattr(version, name, None)
        if value is not None:
            tags[name] = json.dumps(value, sort_keys=True)
    return {TAG + k: v for k, v in scrub(tags, secret_values()).items()}


def _versions(conn: mlc.Connection, name: str) -> list[Any]:
    """Every registered version of an MLflow prompt (empty when there is no such prompt)."""
    if conn.client.get_prompt(name) is None:
        return []
    found: list[Any] = []
    token = None
    while True:
        page = conn.client.search_prompt_versions(name, max_results=1000, page_token=token)
        found += list(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def push(
    session: Session, ref: str, *, uri: str | None = None, name: str | None = None, every: bool = False
) -> list[PushResult]:
    """Register a version (NAME, NAME@N or NAME:label; with `every`, all versions of NAME) in MLflow."""
    conn = mlc.connect(uri)
    if every:
        prompt = store.require_prompt(session, store.VersionRef.parse(ref).name)
        versions = store.versions_of(session, prompt.id)
    else:
        versions = [store.resolve(session, ref)]
    return [_push_one(session, conn, v, name) for v in versions]


def _push_one(session: Session, conn: mlc.Connection, version: PromptVersion, name: str | None) -> PushResult:
    local = store.resolve_name(session, version).rpartition("@")[0]
    target = convert.mlflow_name(name or local)
    secrets = secret_values()
    template, marker = convert.to_mlflow_template(scrub(version.messages, secrets))
    tags = version_tags(session, version, marker=marker)
    labels = sorted(store.labels_by_version(session, version.prompt_id).get(version.id, []))
    with mlc.errors(conn.uri, f"registering {local}@{version.number} as prompt '{target}'"):
        existing = next(
            (v for v in _versions(conn, target) if v.tags.get(TAG + "content_hash") == version.content_hash),
            None,
        )
        if existing is None:
            registered = conn.client.register_prompt(
                name=target,
                template=template,
                commit_message=scrub(
                    version.note or f"{local}@{version.number} from Prompt Workbench", secrets
                )[:MAX_NOTE],
                tags=tags,
                response_format=scrub(getattr(version, "response_format", None), secrets),
                model_config=scrub(convert.model_config(version.params or {}), secrets) or None,
            )
            number = int(registered.version)
        else:
            number = int(existing.version)
            for key, value in tags.items():
                if existing.tags.get(key) != value:
                    conn.client.set_prompt_version_tag(target, number, key, value)
        aliases, skipped = [], []
        for label in labels:
            problem = convert.alias_problem(label)
            if problem:
                skipped.append(problem)
                continue
            conn.client.set_prompt_alias(target, label, number)
            aliases.append(label)
    return PushResult(
        prompt=local,
        version=version.number,
        mlflow_name=target,
        mlflow_version=number,
        created=existing is None,
        aliases=aliases,
        skipped_labels=skipped,
        jinja_marker=marker,
        url=conn.prompt_url(target, number),
    )


def _fetch(conn: mlc.Connection, name: str, version: int | None, alias: str | None) -> Any:
    """The MLflow prompt version asked for (the latest when neither version nor alias is given)."""
    if version is not None and alias:
        raise ValidationError("Give a version or an alias, not both.", field="version")
    with mlc.errors(conn.uri, f"reading prompt '{name}'"):
        versions = _versions(conn, name)
        if not versions:
            raise NotFoundError(f"MLflow has no prompt named '{name}' at {mlc.display_uri(conn.uri)}.")
        if alias:
            try:
                return conn.client.get_prompt_version_by_alias(name, alias)
            except Exception as exc:  # MLflow answers an unknown alias with a generic error
                if mlc.is_connection_failure(exc):
                    raise
                raise NotFoundError(
                    f"MLflow prompt '{name}' has no alias '{alias}'.", field="alias"
                ) from None
        if version is not None:
            chosen = [v for v in versions if int(v.version) == int(version)]
            if not chosen:
                top = max(int(v.version) for v in versions)
                raise NotFoundError(f"MLflow prompt '{name}' has no version {version} (versions 1..{top}).")
            return conn.client.get_prompt_version(name, int(version))
        newest = max(versions, key=lambda v: int(v.version))
        return conn.client.get_prompt_version(name, int(newest.version))


def pull(
    session: Session,
    name: str,
    *,
    version: int | None = None,
    alias: str | None = None,
    uri: str | None = None,
    local_name: str | None = None,
) -> PullResult:
    """Bring a registered MLflow prompt version in as a workbench version (see the module doc)."""
    conn = mlc.connect(uri)
    target = convert.mlflow_name(name)
    found = _fetch(conn, target, version, alias)
    tags = dict(found.tags or {})
    prompt_name = (local_name or tags.get(TAG + "prompt") or target).strip()
    messages = convert.from_mlflow_template(found.template)
    params, notes = convert.params_from(found.model_config)
    structured = {
        "response_format": found.response_format or None,
        "tools": _json_tag(tags, "tools"),
        "tool_choice": _json_tag(tags, "tool_choice"),
    }
    note = (
        found.commit_message or ""
    ).strip() or f"Pulled from MLflow prompt {target} version {found.version}"
    prompt = store.get_prompt(session, prompt_name)
    parent_id = None
    if prompt is not None and tags.get(TAG + "parent_hash"):
        parent_id = next(
            (
                v.id
                for v in store.versions_of(session, prompt.id)
                if v.content_hash == tags[TAG + "parent_hash"]
            ),
            None,
        )
    saved, created = store.save_version(
        session,
        prompt_name=prompt_name,
        messages=messages,
        params=params,
        note=note[:MAX_NOTE],
        source="mlflow",
        parent_id=parent_id,
        original_hash=tags.get(TAG + "content_hash"),
        **{k: v for k, v in structured.items() if v is not None},
    )
    if created and tags.get(TAG + "source") and tags[TAG + "source"] != "mlflow":
        saved.origin_source = tags[TAG + "source"]  # where the content was made before MLflow
        session.add(saved)
        session.flush()
    result = PullResult(
        prompt=prompt_name,
        number=saved.number,
        created=created,
        mlflow_name=target,
        mlflow_version=int(found.version),
        content_hash=saved.content_hash,
        notes=notes,
    )
    _labels(session, saved, list(found.aliases or []), result)
    return result


def _json_tag(tags: dict[str, str], name: str) -> Any:
    raw = tags.get(TAG + name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ValidationError(f"The MLflow tag {TAG + name} is not JSON.") from None


def _labels(session: Session, version: PromptVersion, aliases: list[str], result: PullResult) -> None:
    """Each alias as a label, where the prompt has no label of that name yet."""
    current = {lb.name: lb.version_id for lb in store.labels_of(session, version.prompt_id)}
    for alias in sorted(aliases):
        if alias in current:
            if current[alias] != version.id:
                result.labels_kept.append(f"'{alias}' already points at another version here")
            continue
        if not store.LABEL_RE.match(alias):
            result.labels_kept.append(f"alias '{alias}' is not a valid label name")
            continue
        store.set_label(session, version_id=version.id, label=alias, actor="mlflow")
        result.labels_set.append(alias)
