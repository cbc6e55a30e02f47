"""Import versions from a JSON export: validated as a whole, applied in one transaction, never overwriting.

A file is checked against the schema of its `schema_version` (`release/schemas/export-v2.schema.json`,
or v1 for files written before versions carried response formats and tools), its templates must parse
and its response formats and tools must be valid, before anything is written; the first problem is
reported with its JSON path, e.g. `$.versions[3].messages[0].role`. Then, per prompt in file order:

- content already present in the prompt (same content hash) is recognised and not duplicated;
- new content becomes a new version after the existing ones (source "import", original_hash = the
  file's content hash, parent mapped when the parent was imported or exists);
- a prompt that does not exist is created;
- a different history (the file's version N has another hash than the database's version N) is a
  conflict: the imported version is still added as a new version, nothing is overwritten, and the
  conflict is reported;
- a label is set only when the prompt has no label of that name yet; otherwise it is reported.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import Session, select

from workbench.errors import ImportFileError, WorkbenchError, json_problem
from workbench.models import Label, Prompt, PromptVersion
from workbench.prompts import conversation, store, structured, templates
from workbench.release.export import READABLE_VERSIONS, SCHEMA_VERSION, load_schema

MAX_IMPORT_BYTES = 50 * 1024 * 1024


class ImportSchemaError(ImportFileError):
    """A file that is not a valid workbench export; `path` locates the first problem."""

    def __init__(self, message: str, *, path: str = "$"):
        self.path = path
        self.detail = message
        super().__init__(f"Not imported (nothing was changed): at {path}: {message}")


@dataclass
class ImportResult:
    """What an import did (or, for a dry run, would do)."""

    dry_run: bool = False
    created_prompts: list[str] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    labels_set: list[dict[str, Any]] = field(default_factory=list)
    labels_kept: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """A human summary, one line per fact."""
        verb = "would add" if self.dry_run else "added"
        out = [
            f"{len(self.added)} versions {verb}, {len(self.unchanged)} already present, "
            f"{len(self.conflicts)} conflicts, {len(self.created_prompts)} new prompts."
        ]
        out += [
            f"{'would add' if self.dry_run else 'added'} {a['prompt']}@{a['number']} "
            f"(file version {a['file_version']})"
            for a in self.added
        ]
        out += [
            f"present: {u['prompt']}@{u['number']} = file version {u['file_version']}" for u in self.unchanged
        ]
        out += [f"conflict: {c['message']}" for c in self.conflicts]
        out += [f"label {x['prompt']}:{x['label']} -> @{x['number']}" for x in self.labels_set]
        out += [f"label kept: {x['message']}" for x in self.labels_kept]
        out += [f"warning: {w}" for w in self.warnings]
        return out


# --- reading and validating -------------------------------------------------------------------


def json_path(parts: Any) -> str:
    """A location in JSON: ['versions', 3, 'role'] -> '$.versions[3].role'."""
    out = "$"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif str(p).isidentifier():
            out += f".{p}"
        else:
            out += f"[{json.dumps(str(p))}]"
    return out


def _path_key(error) -> tuple:
    # Document order: integers compare as numbers, so versions[10] comes after versions[2].
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path)


def parse_document(data: bytes | str, filename: str = "export.json") -> dict[str, Any]:
    """Parse and validate an export file; ImportSchemaError locates the first problem."""
    if isinstance(data, bytes):
        if len(data) > MAX_IMPORT_BYTES:
            raise ImportSchemaError(f"'{filename}' is larger than {MAX_IMPORT_BYTES // 1_000_000} MB.")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportSchemaError(f"'{filename}' is not UTF-8 text (byte {exc.start}).") from None
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ImportSchemaError(f"'{filename}' is not valid JSON: {json_problem(exc)}.") from None
    validate_document(doc)
    return doc


def validate_document(doc: Any) -> None:
    """Check a parsed document against the export schema and the template syntax."""
    from jsonschema import Draft202012Validator

    if not isinstance(doc, dict):
        raise ImportSchemaError("the file must hold a JSON object (a workbench export), not a list or value.")
    version = doc.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        shown = json.dumps(version) if "schema_version" in doc else "missing"
        readable = " or ".join(str(v) for v in READABLE_VERSIONS)
        raise ImportSchemaError(
            f"schema_version is {shown}; this workbench reads schema_version {readable} (it writes "
            f"{SCHEMA_VERSION}). Export the versions again with this workbench, or upgrade the workbench "
            "that reads them.",
            path="$.schema_version",
        )
    errors = sorted(Draft202012Validator(load_schema(version)).iter_errors(doc), key=_path_key)
    if errors:
        first = errors[0]
        raise ImportSchemaError(first.message, path=json_path(first.absolute_path))
    seen: dict[tuple[str, int], int] = {}
    for i, rec in enumerate(doc["versions"]):
        key = (rec["prompt"], rec["version"])
        if key in seen:
            raise ImportSchemaError(
                f"{rec['prompt']} version {rec['version']} appears twice (also at $.versions[{seen[key]}]).",
                path=f"$.versions[{i}].version",
            )
        seen[key] = i
        try:
            store.check_name(rec["prompt"])
        except WorkbenchError as exc:
            raise ImportSchemaError(str(exc), path=f"$.versions[{i}].prompt") from None
        for j, msg in enumerate(rec["messages"]):
            try:
                if conversation.placeholder_entry(msg, j) is None:
                    templates.parse(msg["content"], message_index=j)
            except ValueError as exc:  # a placeholder whose variable name is not a plain name
                raise ImportSchemaError(str(exc), path=f"$.versions[{i}].messages[{j}].content") from None
            except WorkbenchError as exc:
                raise ImportSchemaError(str(exc), path=f"$.versions[{i}].messages[{j}].content") from None
        try:
            store.check_params(rec["params"])
        except (WorkbenchError, TypeError, ValueError) as exc:
            raise ImportSchemaError(str(exc), path=f"$.versions[{i}].params") from None
        try:
            _structured_of(rec)
        except structured.StructuredError as exc:
            where = f"$.versions[{i}].{exc.field}" + exc.path[1:]
            raise ImportSchemaError(exc.detail, path=where) from None
        for k, label in enumerate(rec["labels"]):
            if not store.LABEL_RE.match(label):
                raise ImportSchemaError(
                    f"label '{label}' is not allowed.", path=f"$.versions[{i}].labels[{k}]"
                )


# --- applying ---------------------------------------------------------------------------------


def import_document(session: Session, doc: dict[str, Any], *, dry_run: bool = False) -> ImportResult:
    """Import a validated document's versions in one transaction (a savepoint rolled back on dry run).

    Any error leaves the database as it was.
    """
    validate_document(doc)
    result = ImportResult(dry_run=dry_run)
    if doc.get("runs") or doc.get("ratings"):
        result.warnings.append("The file's runs and ratings are not imported; only its versions are.")
    nested = session.begin_nested()
    try:
        _apply(session, doc, result)
        session.flush()
    except BaseException:
        nested.rollback()
        raise
    if dry_run:
        nested.rollback()
    else:
        nested.commit()
    return result


def _apply(session: Session, doc: dict[str, Any], result: ImportResult) -> None:
    # (prompt, file content hash) -> version id in this database, for parent mapping.
    mapped: dict[tuple[str, str], int] = {}
    added_ids: set[int] = set()
    orphans: list[tuple[PromptVersion, dict[str, Any]]] = []  # parent later in the file
    records = sorted(enumerate(doc["versions"]), key=lambda item: (item[1]["prompt"], item[1]["version"]))
    pending_labels: list[tuple[str, str, int, int]] = []
    for index, rec in records:
        name = rec["prompt"]
        prompt = store.get_prompt(session, name)
        if prompt is None:
            prompt = store.create_prompt(session, name=name, description=rec.get("prompt_description", ""))
            result.created_prompts.append(name)
        msgs = templates.check_messages(rec["messages"])
        params, extra = _structured_of(rec)
        params = store.check_params(params)
        digest = templates.content_hash(msgs, params, **extra.to_dict())
        if digest != rec["content_hash"]:
            result.warnings.append(
                f"$.versions[{index}] ({name} version {rec['version']}): content_hash does not match the "
                "messages and params (the file was edited after export); imported by its content."
            )
        existing = session.exec(
            select(PromptVersion).where(
                PromptVersion.prompt_id == prompt.id, PromptVersion.content_hash == digest
            )
        ).first()
        if existing is not None:
            mapped[(name, rec["content_hash"])] = existing.id
            result.unchanged.append(
                {"prompt": name, "file_version": rec["version"], "number": existing.number}
            )
        else:
            same_number = session.exec(
                select(PromptVersion).where(
                    PromptVersion.prompt_id == prompt.id, PromptVersion.number == rec["version"]
                )
            ).first()
            parent_id = _parent_id(session, rec, mapped)
            version = _add_version(session, prompt, rec, msgs, params, extra, digest, parent_id)
            mapped[(name, rec["content_hash"])] = version.id
            added_ids.add(version.id)
            if parent_id is None and rec.get("parent"):
                orphans.append((version, rec))
            result.added.append(
                {"prompt": name, "file_version": rec["version"], "number": version.number, "hash": digest}
            )
            if same_number is not None and same_number.id not in added_ids:
                result.conflicts.append(
                    {
                        "prompt": name,
                        "file_version": rec["version"],
                        "db_version": same_number.number,
                        "imported_as": version.number,
                        "message": (
                            f"{name}@{rec['version']} in the file differs from {name}@{same_number.number} "
                            f"here (another history); kept both: the file's is now {name}@{version.number}."
                        ),
                    }
                )
        for label in rec["labels"]:
            pending_labels.append((name, label, mapped[(name, rec["content_hash"])], rec["version"]))
    for version, rec in orphans:
        # Still part of creating the version: its parent came later in the file.
        version.parent_id = _parent_id(session, rec, mapped)
        session.add(version)
    for name, label, version_id, file_version in pending_labels:
        _import_label(session, result, name, label, version_id, file_version)


def _parent_id(session: Session, rec: dict[str, Any], mapped: dict[tuple[str, str], int]) -> int | None:
    parent = rec.get("parent")
    if not parent:
        return None
    hit = mapped.get((parent["prompt"], parent["content_hash"]))
    if hit is not None:
        return hit
    prompt = store.get_prompt(session, parent["prompt"])
    if prompt is None:
        return None
    for col_ in (PromptVersion.content_hash, PromptVersion.original_hash):
        row = session.exec(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id, col_ == parent["content_hash"])
        ).first()
        if row is not None:
            return row.id
    return None


def _structured_of(rec: dict[str, Any]) -> tuple[dict[str, Any], structured.Structured]:
    """A record's params and its checked response format / tools / tool choice (absent in v1 files)."""
    return store.split_structured(
        rec["params"],
        response_format=rec.get("response_format"),
        tools=rec.get("tools"),
        tool_choice=rec.get("tool_choice"),
    )


