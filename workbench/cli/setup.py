"""`python -m workbench init` and `models`: the database, and the models you can call."""

from __future__ import annotations

import argparse

from workbench.cli.common import print_json, session


def cmd_init(args: argparse.Namespace) -> int:
    """Create or upgrade the database, then load the bundled examples (once)."""
    from workbench import config
    from workbench.db import migrate
    from workbench.prompts.examples import load_examples

    revision = migrate()
    print(f"Database ready at {config.database_url()} (schema {revision}).")
    if not args.no_examples:
        with session() as s:
            added = load_examples(s)
        print("Loaded examples: " + ", ".join(added) if added else "Examples already loaded.")
    return 0


def _price(m) -> str:
    from workbench import present

    if m.input_price_per_million is None or m.output_price_per_million is None:
        return "LiteLLM table"
    per_m = (
        present.number(p, "g", prefix="$") for p in (m.input_price_per_million, m.output_price_per_million)
    )
    return " / ".join(per_m)


def cmd_models(args: argparse.Namespace) -> int:
    """List the models of the catalog with whether each can be called now."""
    from workbench.providers.catalog import list_models

    models = list_models()
    if args.json:
        print_json([m.public_dict() for m in models])
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `init` and `models`."""
    c = sub.add_parser("init", help="Create or upgrade the database and load the bundled examples.")
    c.add_argument("--no-examples", action="store_true", help="Do not load the example prompts/datasets.")
    c.set_defaults(func=cmd_init)

    c = sub.add_parser("models", help="List the models you can call now (local ones always).")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_models)
