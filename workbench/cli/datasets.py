"""`python -m workbench dataset import|list|show`: rows of template variables, optionally labelled."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.common import ensure_db, print_json, session, show_help


def cmd_import(args: argparse.Namespace) -> int:
    """Import a CSV, JSON or JSONL file as a new dataset."""
    from workbench import datasets

    ensure_db()
    path = Path(args.file)
    if not path.exists():
        from workbench.errors import ImportFileError

        raise ImportFileError(f"No such file: {path}")
    table = datasets.parse_file(path.read_bytes(), path.name)
    expected = args.expected
    if expected is None:
        expected = datasets.guess_expected_column(table.columns)
    if args.expected == "":  # an explicit '' means: this dataset has no expected answers
        expected = None
    with session() as s:
        ds = datasets.create_dataset(s, name=args.name, table=table, expected_column=expected)
        n = len(table.rows)
    labelled = f", expected answers from '{expected}'" if expected else ", no expected column"
    print(f"Imported {n} rows into dataset '{ds.name}' (variables: {', '.join(ds.columns)}{labelled}).")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List datasets with their row counts and variables."""
    from workbench import datasets

    ensure_db()
    with session() as s:
        counts = datasets.row_counts(s)
        rows = [
            {
                "name": d.name,
                "rows": counts.get(d.id, (0, 0))[0],
                "labelled": counts.get(d.id, (0, 0))[1],
                "columns": d.columns,
            }
            for d in datasets.list_datasets(s)
        ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No datasets yet. Import one: python -m workbench dataset import NAME FILE.csv")
        return 0
    from workbench.cli.table import table

    print(
        table(
            ["dataset", "rows", "labelled", "variables"],
            [(r["name"], r["rows"], r["labelled"], ", ".join(r["columns"])) for r in rows],
        )
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show a dataset's rows (the first --limit of them as a table, or all as JSON)."""
    from workbench import datasets

    ensure_db()
    with session() as s:
        ds = datasets.require_dataset(s, args.name)
        rows = datasets.export_rows(s, ds.id)
    if args.json:
        print_json(rows)
        return 0
    from workbench.cli.table import table

    shown = rows[: args.limit]
    print(
        table(
            ["#", *ds.columns, "expected"],
            [(i + 1, *(r.get(c) for c in ds.columns), r.get("expected")) for i, r in enumerate(shown)],
        )
    )
    if len(rows) > len(shown):
        print(f"... {len(rows) - len(shown)} more rows (use --limit)")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `dataset import|list|show`."""
    ds = sub.add_parser("dataset", help="Import, list and show datasets.")
    verbs = ds.add_subparsers(dest="dataset_command", metavar="ACTION")
    c = verbs.add_parser("import", help="Import a CSV, JSON or JSONL file as a new dataset.")
    c.add_argument("name", help="Dataset name.")
    c.add_argument("file", help="The .csv, .json or .jsonl file.")
    c.add_argument(
        "--expected", help="Column with expected answers (default: 'expected' if present; '' for none)."
    )
    c.set_defaults(func=cmd_import)
    c = verbs.add_parser("list", help="List datasets.")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_list)
    c = verbs.add_parser("show", help="Show a dataset's rows.")
    c.add_argument("name", help="Dataset name.")
    c.add_argument("--limit", type=int, default=20, help="Rows to show (default 20).")
    c.add_argument("--json", action="store_true", help="Print JSON (all rows).")
    c.set_defaults(func=cmd_show)
    ds.set_defaults(func=show_help(ds))
