"""`make sandbox`: the AWS mode on this machine, no account needed - a local stand-in, not AWS.

A moto server (S3, Glue, IAM, Athena) whose Athena statements run on Trino, as in the tests; `make
provision`'s resources created in it; then `dagster dev` (or the command after `--`) with MAGSEV_ENV=aws
and AWS_ENDPOINT_URL pointing at it. What it does not prove: IAM beyond S3, Glue's crawler inference,
Athena's quotas, prices and speed (README, "How the AWS mode is tested").

    python -m magsev_dagster_tests.fakes.sandbox [-- CMD ...]
"""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest

from magsev_dagster.provision import provision
from magsev_dagster.settings import Settings
from magsev_dagster_tests.fakes.athena_trino import attach
from magsev_dagster_tests.fakes.moto_server import FAKE_CREDENTIALS, glue_crawler_rules, moto_server
from magsev_dagster_tests.fakes.trino import TrinoUnavailable, trino_server

DEFAULT_COMMAND = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml"]


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else DEFAULT_COMMAND
    with moto_server() as moto, pytest.MonkeyPatch.context() as patch, trino_server() as trino, attach(moto.url, trino):
        env = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto.url, "MAGSEV_ENV": "aws"}
        for name, value in env.items():
            patch.setenv(name, value)
        boto3.setup_default_session()
        moto.crawls_finish()
        glue_crawler_rules(patch)
        created = provision(Settings.from_env(dict(os.environ)), cutoff_bytes=10 * 1024**3)
        print(f"sandbox: moto at {moto.url} (Athena on Trino {trino}); provisioned: {created}", flush=True)
        print("sandbox: a local stand-in for AWS; Ctrl-C stops it (its data goes with it)", flush=True)
        try:
            return subprocess.run(command, env=dict(os.environ)).returncode
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except TrinoUnavailable as err:
        sys.exit(f"sandbox: {err}")
