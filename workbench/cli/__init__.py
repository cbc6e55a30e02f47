"""`python -m workbench`: the command line over the core library.

A tree of command groups, one module each and one function per verb:

- `setup`: `init` (database, examples) and `models` (what can be called now).
- `prompts`: `prompt add|list|show|label`, `render` and `complete`.
- `datasets`: `dataset import|list|show`.
- `sweep`: `sweep run|show|list|resume|cancel` (`run` is the default verb).
- `worker`: `worker`, which runs pending cells of any sweep.
- `ratings`: `ratings show|export` (`show` is the default verb: `ratings 5`).
- `compare`: `compare SWEEP --a COLUMN --b COLUMN` or `--baseline COLUMN`: paired tests of columns.
- `release`: `export versions|runs|ratings`, `import` and `gate`.
- `optimize`: `optimize run|show|list|cancel|save|resume|again` (`run` is the default verb).
- `mlflow`: `mlflow log-sweep|push|pull`: sweeps as MLflow runs, versions to and from its Prompt
  Registry (optional; mlflow is imported only when a command runs).
- `common`: what the groups share (database, `--var`, output, `hint_for`); `table`: text tables.

Older spellings (`sweep --resume ID`, `ratings-export`, `optimize-show ID`, ...) are parsed as they
are, by the groups themselves, and listed in each group's help epilog. Imports are lazy so `--help`
answers fast. `main` is the one error boundary: a WorkbenchError becomes `error: ...` on stderr
(plus a `hint:` line naming the flag or command that helps, from `common.hint_for`) and exit code
2; a failed provider call exits 1. It is also the output boundary: a command asked for JSON
(`--json`, `--format json`) runs under `common.machine_output`, so its stdout holds only the
document, whatever the libraries it uses print.
"""

from __future__ import annotations

import argparse
import sys

GROUPS = (
    "setup",
    "prompts",
    "datasets",
    "sweep",
    "worker",
    "ratings",
    "compare",
    "release",
    "optimize",
    "mlflow",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command (each has help text; tests check that)."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="python -m workbench",
        description="Prompt Workbench: versioned prompts, datasets, sweeps, ratings and release gates.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS:
        importlib.import_module(f"workbench.cli.{name}").add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    from workbench import config

    config.apply_offline_env()
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from workbench.cli.common import hint_for, machine_output, wants_machine_output
    from workbench.errors import ProviderError, WorkbenchError

    try:
        with machine_output(wants_machine_output(args)):
            return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        hint = hint_for(exc)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return 1 if isinstance(exc, ProviderError) else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
