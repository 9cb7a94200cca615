"""@cloud-copilot/iam-simulate (npm, installed by `make iam-simulator` from this folder's package.json),
run once per batch of requests through node."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from magsev_dagster_tests.iam.requests import Request
from magsev_dagster_tests.requirements import missing

HERE = Path(__file__).parent
INSTALL = "make iam-simulator (npm ci in magsev_dagster_tests/iam)"


@dataclass(frozen=True)
class Decision:
    request: Request
    result: str  # Allowed | ImplicitlyDenied | ExplicitlyDenied | Error
    statements: tuple[str, ...]  # the Sids that allowed it
    error: str = ""


def require_simulator() -> None:
    """Skip (fail in CI), saying why, where node or the package is missing (the Makefile installs both)."""
    if shutil.which("node") is None:
        missing(f"node is not installed: the IAM policy cannot be evaluated here ({INSTALL})")
    if not (HERE / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
        missing(f"@cloud-copilot/iam-simulate is not installed: run {INSTALL}")


def simulate(policy: dict, requests: Iterable[Request], principal: str, account: str) -> list[Decision]:
    """Each distinct request evaluated against the identity policy, as AWS's policy evaluation logic does."""
    unique = list(dict.fromkeys(requests))
    payload = {"policy": policy, "principal": principal, "account": account, "requests": [r.as_json() for r in unique]}
    done = subprocess.run(
        ["node", str(HERE / "simulate.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    return [
        Decision(r, a["result"], tuple(a["statements"]), a.get("error", ""))
        for r, a in zip(unique, answers, strict=True)
    ]


def denied(decisions: list[Decision]) -> list[str]:
    return [
        f"{d.result}: {d.request.action} on {d.request.resource} {dict(d.request.context) or ''} "
        f"({d.request.why}) {d.error}".rstrip()
        for d in decisions
        if d.result != "Allowed"
    ]
