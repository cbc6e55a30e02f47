"""`python -m workbench prompt add|list|show|label`, `render` and `complete`: versions and one call."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.cli.common import ensure_db, parse_vars, print_json, session, show_help


def _print_messages(messages: list[dict[str, Any]]) -> None:
    from workbench.sweeps.outputs import message_text

    for m in messages:
        if m["role"] == "placeholder":
            print(f"--- placeholder: {m['content']}")
            continue
        print(f"--- {m['role']}" + (f" (result of {m['tool_call_id']})" if m.get("tool_call_id") else ""))
        print(message_text(m))


def _read_json_or_yaml(path: str, what: str) -> Any:
    """A JSON / YAML file's content (for --schema and --tools)."""
    from workbench.errors import ImportFileError
    from workbench.prompts.files import read_data_file

    try:
        return read_data_file(Path(path))
    except ImportFileError as exc:
        raise ImportFileError(f"{what}: {exc}") from None


def _structured_args(args: argparse.Namespace, pf: Any) -> dict[str, Any]:
    """The file's response_format / tools / tool_choice, with the command's options on top."""
    given = pf.structured()
    if args.schema:
        given["response_format"] = _read_json_or_yaml(args.schema, "the schema")
    if args.strict is not None:
        from workbench.prompts.structured import check_response_format

        if given["response_format"] is None:
            from workbench.errors import ValidationError

            raise ValidationError("Strict mode needs a schema.", field="response_format")
        given["response_format"] = check_response_format(given["response_format"], strict=args.strict)
    if args.tools:
        given["tools"] = _read_json_or_yaml(args.tools, "the tools")
    if args.tool_choice:
        given["tool_choice"] = args.tool_choice
    return given