def _add_version(
    session: Session,
    prompt: Prompt,
    rec: dict[str, Any],
    msgs: list[dict[str, str]],
    params: dict[str, Any],
    extra: structured.Structured,
    digest: str,
    parent_id: int | None,
) -> PromptVersion:
    # Not store.save_version: an imported version's parent is what the file says (or none),
    # never "the latest version here".
    latest = store.latest_version(session, prompt.id)
    version = PromptVersion(
        prompt_id=prompt.id,
        number=(latest.number + 1) if latest else 1,
        messages=msgs,
        params=params,
        variables=templates.message_variables(msgs),
        **extra.to_dict(),
        content_hash=digest,
        original_hash=rec["content_hash"],
        parent_id=parent_id,
        source="import",
        origin_source=rec.get("source"),
        note=rec.get("note", ""),
    )
    session.add(version)
    session.flush()
    return version


def _import_label(
    session: Session, result: ImportResult, name: str, label: str, version_id: int, file_version: int
) -> None:
    prompt = store.get_prompt(session, name)
    row = session.exec(select(Label).where(Label.prompt_id == prompt.id, Label.name == label)).first()
    target = session.get(PromptVersion, version_id)
    if row is None:
        store.set_label(session, version_id=version_id, label=label, actor="import")
        result.labels_set.append({"prompt": name, "label": label, "number": target.number})
    elif row.version_id != version_id:
        current = session.get(PromptVersion, row.version_id)
        result.labels_kept.append(
            {
                "prompt": name,
                "label": label,
                "number": current.number,
                "file_number": target.number,
                "message": (
                    f"{name}:{label} stays at @{current.number}; the file points it at its version "
                    f"{file_version} (here @{target.number}). Move the label to @{target.number} "
                    "yourself if the file's choice should win."
                ),
            }
        )


def import_file(session: Session, data: bytes | str, *, filename: str = "export.json", dry_run: bool = False):
    """Parse, validate and import an export file; returns an ImportResult."""
    return import_document(session, parse_document(data, filename), dry_run=dry_run)
