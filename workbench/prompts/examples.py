"""Load the bundled example prompts and datasets (data/examples) into a database, once."""

from __future__ import annotations

from sqlmodel import Session

from workbench import config, datasets
from workbench.prompts import store
from workbench.prompts.files import load_prompt_file


def load_examples(session: Session) -> list[str]:
    """Add example prompts and datasets that are not there yet; return what was added."""
    added: list[str] = []
    root = config.examples_dir()
    for path in sorted((root / "prompts").glob("*.yaml")):
        pf = load_prompt_file(path)
        name = pf.name or path.stem
        if store.get_prompt(session, name) is None:
            store.save_version(
                session,
                prompt_name=name,
                messages=pf.messages,
                params=pf.params,
                note=pf.note or "Bundled example",
            )
            added.append(f"prompt {name}")
    for path in sorted((root / "datasets").iterdir()):
        if path.suffix not in (".csv", ".json", ".jsonl"):
            continue
        if datasets.get_dataset(session, path.stem) is None:
            table = datasets.parse_file(path.read_bytes(), path.name)
            datasets.create_dataset(
                session,
                name=path.stem,
                table=table,
                expected_column=datasets.guess_expected_column(table.columns),
                description="Bundled example",
            )
            added.append(f"dataset {path.stem}")
    return added