def cmd_add(args: argparse.Namespace) -> int:
    """Save a prompt file as a new version (nothing new when it is identical to the latest)."""
    from workbench.prompts import store
    from workbench.prompts.files import load_prompt_file

    ensure_db()
    pf = load_prompt_file(Path(args.file))
    name = args.name or pf.name
    extra = _structured_args(args, pf)
    with session() as s:
        version, created = store.save_version(
            s, prompt_name=name, messages=pf.messages, params=pf.params, note=args.note or pf.note, **extra
        )
        ref = f"{name}@{version.number}"
    if created:
        print(f"Saved {ref} (variables: {', '.join(version.variables) or 'none'}).")
    else:
        print(f"Unchanged: identical to {ref}; no new version saved.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List prompts with their version counts, latest version, labels and variables."""
    from workbench.prompts import store

    ensure_db()
    with session() as s:
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
        print_json(rows)
        return 0
    if not rows:
        print("No prompts yet. Add one: python -m workbench prompt add NAME --file prompt.yaml")
        return 0
    from workbench.cli.table import table

    print(
        table(
            ["prompt", "versions", "latest", "labels", "variables"],
            [(r["name"], r["versions"], r["latest"], r["labels"], ", ".join(r["variables"])) for r in rows],
        )
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one version (messages, params, labels, lineage), or its diff from another version."""
    from workbench.prompts import store

    ensure_db()
    with session() as s:
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
            "response_format": v.response_format,
            "tools": v.tools,
            "tool_choice": v.tool_choice,
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
        print_json(data)
        return 0
    print(
        f"{data['prompt']}@{data['version']}  labels: {', '.join(labels) or '-'}  "
        f"parent: {data['parent'] or '-'}  source: {data['source']}"
    )
    if data["note"]:
        print(f"note: {data['note']}")
    print(f"variables: {', '.join(data['variables']) or '-'}")
    print(f"params: {json.dumps(data['params'])}")
    for key in ("response_format", "tools", "tool_choice"):
        if data[key] is not None:
            print(f"{key}: {json.dumps(data[key], ensure_ascii=False)}")
    _print_messages(data["messages"])
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    """Point a label at a version (the move is kept in the label's history)."""
    from workbench.prompts import store

    ensure_db()
    with session() as s:
        v = store.resolve(s, args.ref)
        prompt = s.get(store.Prompt, v.prompt_id)
        store.set_label(s, version_id=v.id, label=args.label, actor=args.actor or "cli")
    print(f"{prompt.name}:{args.label} -> version {v.number}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Render a version with variables and print the messages a model would get."""
    from workbench.prompts import store

    ensure_db()
    variables = parse_vars(args.var)
    with session() as s:
        v = store.resolve(s, args.ref)
    rendered = store.render_version(v, variables)
    if args.json:
        print_json(rendered)
    else:
        _print_messages(rendered)
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    """Call a model once, streaming by default; the text on stdout, the accounting on stderr."""
    from workbench import present
    from workbench.prompts import store
    from workbench.providers.catalog import require_callable
    from workbench.providers.completion import complete

    entry = require_callable(args.model)
    if args.prompt:
        ensure_db()
        with session() as s:
            v = store.resolve(s, args.prompt)
        messages = store.render_version(v, parse_vars(args.var))
        params = store.call_params(v)
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
        print_json(result.to_dict())
        return 0
    from workbench.sweeps.outputs import view

    print(view(result.text, result.tool_calls).text)
    ttft = f", ttft {present.ms(result.ttft_ms)} ms" if result.ttft_ms is not None else ""
    print(
        f"\n[{result.model}: {result.prompt_tokens} prompt + {result.completion_tokens} completion "
        f"tokens, {present.ms(result.latency_ms)} ms{ttft}, cost {present.money(result.cost_usd, 6)}, "
        f"finish {result.finish_reason}]",
        file=sys.stderr,
    )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `prompt add|list|show|label`, `render` and `complete`."""
    prompt = sub.add_parser("prompt", help="Add, list, show and label prompt versions.")
    verbs = prompt.add_subparsers(dest="prompt_command", metavar="ACTION")
    c = verbs.add_parser(
        "add", help="Save a prompt file as a new version (JSON/YAML, or .j2 as one user message)."
    )
    c.add_argument("name", nargs="?", help="Prompt name (default: the file's 'name').")
    c.add_argument("--file", required=True, help="JSON/YAML with messages + params, or a .j2 template.")
    c.add_argument("--note", default="", help="A note stored with the version.")
    c.add_argument(
        "--schema",
        metavar="FILE",
        help="JSON/YAML: a JSON Schema the reply must follow (or a whole response_format object).",
    )
    strict = c.add_mutually_exclusive_group()
    strict.add_argument(
        "--strict", dest="strict", action="store_true", default=None, help="Strict structured output."
    )
    strict.add_argument("--no-strict", dest="strict", action="store_false", help="Not strict (the default).")
    c.add_argument("--tools", metavar="FILE", help="JSON/YAML: a list of functions the model may call.")
    c.add_argument(
        "--tool-choice", dest="tool_choice", metavar="CHOICE", help="auto, none, required or a tool name."
    )
    c.set_defaults(func=cmd_add)
    c = verbs.add_parser("list", help="List prompts with version counts and labels.")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_list)
    c = verbs.add_parser("show", help="Show a version: NAME, NAME@N or NAME:label.")
    c.add_argument("ref", help="NAME, NAME@N or NAME:label.")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.add_argument("--diff", type=int, metavar="N", help="Print a unified diff from version N to this one.")
    c.set_defaults(func=cmd_show)
    c = verbs.add_parser("label", help="Point a label (production, staging, ...) at NAME@N.")
    c.add_argument("ref", help="NAME@N (or NAME:other-label).")
    c.add_argument("label", help="The label to set or move.")
    c.add_argument("--actor", help="Who moved it (kept in the label history).")
    c.set_defaults(func=cmd_label)
    prompt.set_defaults(func=show_help(prompt))

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
