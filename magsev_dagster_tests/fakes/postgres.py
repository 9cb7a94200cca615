"""A real PostgreSQL server for the tests, from Debian's `postgresql` package.

`initdb` + `pg_ctl` on a temporary directory: a free loopback port, the unix socket inside that
directory, password authentication over TCP (as a deployment has it), stopped and removed at the end.
PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user (or `nobody`)
through `runuser`. Without the binaries, or without dagster-postgres, the tests that need it skip,
saying why; `make test` installs both.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from magsev_dagster_tests.fakes.webserver import free_port
from magsev_dagster_tests.requirements import missing, require_module

# Where Debian's postgresql-NN puts initdb and pg_ctl (they are not on PATH there).
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "dagster"
PASSWORD_ENV = "DAGSTER_PG_PASSWORD"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here, or the server would not start."""


def find_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's newest version."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(
        (Path(p) for p in glob.glob(DEBIAN_BIN_GLOB)),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    raise PostgresUnavailable(
        "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in "
        f"{DEBIAN_BIN_GLOB}: install Debian's postgresql package (`make test` does)"
    )


def _server_user() -> str | None:
    """None when already non-root; else an unprivileged account to run the server as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    root: Path
    bin_dir: Path
    run_as: str | None

    def create_database(self, name: str) -> str:
        """A fresh, empty database (each test gets its own, the server is shared)."""
        import psycopg2

        con = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()
        return name


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise PostgresUnavailable(
            f"{what} failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """initdb, start on a free port, yield, stop, remove everything."""
    bin_dir, run_as = find_bin_dir(), _server_user()
    root = Path(tempfile.mkdtemp(prefix="magsev-pg-"))
    password = secrets.token_hex(16)
    data, pwfile = root / "data", root / "pwfile"
    pwfile.write_text(password + "\n")
    if run_as:
        entry = pwd.getpwnam(run_as)
        for path in (root, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = PostgresServer("127.0.0.1", free_port(), SUPERUSER, password, root, bin_dir, run_as)
    try:
        _run(
            _as_user(
                run_as,
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                ],
            ),
            "initdb",
        )
        pwfile.unlink()
        # Test data only: no fsync. The socket goes into the temporary directory, not /var/run.
        options = (
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        _run(
            _as_user(
                run_as,
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(root / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            ),
            "pg_ctl start",
        )
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_user(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server per test process, shared by the tests that need one; a skip naming the
    reason when this machine cannot run it (a failure in CI)."""
    require_module(
        "dagster_postgres", "dagster-postgres is not installed: pip install -e '.[deploy]' (`make test` does)"
    )
    try:
        with postgres_server() as server:
            yield server
    except PostgresUnavailable as err:
        missing(str(err))


@pytest.fixture
def postgres_db(postgres) -> str:
    """A fresh database on the shared server for one test."""
    return postgres.create_database("t_" + secrets.token_hex(6))
