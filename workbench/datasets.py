"""Datasets: import from CSV / JSON / JSONL (all or nothing), list, show, edit, export."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, delete, func, select

from workbench.errors import ImportFileError, NotFoundError, ValidationError, json_problem
from workbench.models import Dataset, Example, utcnow
from workbench.prompts.store import check_name

MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
EXPECTED_ALIASES = ("expected", "expected_output", "answer", "label", "target")


@dataclass
class ParsedTable:
    """Rows read from a file, before they touch the database."""

    columns: list[str]
    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def _decode(data: bytes, filename: str) -> str:
    if not data.strip():
        raise ImportFileError(f"'{filename}' is empty.")
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(
            f"'{filename}' is {len(data) / 1e6:.1f} MB; the limit is {MAX_IMPORT_BYTES / 1e6:.0f} MB. "
            "Split it into smaller files."
        )
    try:
        return data.decode("utf-8-sig")  # tolerate the BOM Excel writes
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"'{filename}' is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r}). "
            "Save it as UTF-8 (in Excel: 'CSV UTF-8') and import again."
        ) from None


def _check_columns(columns: list[str], filename: str) -> list[str]:
    cleaned = [str(c).strip() for c in columns]
    if not cleaned or all(c == "" for c in cleaned):
        raise ImportFileError(f"'{filename}' has no header row with column names.")
    for i, c in enumerate(cleaned):
        if c == "":
            raise ImportFileError(f"'{filename}': column {i + 1} has no name in the header row.")
    dupes = sorted({c for c in cleaned if cleaned.count(c) > 1})
    if dupes:
        raise ImportFileError(
            f"'{filename}' has duplicate column names: {', '.join(dupes)}. Rename them and import again."
        )
    return cleaned


def parse_csv(text: str, filename: str = "file.csv") -> ParsedTable:
    """Parse CSV text with a header row; ragged rows are refused with their line number."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"'{filename}' is empty.") from None
    except csv.Error as exc:
        raise ImportFileError(f"'{filename}' is not valid CSV: {exc}.") from None
    columns = _check_columns(header, filename)
    rows = []
    try:
        for row in reader:
            if not row or all(v == "" for v in row):
                continue
            if len(row) != len(columns):
                raise ImportFileError(
                    f"'{filename}' line {reader.line_num}: {len(row)} values but the header has "
                    f"{len(columns)} columns. Fix that row (quote values that contain commas)."
                )
            rows.append(dict(zip(columns, row, strict=True)))
            if len(rows) > MAX_ROWS:
                raise ImportFileError(f"'{filename}' has more than {MAX_ROWS:,} rows.")
    except csv.Error as exc:
        raise ImportFileError(f"'{filename}' line {reader.line_num}: {exc}.") from None
    if not rows:
        raise ImportFileError(f"'{filename}' has a header but no rows.")
    return ParsedTable(columns, rows)


def _table_from_records(records: list[Any], filename: str) -> ParsedTable:
    if not records:
        raise ImportFileError(f"'{filename}' holds no rows.")
    columns: list[str] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise ImportFileError(f"'{filename}' row {i + 1} is not an object with named fields.")
        for key in rec:
            if key not in columns:
                columns.append(str(key))
    columns = _check_columns(columns, filename)
    if len(records) > MAX_ROWS:
        raise ImportFileError(f"'{filename}' has more than {MAX_ROWS:,} rows.")
    return ParsedTable(columns, [dict(r) for r in records])


