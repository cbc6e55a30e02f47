"""`python -m workbench mlflow log-sweep|push|pull`: sweeps and prompt versions in MLflow (optional).

The tracking server is `--tracking-uri`, else `MLFLOW_TRACKING_URI`. `log-sweep` writes a sweep as
a parent run with one child run per column (logging again updates those runs); `push` registers a
version in MLflow's Prompt Registry (labels as aliases, lineage and evidence as tags); `pull` brings
a registered prompt version in as a workbench version (source "mlflow"). The work is
`workbench.mlflow_sync`; mlflow is imported only when a command runs, never for `--help`.
"""

from __future__ import annotations

import argparse

from workbench.cli.common import ensure_db, print_json, session, show_help

URI_HELP = "The MLflow tracking server (default: the MLFLOW_TRACKING_URI environment variable)."


def cmd_log_sweep(args: argparse.Namespace) -> int:
    """Log a sweep to MLflow."""
    from workbench.mlflow_sync.sweeps import log_sweep

    ensure_db()
    with session() as s:
        result = log_sweep(
            s, args.sweep_id, uri=args.tracking_uri, experiment=args.experiment, baseline=args.baseline
        )
    if args.json:
        print_json(result.to_dict())
    else:
        print("\n".join(result.lines()))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Register prompt versions in MLflow's Prompt Registry."""
    from workbench.mlflow_sync.prompts import push

    ensure_db()
    with session() as s:
        results = push(s, args.ref, uri=args.tracking_uri, name=args.as_name, every=args.all)
    if args.json:
        print_json([r.to_dict() for r in results])
    else:
        print("\n".join(line for r in results for line in r.lines()))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    """Bring a registered MLflow prompt version in as a workbench version."""
    from workbench.mlflow_sync.prompts import pull

    ensure_db()
    with session() as s:
        result = pull(
            s,
            args.name,
            version=args.version,
            alias=args.alias,
            uri=args.tracking_uri,
            local_name=args.as_name,
        )
    if args.json:
        print_json(result.to_dict())
    else:
        print("\n".join(result.lines()))
    return 0


def _common(c: argparse.ArgumentParser) -> None:
    c.add_argument("--tracking-uri", metavar="URI", help=URI_HELP)
    c.add_argument("--json", action="store_true", help="Print what was done as JSON.")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `mlflow log-sweep|push|pull`."""
    group = sub.add_parser(
        "mlflow",
        help="Send sweeps and prompt versions to MLflow, or pull prompts from its Prompt Registry.",
        description="Optional MLflow integration: sweeps as runs, prompt versions in the Prompt Registry. "
        "Needs a tracking server (--tracking-uri or MLFLOW_TRACKING_URI) and mlflow-skinny installed.",
    )
    group.set_defaults(func=show_help(group))
    verbs = group.add_subparsers(dest="mlflow_command", metavar="VERB")

    c = verbs.add_parser(
        "log-sweep",
        help="Log a sweep: a parent run, one child run per column (logging again updates them).",
        description="Log a sweep to MLflow: config, dataset and grid as params and totals as metrics on "
        "a parent run; per column a child run with version, model and params, mean scores, failures, "
        "tokens, cost, latency and TTFT, the outputs as a table and the messages as text. Ratings "
        "and paired comparisons are logged when the sweep has them.",
    )
    c.add_argument(
        "sweep_id", type=int, metavar="SWEEP", help="Sweep id (see: python -m workbench sweep list)."
    )
    c.add_argument(
        "--experiment",
        metavar="NAME",
        help="MLflow experiment, made if missing (default: MLFLOW_EXPERIMENT_NAME, else prompt-workbench).",
    )
    c.add_argument(
        "--baseline",
        metavar="COLUMN",
        help="Column the paired comparisons are against (default: the first column).",
    )
    _common(c)
    c.set_defaults(func=cmd_log_sweep)

    c = verbs.add_parser(
        "push",
        help="Register a prompt version in MLflow's Prompt Registry (labels become aliases).",
        description="Register a version's messages as an MLflow chat prompt, kept as Jinja; its labels "
        "become aliases and its lineage and evidence version tags. Content MLflow already holds is "
        "not registered twice.",
    )
    c.add_argument("ref", metavar="NAME[@N]", help="The version: NAME (latest), NAME@N or NAME:label.")
    c.add_argument("--all", action="store_true", help="Push every version of the prompt, oldest first.")
    c.add_argument(
        "--as", dest="as_name", metavar="NAME", help="Prompt name in MLflow (default: the workbench name)."
    )
    _common(c)
    c.set_defaults(func=cmd_push)

    c = verbs.add_parser(
        "pull",
        help="Bring a registered MLflow prompt in as a workbench version (source mlflow).",
        description="Import one version of an MLflow prompt (the latest, --version N or --alias A) as a "
        "new workbench version; content already present is recognised and not added again.",
    )
    c.add_argument("name", metavar="NAME", help="The prompt's name in MLflow.")
    which = c.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, metavar="N", help="That MLflow version (default: the latest).")
    which.add_argument("--alias", metavar="A", help="The version this MLflow alias points at.")
    c.add_argument(
        "--as", dest="as_name", metavar="NAME", help="Workbench prompt to add it to (default: its name)."
    )
    _common(c)
    c.set_defaults(func=cmd_pull)
