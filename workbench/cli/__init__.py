"""`python -m workbench`: the command line over the core library.

Imports are lazy so `--help` answers fast; every WorkbenchError becomes a one-line message on
stderr and exit code 2 (usage/input) or 1 (the work itself failed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _session():
    from workbench.db import session_scope

    return session_scope()


def _ensure_db() -> None:
    from workbench.db import migrate

    migrate()


def _parse_vars(pairs: list[str] | None) -> dict[str, Any]:
    from workbench.errors import ValidationError

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValidationError(f"--var '{pair}' must look like name=value.")
        key, value = pair.split("=", 1)
        if value.startswith("@"):  # --var text=@file.txt reads a file
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValidationError(f"--var {key}: cannot read {value[1:]}: {exc.strerror}.") from None
        out[key.strip()] = value
    return out


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# --- commands -------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from workbench import config
    from workbench.db import migrate
    from workbench.prompts.examples import load_examples

    revision = migrate()
    print(f"Database ready at {config.database_url()} (schema {revision}).")
    if not args.no_examples:
        with _session() as s:
            added = load_examples(s)
        print("Loaded examples: " + ", ".join(added) if added else "Examples already loaded.")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from workbench.providers.catalog import list_models

    models = list_models()
    if args.json:
        _print_json([m.public_dict() for m in models])
        return 0
    from workbench.cli.table import table

    rows = [
        (
            m.id,
            m.kind,
            "chat" if m.chat else "completion",
            "ready" if m.available else m.unavailable_reason,
            m.max_concurrency,
            _price(m),
        )
        for m in models
    ]
    print(table(["model", "kind", "type", "status", "concurrency", "price in/out per 1M"], rows))
    return 0


def _price(m: Any) -> str:
    if m.input_price_per_million is not None and m.output_price_per_million is not None:
        return f"${m.input_price_per_million:g} / ${m.output_price_per_million:g}"
    return "LiteLLM table"


def cmd_prompt_add(args: argparse.Namespace) -> int:
    from workbench.prompts.files import load_prompt_file
    from workbench.prompts.store import store

    _ensure_db()
    pf = load_prompt_file(Path(args.file))
    name = args.name or pf.name
    with _session() as s:
        version, created = store.save_version(
            s, prompt_name=name, messages=pf.messages, params=pf.params, note=args.note or pf.note
        )
        ref = f"{name}@{version.number}"
    if created:
        print(f"Saved {ref} (variables: {', '.join(version.variables) or 'none'}).")
    else:
        print(f"Unchanged: identical to {ref}; no new version saved.")
    return 0


def cmd_prompt_list(args: argparse.Namespace) -> int:
    from workbench.prompts.store import store

    _ensure_db()
    with _session() as s:
        counts = store.version_counts(s)
        rows = []
        for p in store.list_prompts(s):
            latest = store.latest_version(s, p.id)
            labels = (
                ", ".join(
                    f"{lb.name}->@{s.get(type(latest), lb.version_id).number}"
                    for lb in store.labels_of(s, p.id)
                )
                if latest
                else ""
            )
            rows.append(
                {
                    "name": p.name,
                    "versions": counts.get(p.id, 0),
                    "latest": latest.number if latest else None,
                    "labels": labels,
                    "variables": latest.variables if latest else [],
                }
            )
    if args.json:
        _print_json(rows)
        return 0
    from workbench.cli.table import table

    if not rows:
        print("No prompts yet. Add one: python -m workbench prompt add NAME --file prompt.yaml")
        return 0
    print(
        table(
            ["prompt", "versions", "latest", "labels", "variables"],
            [(r["name"], r["versions"], r["latest"], r["labels"], ", ".join(r["variables"])) for r in rows],
        )
    )
    return 0


def cmd_prompt_show(args: argparse.Namespace) -> int:
    from workbench.prompts.store import store

    _ensure_db()
    with _session() as s:
        v = store.resolve(s, args.ref)
        prompt = s.get(store.Prompt, v.prompt_id)
        labels = store.labels_by_version(s, v.prompt_id).get(v.id, [])
        parent = s.get(store.PromptVersion, v.parent_id) if v.parent_id else None
        data = {
            "prompt": prompt.name,
            "version": v.number,
            "labels": labels,
            "messages": v.messages,
            "params": v.params,
            "variables": v.variables,
            "content_hash": v.content_hash,
            "parent": parent.number if parent else None,
            "source": v.source,
            "note": v.note,
            "created_at": v.created_at.isoformat(),
        }
        if args.diff is not None:
            from workbench.prompts.diff import unified

            other = store.resolve(s, f"{prompt.name}@{args.diff}")
            diff_text = unified(
                other, v, a_name=f"{prompt.name}@{other.number}", b_name=f"{prompt.name}@{v.number}"
            )
    if args.diff is not None:
        print(diff_text or "No differences.")
        return 0
    if args.json:
        _print_json(data)
        return 0
    print(
        f"{data['prompt']}@{data['version']}  labels: {', '.join(labels) or '-'}  "
        f"parent: {data['parent'] or '-'}  source: {data['source']}"
    )
    if data["note"]:
        print(f"note: {data['note']}")
    print(f"variables: {', '.join(data['variables']) or '-'}")
    print(f"params: {json.dumps(data['params'])}")
    for m in data["messages"]:
        print(f"--- {m['role']}")
        print(m["content"])
    return 0


def cmd_prompt_label(args: argparse.Namespace) -> int:
    from workbench.prompts.store import store

    _ensure_db()
    with _session() as s:
        v = store.resolve(s, args.ref)
        prompt = s.get(store.Prompt, v.prompt_id)
        store.set_label(s, version_id=v.id, label=args.label, actor=args.actor or "cli")
    print(f"{prompt.name}:{args.label} -> version {v.number}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from workbench.prompts.store import store

    _ensure_db()
    variables = _parse_vars(args.var)
    with _session() as s:
        v = store.resolve(s, args.ref)
    rendered = store.render_version(v, variables)
    if args.json:
        _print_json(rendered)
    else:
        for m in rendered:
            print(f"--- {m['role']}")
            print(m["content"])
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    from workbench.prompts.store import store
    from workbench.providers.catalog import require_callable
    from workbench.providers.completion import complete

    entry = require_callable(args.model)
    if args.prompt:
        _ensure_db()
        with _session() as s:
            v = store.resolve(s, args.prompt)
        messages = store.render_version(v, _parse_vars(args.var))
        params = {k: val for k, val in v.params.items() if k != "model"}
    elif args.message:
        messages = [{"role": "user", "content": args.message}]
        params = {}
    else:
        from workbench.errors import ValidationError

        raise ValidationError("Give --prompt NAME[@N|:label] (with --var k=v) or --message TEXT.")
    for key in ("temperature", "max_tokens", "top_p", "seed"):
        value = getattr(args, key)
        if value is not None:
            params[key] = value
    result = complete(entry.id, messages, params, entry=entry, stream=not args.no_stream)
    if args.json:
        _print_json(result.to_dict())
        return 0
    print(result.text)
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    ttft = f", ttft {result.ttft_ms:.0f} ms" if result.ttft_ms is not None else ""
    print(
        f"\n[{result.model}: {result.prompt_tokens} prompt + {result.completion_tokens} completion "
        f"tokens, {result.latency_ms:.0f} ms{ttft}, cost {cost}, finish {result.finish_reason}]",
        file=sys.stderr,
    )
    return 0


def cmd_dataset_import(args: argparse.Namespace) -> int:
    from workbench import datasets

    _ensure_db()
    path = Path(args.file)
    if not path.exists():
        from workbench.errors import ImportFileError

        raise ImportFileError(f"No such file: {path}")
    table = datasets.parse_file(path.read_bytes(), path.name)
    expected = args.expected
    if expected is None:
        expected = datasets.guess_expected_column(table.columns)
    if args.expected == "":
        expected = None
    with _session() as s:
        ds = datasets.create_dataset(s, name=args.name, table=table, expected_column=expected)
        n = len(table.rows)
    labelled = f", expected answers from '{expected}'" if expected else ", no expected column"
    print(f"Imported {n} rows into dataset '{ds.name}' (variables: {', '.join(ds.columns)}{labelled}).")
    return 0


def cmd_dataset_list(args: argparse.Namespace) -> int:
    from workbench import datasets

    _ensure_db()
    with _session() as s:
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
        _print_json(rows)
        return 0
    from workbench.cli.table import table

    if not rows:
        print("No datasets yet. Import one: python -m workbench dataset import NAME FILE.csv")
        return 0
    print(
        table(
            ["dataset", "rows", "labelled", "variables"],
            [(r["name"], r["rows"], r["labelled"], ", ".join(r["columns"])) for r in rows],
        )
    )
    return 0


def cmd_dataset_show(args: argparse.Namespace) -> int:
    from workbench import datasets

    _ensure_db()
    with _session() as s:
        ds = datasets.require_dataset(s, args.name)
        rows = datasets.export_rows(s, ds.id)
    if args.json:
        _print_json(rows)
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


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command (each has help text; tests check that)."""
    p = argparse.ArgumentParser(
        prog="python -m workbench",
        description="Prompt Workbench: versioned prompts, datasets and model calls.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("init", help="Create or upgrade the database and load the bundled examples.")
    c.add_argument("--no-examples", action="store_true", help="Do not load the example prompts/datasets.")
    c.set_defaults(func=cmd_init)

    c = sub.add_parser("models", help="List the models you can call now (local ones always).")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_models)

    prompt = sub.add_parser("prompt", help="Add, list, show and label prompt versions.")
    psub = prompt.add_subparsers(dest="prompt_command", metavar="ACTION")
    c = psub.add_parser(
        "add", help="Save a prompt file as a new version (JSON/YAML, or .j2 as one user message)."
    )
    c.add_argument("name", nargs="?", help="Prompt name (default: the file's 'name').")
    c.add_argument("--file", required=True, help="JSON/YAML with messages + params, or a .j2 template.")
    c.add_argument("--note", default="", help="A note stored with the version.")
    c.set_defaults(func=cmd_prompt_add)
    c = psub.add_parser("list", help="List prompts with version counts and labels.")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_prompt_list)
    c = psub.add_parser("show", help="Show a version: NAME, NAME@N or NAME:label.")
    c.add_argument("ref", help="NAME, NAME@N or NAME:label.")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.add_argument("--diff", type=int, metavar="N", help="Print a unified diff from version N to this one.")
    c.set_defaults(func=cmd_prompt_show)
    c = psub.add_parser("label", help="Point a label (production, staging, ...) at NAME@N.")
    c.add_argument("ref", help="NAME@N (or NAME:other-label).")
    c.add_argument("label", help="The label to set or move.")
    c.add_argument("--actor", help="Who moved it (kept in the label history).")
    c.set_defaults(func=cmd_prompt_label)
    prompt.set_defaults(func=lambda a: _help(prompt))

    c = sub.add_parser("render", help="Render a version with variables and print the messages.")
    c.add_argument("ref", help="NAME, NAME@N or NAME:label.")
    c.add_argument("--var", action="append", metavar="K=V", help="A variable; V may be @file.")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_render)

    c = sub.add_parser("complete", help="Call a model once with a rendered prompt or a message.")
    c.add_argument("model", help="Model id, e.g. local/smollm2-135m-instruct.")
    c.add_argument("--prompt", help="NAME, NAME@N or NAME:label to render.")
    c.add_argument("--var", action="append", metavar="K=V", help="A variable; V may be @file.")
    c.add_argument("--message", help="A plain user message instead of a prompt.")
    c.add_argument("--temperature", type=float, help="Sampling temperature.")
    c.add_argument("--max-tokens", dest="max_tokens", type=int, help="Maximum completion tokens.")
    c.add_argument("--top-p", dest="top_p", type=float, help="Nucleus sampling top_p.")
    c.add_argument("--seed", type=int, help="Sampling seed.")
    c.add_argument("--no-stream", action="store_true", help="Do not stream (no TTFT).")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_complete)

    ds = sub.add_parser("dataset", help="Import, list and show datasets.")
    dsub = ds.add_subparsers(dest="dataset_command", metavar="ACTION")
    c = dsub.add_parser("import", help="Import a CSV, JSON or JSONL file as a new dataset.")
    c.add_argument("name", help="Dataset name.")
    c.add_argument("file", help="The .csv, .json or .jsonl file.")
    c.add_argument(
        "--expected", help="Column with expected answers (default: 'expected' if present; '' for none)."
    )
    c.set_defaults(func=cmd_dataset_import)
    c = dsub.add_parser("list", help="List datasets.")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_dataset_list)
    c = dsub.add_parser("show", help="Show a dataset's rows.")
    c.add_argument("name", help="Dataset name.")
    c.add_argument("--limit", type=int, default=20, help="Rows to show (default 20).")
    c.add_argument("--json", action="store_true", help="Print JSON (all rows).")
    c.set_defaults(func=cmd_dataset_show)
    ds.set_defaults(func=lambda a: _help(ds))

    from workbench.cli import sweep

    sweep.add_commands(sub)
    from workbench.cli import ratings

    ratings.add_commands(sub)
    from workbench.cli import release

    release.add_commands(sub)
    from workbench.cli import optimize

    optimize.add_commands(sub)
    return p


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    from workbench import config

    config.apply_offline_env()
    argv = list(sys.argv[1:] if argv is None else argv)
    # "sweep show ID" / "sweep list" read naturally; argparse wants them as their own commands.
    if len(argv) >= 2 and argv[0] == "sweep" and argv[1] in ("show", "list"):
        argv = [f"sweep-{argv[1]}", *argv[2:]]
    if len(argv) >= 2 and argv[0] == "ratings" and argv[1] == "export":
        argv = ["ratings-export", *argv[2:]]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from workbench.errors import ProviderError, WorkbenchError

    try:
        return int(args.func(args) or 0)
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