def parse_json(text: str, filename: str = "file.json") -> ParsedTable:
    """Parse a JSON array of objects (or {"rows": [...]})."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"'{filename}' is not valid JSON: {json_problem(exc)}.") from None
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if not isinstance(data, list):
        raise ImportFileError(f"'{filename}' must hold a JSON array of objects, one per row.")
    return _table_from_records(data, filename)


def parse_jsonl(text: str, filename: str = "file.jsonl") -> ParsedTable:
    """Parse JSON Lines: one object per line."""
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"'{filename}' line {n} is not valid JSON: {exc.msg}.") from None
    return _table_from_records(records, filename)


def parse_file(data: bytes, filename: str) -> ParsedTable:
    """Parse an uploaded or local file by its extension (.csv, .json, .jsonl)."""
    text = _decode(data, filename)
    lower = filename.lower()
    if lower.endswith(".csv") or lower.endswith(".tsv"):
        return parse_csv(text, filename)
    if lower.endswith(".jsonl") or lower.endswith(".ndjson"):
        return parse_jsonl(text, filename)
    if lower.endswith(".json"):
        return parse_json(text, filename)
    raise ImportFileError(f"'{filename}': use a .csv, .json or .jsonl file.")


def guess_expected_column(columns: list[str]) -> str | None:
    """The column that most likely holds expected answers, if any."""
    lower = {c.lower(): c for c in columns}
    return next((lower[a] for a in EXPECTED_ALIASES if a in lower), None)


def _cell(value: Any) -> Any:
    # Keep strings and numbers as they are; nested JSON stays structured for templates.
    return value


def create_dataset(
    session: Session,
    *,
    name: str,
    table: ParsedTable,
    expected_column: str | None = None,
    mapping: dict[str, str] | None = None,
    description: str = "",
) -> Dataset:
    """Create a dataset from parsed rows in one transaction.

    `mapping` renames file columns to template variables (columns mapped to "" are dropped);
    `expected_column` (a file column) becomes each row's expected answer.
    """
    name = check_name(name, "Dataset")
    if session.exec(select(Dataset).where(Dataset.name == name)).first():
        raise ValidationError(f"A dataset named '{name}' already exists; pick another name.")
    if expected_column and expected_column not in table.columns:
        raise ValidationError(
            f"Column '{expected_column}' (expected answers) is not in the file; columns: "
            f"{', '.join(table.columns)}."
        )
    mapping = mapping or {}
    for src in mapping:
        if src not in table.columns:
            raise ValidationError(f"Mapped column '{src}' is not in the file.")
    targets = [mapping.get(c, c) for c in table.columns if c != expected_column]
    targets = [t for t in targets if t]
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise ValidationError(f"Two columns map to the same variable: {', '.join(dupes)}.")
    dataset = Dataset(name=name, description=description, columns=targets)
    session.add(dataset)
    session.flush()
    examples = []
    for pos, row in enumerate(table.rows):
        inputs = {}
        for c in table.columns:
            if c == expected_column:
                continue
            target = mapping.get(c, c)
            if target:
                inputs[target] = _cell(row.get(c))
        expected = row.get(expected_column) if expected_column else None
        examples.append(
            Example(
                dataset_id=dataset.id,
                position=pos,
                inputs=inputs,
                expected=None if expected in (None, "") else str(expected),
            )
        )
    session.add_all(examples)
    session.flush()
    return dataset


def get_dataset(session: Session, name: str) -> Dataset | None:
    """The dataset called `name`, or None."""
    return session.exec(select(Dataset).where(Dataset.name == name)).first()


def require_dataset(session: Session, name: str) -> Dataset:
    """The dataset called `name`; NotFoundError names the datasets that exist."""
    ds = get_dataset(session, name)
    if ds is None:
        names = [d.name for d in list_datasets(session)][:10]
        hint = f" Datasets: {', '.join(names)}." if names else " There are no datasets yet."
        raise NotFoundError(f"No dataset named '{name}'.{hint}")
    return ds


def list_datasets(session: Session) -> list[Dataset]:
    """All datasets by name."""
    return list(session.exec(select(Dataset).order_by(Dataset.name)))


def row_counts(session: Session) -> dict[int, tuple[int, int]]:
    """Map dataset id -> (rows, labelled rows)."""
    stmt = select(Example.dataset_id, func.count(), func.count(Example.expected)).group_by(Example.dataset_id)
    return {did: (n, labelled) for did, n, labelled in session.exec(stmt)}


@dataclass(frozen=True)
class DatasetFit:
    """A dataset, and which of the variables a prompt needs it has no column for."""

    name: str
    missing: tuple[str, ...] = ()

    @property
    def covers(self) -> bool:
        """Every needed variable has a column: planning a sweep on it finds no missing variable."""
        return not self.missing


def fit_for_variables(session: Session, variables: list[str]) -> list[DatasetFit]:
    """Every dataset, those whose columns cover `variables` first, then by fewest missing; by name within."""
    needed = list(dict.fromkeys(variables))
    fits = [
        DatasetFit(d.name, tuple(v for v in needed if v not in d.columns)) for d in list_datasets(session)
    ]
    return sorted(fits, key=lambda f: len(f.missing))  # stable: list_datasets is by name


def examples_of(session: Session, dataset_id: int, *, limit: int | None = None) -> list[Example]:
    """Rows of a dataset in order."""
    stmt = select(Example).where(Example.dataset_id == dataset_id).order_by(Example.position)
    if limit:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def examples_by_id(session: Session, ids: list[int]) -> dict[int, Example]:
    """Rows by id (chunked IN queries, for sweeps with many rows)."""
    out: dict[int, Example] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        out.update({e.id: e for e in session.exec(select(Example).where(col(Example.id).in_(chunk)))})
    return out


def _clean_row(row: dict[str, Any], expected_key: str) -> tuple[int | None, dict[str, Any], str | None]:
    row = dict(row)
    ex_id = row.pop("_id", None)
    expected = row.pop(expected_key, None)
    inputs = {k: v for k, v in row.items() if k}
    is_nan = isinstance(expected, float) and expected != expected  # pandas' empty cell
    expected = None if expected in (None, "") or is_nan else str(expected)
    return (int(ex_id) if ex_id is not None else None), inputs, expected


def replace_rows(
    session: Session, *, dataset_id: int, rows: list[dict[str, Any]], expected_key: str = "expected"
) -> int:
    """Replace a dataset's rows (the editor's explicit save).

    Rows are matched by their `_id` key: matched rows are updated in place, rows without `_id`
    are added, missing rows are deleted. A row that sweep results point at is never changed or
    deleted — that would rewrite what those results answered — and the whole save is refused
    with the row numbers; save the edits as a new dataset instead (`copy_dataset`).
    """
    from workbench.models import Run

    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFoundError(f"Dataset id {dataset_id} does not exist.")
    existing = {e.id: e for e in examples_of(session, dataset_id)}
    parsed = [_clean_row(r, expected_key) for r in rows]
    kept = {ex_id for ex_id, _, _ in parsed if ex_id in existing}
    changed = [
        ex_id
        for ex_id, inputs, expected in parsed
        if ex_id in existing and (existing[ex_id].inputs != inputs or existing[ex_id].expected != expected)
    ]
    touched = changed + [i for i in existing if i not in kept]
    if touched:
        used: set[int] = set()
        for start in range(0, len(touched), 500):
            chunk = touched[start : start + 500]
            used |= set(session.exec(select(Run.example_id).where(col(Run.example_id).in_(chunk)).distinct()))
        if used:
            numbers = sorted(existing[i].position + 1 for i in used)
            shown = ", ".join(str(n) for n in numbers[:10]) + (" ..." if len(numbers) > 10 else "")
            raise ValidationError(
                f"Rows {shown} have sweep results; changing or deleting them would rewrite what those "
                "results answered. Nothing was saved: save your edits as a new dataset instead."
            )
    columns: list[str] = []
    for pos, (ex_id, inputs, expected) in enumerate(parsed):
        columns += [k for k in inputs if k not in columns]
        if ex_id in existing:
            ex = existing[ex_id]
            ex.inputs, ex.expected, ex.position = inputs, expected, pos
            session.add(ex)
        else:
            session.add(Example(dataset_id=dataset_id, position=pos, inputs=inputs, expected=expected))
    gone = [i for i in existing if i not in kept]
    for start in range(0, len(gone), 500):
        session.exec(delete(Example).where(col(Example.id).in_(gone[start : start + 500])))
    dataset.columns = columns
    dataset.updated_at = utcnow()
    session.add(dataset)
    session.flush()
    return len(rows)


def copy_dataset(
    session: Session,
    *,
    name: str,
    rows: list[dict[str, Any]],
    description: str = "",
    expected_key: str = "expected",
) -> Dataset:
    """A new dataset from edited rows (row ids are ignored): how a used dataset gets a new version."""
    parsed = [_clean_row(r, expected_key) for r in rows]
    columns: list[str] = []
    for _, inputs, _ in parsed:
        columns += [k for k in inputs if k not in columns]
    records = [{**inputs, "__expected__": expected} for _, inputs, expected in parsed]
    table = ParsedTable([*columns, "__expected__"], records)
    if not records:
        raise ValidationError("A dataset needs at least one row.")
    return create_dataset(
        session, name=name, table=table, expected_column="__expected__", description=description
    )


def export_rows(session: Session, dataset_id: int) -> list[dict[str, Any]]:
    """Rows as flat dicts (variables plus `expected`), for CSV / JSON export."""
    return [{**ex.inputs, "expected": ex.expected} for ex in examples_of(session, dataset_id)]


def to_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """CSV text of flat rows; cells a spreadsheet would run as a formula are neutralised.

    `columns` come first, in order, and give a header even when there are no rows; any other key
    of the rows follows in the order it first appears.
    """
    header = dict.fromkeys(columns or [])
    for r in rows:
        header.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(header), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: neutralise_formula(v) for k, v in r.items()})
    return buf.getvalue()


def neutralise_formula(value: Any) -> Any:
    """Prefix a quote to text a spreadsheet would evaluate (=, +, -, @, tab, CR)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value and value[0] in "=+-@\t\r":
        return "'" + value
    return value
