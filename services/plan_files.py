"""Reading a plans directory from disk into the core's `PlanSet`, and hashing what was read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shared.plans import PlanError, PlanSet, parse_plans

__all__ = ["DEFAULT_PLANS_DIR", "directory_hash", "load_plans", "read_plan_files"]

DEFAULT_PLANS_DIR = Path(__file__).with_name("default_plans")
"""The example plans, installed with the package (package data): found from any working directory."""


def read_plan_files(directory: Path) -> dict[str, str]:
    """The text of every `*.yaml`/`*.yml` file of `directory`, by path; `PlanError` lists what cannot be read."""
    if not directory.is_dir():
        raise PlanError([f"{directory}: no such directory: set CONVERGENCE_PLANS_DIR to your plans directory "
                         "(unset: the example plans installed with Convergence)"])
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not paths:
        raise PlanError([f"{directory}: no *.yaml plan files"])
    files, problems = {}, []
    for path in paths:
        try:
            files[str(path)] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:  # removed, or half written, while the directory was read
            problems.append(f"{path}: cannot be read: {error}")
    if problems:
        raise PlanError(problems)
    return files


def directory_hash(files: dict[str, str]) -> str:
    """`sha256:` over the files' names (not their directory) and contents, in name order: the same plans give the
    same hash wherever the directory is, and any edit, added or removed file another hash."""
    digest = hashlib.sha256()
    for name, text in sorted((Path(path).name, text) for path, text in files.items()):
        data = text.encode()
        digest.update(f"{name}\0{len(data)}\0".encode())  # lengths keep the boundaries unambiguous
        digest.update(data)
    return f"sha256:{digest.hexdigest()}"


def load_plans(directory: Path) -> PlanSet:
    """Parse every `*.yaml`/`*.yml` file of `directory`; `PlanError` lists every problem found."""
    return parse_plans(read_plan_files(directory))
