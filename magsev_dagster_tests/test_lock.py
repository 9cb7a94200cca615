"""The environment is the committed lock, and what the README says of it is the lock."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
NAMED_IN_README = ("dagster", "boto3", "botocore", "moto", "duckdb", "sqlglot")


def locked() -> dict[str, set[str]]:
    """Each locked package's versions (several where the lock splits by Python version; the project
    itself excluded)."""
    versions: dict[str, set[str]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        if "version" in package and "editable" not in package.get("source", {}):
            versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    return versions


def readme_table(title: str) -> list[list[str]]:
    """The rows of the README table that follows the line `title`, as cells."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(title) + len(title) :]
    rows = re.match(r"\s*\n((?:\|.*\|\n)+)", after).group(1).splitlines()[2:]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [Requirement(r) for r in [*project["dependencies"], *(r for group in extras for r in group)]]


def test_the_requirements_file_is_the_lock_exported():
    uv = Path(sys.executable).parent / "uv"
    exported = subprocess.run(
        [uv, "export", "--frozen", "--all-extras", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def pins(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    assert pins((ROOT / "requirements.lock.txt").read_text()) == pins(exported), "run make lock"


def test_the_environment_is_the_lock():
    versions = locked()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differ = {
        name: (installed[name], allowed)
        for name, allowed in versions.items()
        if name in installed and installed[name] not in allowed
    }
    assert not differ, f"installed vs locked: {differ} (run make install)"
    assert all(name in installed for name in NAMED_IN_README)


def test_the_readme_names_the_locked_versions():
    versions = locked()
    table = {package: version for package, version in readme_table("Tested versions (from the lock):")}
    assert {name: {version} for name, version in table.items()} == {name: versions[name] for name in NAMED_IN_README}


def test_every_release_held_back_is_in_the_readme_and_not_in_the_lock():
    held = {
        (canonicalize_name(r.name), spec.version)
        for r in pyproject_requirements()
        for spec in r.specifier
        if spec.operator == "!="
    }
    table = {(canonicalize_name(row[0]), row[1]) for row in readme_table("Held back:")}
    assert held == table
    versions = locked()
    assert all(version not in versions[name] for name, version in held)
