"""`ggzy bench seal` and `ggzy bench opening`: envelope throughput, one JSON line per measurement.

`seal` measures, on one random file, file to file and best of `--repeat`: sealing a bid (`seal_bid`, one
file, three custodians, t = 2) as the client does, without hashing the envelope (`hash_output=False`: it
is hashed when submitted), the same with the envelope's SHA-256 computed on the way (`ggzy_seal_hashed`,
a second full-speed hash), opening it (`open_bid`), the bare encryption stage (`encrypt_payload`, no
tar, manifest or hashing) and whole-envelope decryption, next to the references that say what the
hardware allows: Python's ChaCha20-Poly1305 `encrypt_into` on 64 KiB chunks in memory, `openssl speed`
on the same primitive, and the age CLI encrypting and decrypting the same file. Cases run interleaved,
round after round, and the page cache is flushed (`sync`) before each timed run so one run's write-back
does not land in the next one's time. Peak memory is measured in child processes sealing 32 MiB and
`--size-mib`, to show it does not grow with the file.

`opening` seals `--bids` envelopes (each a real seal with its own file key) and opens them all with
`open_bid` on a thread pool of `--workers`, as the opening hall does, next to the raw `decrypt_into`
rate measured in the same run.

Ratios carry their targets (seal at least 1.5x age, the encryption stage at least 0.7x openssl), but
nothing passes or fails on time: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from rich.console import Console
from rich.progress import Progress

from bidding import agekeys, bidfile, envelope
from storage.clock import SystemClock

MIB = 1024 * 1024
TENDER = "GGZY-320100-2026-B000001"
BIDDER_CODE = "91320100MA1BENCH01"
CUSTODIANS = 3
THRESHOLD = 2
SEAL_TARGET_VS_AGE = 1.5
STAGE_TARGET_VS_OPENSSL = 0.7
MEMORY_SMALL_MIB = 32
OPENSSL_SECONDS = 2
ROOT = Path(__file__).resolve().parents[1]

# Run in a child process so its peak RSS is the seal's alone: seal_bid of argv[1] into argv[2].
_MEMORY_PROBE = """
import json, resource, sys, time
from pathlib import Path
from bidding import agekeys, bidfile
bidder = agekeys.generate(signing=True)
custodians = [agekeys.x25519_public_raw(agekeys.generate(signing=False)) for _ in range(3)]
start = time.perf_counter()
with open(sys.argv[2], "wb") as dst:
    bidfile.seal_bid([Path(sys.argv[1])], dst, tender=sys.argv[3], lot=1, bidder="probe", kind="technical",
        declared_price_fen=None, duration_days=None, signing=bidder.signing,
        bidder_public=agekeys.x25519_public_raw(bidder), custodians=custodians, threshold=2,
        hash_output=False)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@dataclass
class Keys:
    """A bidder and the custodian roster, fresh for each benchmark run."""

    bidder: agekeys.KeyPair = field(default_factory=lambda: agekeys.generate(signing=True))
    custodians: list[agekeys.KeyPair] = field(
        default_factory=lambda: [agekeys.generate(signing=False) for _ in range(CUSTODIANS)]
    )

    @property
    def custodian_publics(self) -> list[bytes]:
        """The custodians' raw X25519 public keys, in roster order."""
        return [agekeys.x25519_public_raw(c) for c in self.custodians]


@dataclass
class Measurement:
    """One case's best time over the repeats, or why it could not run."""

    case: str
    size_mib: float
    seconds: float | None = None
    skipped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mib_per_s(self) -> float | None:
        """Throughput of the best run."""
        return None if self.seconds is None else self.size_mib / self.seconds

    def offer(self, seconds: float) -> None:
        """Keep the fastest of the repeats: the others measured the machine's other work."""
        self.seconds = seconds if self.seconds is None else min(self.seconds, seconds)


def _ratio(a: Measurement, b: Measurement) -> float | None:
    if a.mib_per_s is None or b.mib_per_s is None or b.mib_per_s == 0:
        return None
    return round(a.mib_per_s / b.mib_per_s, 3)


def _line(bench: str, m: Measurement, ratio_vs: dict[str, float | None], target: dict[str, float]) -> str:
    row: dict[str, Any] = {
        "bench": bench,
        "case": m.case,
        "mib_per_s": None if m.mib_per_s is None else round(m.mib_per_s, 1),
        "seconds": None if m.seconds is None else round(m.seconds, 4),
        "size_mib": m.size_mib,
        "ratio_vs": ratio_vs,
        "target": target,
    }
    if m.skipped is not None:
        row["skipped"] = m.skipped
    row.update(m.extra)
    return json.dumps(row, ensure_ascii=False)


def random_file(path: Path, size_mib: int) -> None:
    """Write `size_mib` MiB of CSPRNG bytes (incompressible, like a real PDF or archive)."""
    with path.open("wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(MIB))


def _timed(run: Callable[[], object], before: Callable[[], None] | None = None) -> float:
    if before is not None:
        before()
    # flush earlier runs' dirty pages so their write-back is not charged to this run
    os.sync()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def seal_file(source: Path, target: Path, keys: Keys, *, hash_output: bool = False) -> bidfile.SealedBid:
    """seal_bid of one file, as a bidder's client does (by default without hashing the envelope)."""
    assert keys.bidder.signing is not None
    with target.open("wb") as dst:
        return bidfile.seal_bid(
            [source],
            dst,
            tender=TENDER,
            lot=1,
            bidder=BIDDER_CODE,
            kind="technical",
            declared_price_fen=None,
            duration_days=None,
            signing=keys.bidder.signing,
            bidder_public=agekeys.x25519_public_raw(keys.bidder),
            custodians=keys.custodian_publics,
            threshold=THRESHOLD,
            hash_output=hash_output,
        )


def bidder_file_key(path: Path, keys: Keys) -> bytes:
    """The file key as the bidder reveals it at opening."""
    with path.open("rb") as src:
        header = envelope.read_header(src)
    return envelope.unwrap_bidder(header, keys.bidder.encryption.private_bytes_raw())


def open_file(path: Path, file_key: bytes, out_dir: Path) -> bidfile.OpenedBid:
    """open_bid of an envelope on disk, as the platform does at opening."""
    with path.open("rb") as src:
        return bidfile.open_bid(src, file_key, out_dir)


def aead_in_memory(size_mib: float, *, decrypt: bool) -> float:
    """Seconds for ChaCha20-Poly1305 over `size_mib` MiB in 64 KiB chunks, one reused buffer, no I/O."""
    aead = ChaCha20Poly1305(os.urandom(32))
    plain = bytearray(os.urandom(envelope.CHUNK_SIZE))
    sealed = bytearray(envelope.ENCRYPTED_CHUNK_SIZE)
    nonce = bytes(12)
    aead.encrypt_into(nonce, plain, None, sealed)
    chunks = int(size_mib * MIB) // envelope.CHUNK_SIZE
    start = time.perf_counter()
    if decrypt:
        for _ in range(chunks):
            aead.decrypt_into(nonce, sealed, None, plain)
    else:
        for _ in range(chunks):
            aead.encrypt_into(nonce, plain, None, sealed)
    return time.perf_counter() - start


def openssl_rate(seconds: int = OPENSSL_SECONDS) -> tuple[float | None, str | None]:
    """MiB/s of `openssl speed -evp chacha20-poly1305` on 64 KiB blocks, or (None, why not)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None, "openssl is not installed"
    command = [openssl, "speed", "-evp", "chacha20-poly1305", "-seconds", str(seconds), "-bytes", "65536"]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"openssl speed did not run: {exc}"
    # the result line: "ChaCha20-Poly1305  2199111.53k" in thousands of bytes per second
    match = re.search(r"^chacha20-poly1305\s+([0-9.]+)k\s*$", run.stdout, re.IGNORECASE | re.MULTILINE)
    if run.returncode != 0 or match is None:
        return None, f"openssl speed gave no ChaCha20-Poly1305 figure (exit {run.returncode})"
    return float(match.group(1)) * 1000 / MIB, None


def memory_probe(source: Path, target: Path) -> dict[str, Any]:
    """Seal `source` in a child process; its seconds and peak RSS."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    # our own interpreter and code, argv as a list: no shell, nothing from outside
    run = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _MEMORY_PROBE, str(source), str(target), TENDER],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
        check=False,
    )
    if run.returncode != 0:
        raise click.ClickException(f"the memory probe failed: {run.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


scratch_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Scratch directory (default: the system temporary directory).",
)


@click.command("seal")
@click.option(
    "--size-mib",
    type=click.IntRange(1, 1024 * 1024),
    default=256,
    show_default=True,
    help="Size of the file sealed and opened, in MiB.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Runs per case; the best counts.",
)
@click.option(
    "--openssl-seconds",
    type=click.IntRange(1, 60),
    default=OPENSSL_SECONDS,
    show_default=True,
    help="How long `openssl speed` measures.",
)
@scratch_dir
def seal_command(size_mib: int, repeat: int, openssl_seconds: int, directory: Path | None) -> None:
    """Seal and open throughput, file to file, against age, openssl and the raw AEAD."""
    err = _err()
    keys = Keys()
    with tempfile.TemporaryDirectory(prefix="ggzy-bench-seal-", dir=directory) as scratch:
        work = Path(scratch)
        source = work / "bid.bin"
        sealed = work / "bid.age"
        payload = work / "payload.bin"
        decrypted = work / "decrypted.bin"
        opened = work / "opened"
        age_out = work / "age.age"
        age_back = work / "age.out"
        identity = work / "key.txt"
        identity.write_text(agekeys.identity_file_text(keys.bidder, SystemClock().now()))
        recipient = agekeys.recipient(agekeys.x25519_public_raw(keys.bidder))
        age = shutil.which("age")
        with err.status(f"writing {size_mib} MiB of random data"):
            random_file(source, size_mib)

        cases = {
            name: Measurement(name, size_mib)
            for name in (
                "ggzy_seal",
                "ggzy_seal_hashed",
                "ggzy_open",
                "ggzy_encrypt_stage",
                "ggzy_decrypt",
                "python_aead_encrypt_into",
                "age_encrypt",
                "age_decrypt",
                "openssl_raw_aead",
            )
        }
        file_key = envelope.generate_file_key()
        state: dict[str, bytes] = {}

        def run_seal() -> None:
            seal_file(source, sealed, keys)

        def run_seal_hashed() -> None:
            seal_file(source, sealed, keys, hash_output=True)

        def run_open() -> None:
            open_file(sealed, state["key"], opened)

        def run_stage() -> None:
            with source.open("rb") as src, payload.open("wb") as dst:
                envelope.encrypt_payload(src, dst, file_key)

        def run_decrypt() -> None:
            with sealed.open("rb") as src, decrypted.open("wb") as dst:
                envelope.decrypt(src, dst, state["key"])

        def run_age_encrypt() -> None:
            assert age is not None
            subprocess.run([age, "-e", "-r", recipient, "-o", str(age_out), str(source)], check=True)  # noqa: S603

        def run_age_decrypt() -> None:
            assert age is not None
            subprocess.run([age, "-d", "-i", str(identity), "-o", str(age_back), str(age_out)], check=True)  # noqa: S603

        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("seal bench", total=repeat)
            for _ in range(repeat):
                cases["ggzy_seal_hashed"].offer(_timed(run_seal_hashed, lambda: _remove(sealed)))
                cases["ggzy_seal"].offer(_timed(run_seal, lambda: _remove(sealed)))
                state["key"] = bidder_file_key(sealed, keys)
                cases["ggzy_open"].offer(_timed(run_open, lambda: _remove(opened)))
                cases["ggzy_encrypt_stage"].offer(_timed(run_stage, lambda: _remove(payload)))
                cases["ggzy_decrypt"].offer(_timed(run_decrypt, lambda: _remove(decrypted)))
                cases["python_aead_encrypt_into"].offer(aead_in_memory(size_mib, decrypt=False))
                if age is not None:
                    cases["age_encrypt"].offer(_timed(run_age_encrypt, lambda: _remove(age_out)))
                    cases["age_decrypt"].offer(_timed(run_age_decrypt, lambda: _remove(age_back)))
                for path in (opened, payload, decrypted, age_back):
                    _remove(path)
                progress.advance(task)
        if age is None:
            cases["age_encrypt"].skipped = cases["age_decrypt"].skipped = "the age CLI is not installed"
        with err.status("openssl speed"):
            rate, why = openssl_rate(openssl_seconds)
        if rate is None:
            cases["openssl_raw_aead"].skipped = why
        else:
            cases["openssl_raw_aead"].seconds = size_mib / rate
            cases["openssl_raw_aead"].extra["source"] = "openssl speed -evp chacha20-poly1305 -bytes 65536"

        with err.status("peak memory of sealing, in child processes"):
            probes = []
            for probe_mib in sorted({min(MEMORY_SMALL_MIB, size_mib), size_mib}):
                probe_source = source
                if probe_mib != size_mib:
                    probe_source = work / f"probe-{probe_mib}.bin"
                    random_file(probe_source, probe_mib)
                _remove(sealed)
                result = memory_probe(probe_source, sealed)
                probes.append((probe_mib, result))

    c = cases
    targets = {
        "ggzy_seal": (
            {"age_encrypt": _ratio(c["ggzy_seal"], c["age_encrypt"])},
            {"age_encrypt": SEAL_TARGET_VS_AGE},
        ),
        "ggzy_seal_hashed": ({"age_encrypt": _ratio(c["ggzy_seal_hashed"], c["age_encrypt"])}, {}),
        "ggzy_open": ({"age_decrypt": _ratio(c["ggzy_open"], c["age_decrypt"])}, {}),
        "ggzy_encrypt_stage": (
            {
                "openssl_raw_aead": _ratio(c["ggzy_encrypt_stage"], c["openssl_raw_aead"]),
                "python_aead_encrypt_into": _ratio(c["ggzy_encrypt_stage"], c["python_aead_encrypt_into"]),
                "age_encrypt": _ratio(c["ggzy_encrypt_stage"], c["age_encrypt"]),
            },
            {"openssl_raw_aead": STAGE_TARGET_VS_OPENSSL},
        ),
        "ggzy_decrypt": ({"age_decrypt": _ratio(c["ggzy_decrypt"], c["age_decrypt"])}, {}),
        "python_aead_encrypt_into": (
            {"openssl_raw_aead": _ratio(c["python_aead_encrypt_into"], c["openssl_raw_aead"])},
            {},
        ),
    }
    for name, measurement in cases.items():
        ratio_vs, target = targets.get(name, ({}, {}))
        click.echo(_line("seal", measurement, ratio_vs, target))
    for probe_mib, result in probes:
        m = Measurement("ggzy_seal_peak_rss", probe_mib, seconds=float(result["seconds"]))
        m.extra["max_rss_mib"] = round(int(result["max_rss_kib"]) / 1024, 1)
        click.echo(_line("seal", m, {}, {}))


@click.command("opening")
@click.option(
    "--bids", type=click.IntRange(1, 100_000), default=100, show_default=True, help="Envelopes to open."
)
@click.option(
    "--size-mib",
    type=click.IntRange(1, 1024 * 1024),
    default=20,
    show_default=True,
    help="Size of each envelope's file, in MiB.",
)
@click.option(
    "--workers", type=click.IntRange(1, 256), default=2, show_default=True, help="Envelopes opened at once."
)
@scratch_dir
def opening_command(bids: int, size_mib: int, workers: int, directory: Path | None) -> None:
    """Open many sealed bids at once on a thread pool, as at an opening, next to the raw AEAD rate."""
    err = _err()
    keys = Keys()
    with tempfile.TemporaryDirectory(prefix="ggzy-bench-opening-", dir=directory) as scratch:
        work = Path(scratch)
        source = work / "bid.bin"
        with err.status(f"writing {size_mib} MiB of random data"):
            random_file(source, size_mib)
        envelopes: list[tuple[Path, bytes]] = []
        seal_seconds = 0.0
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task(f"sealing {bids} bids", total=bids)
            for index in range(bids):
                path = work / f"bid-{index:05d}.age"
                start = time.perf_counter()
                seal_file(source, path, keys)  # a real seal each time: its own file key and ephemeral keys
                seal_seconds += time.perf_counter() - start
                envelopes.append((path, bidder_file_key(path, keys)))
                progress.advance(task)

        latencies: list[float] = []

        def open_one(index: int) -> int:
            path, file_key = envelopes[index]
            start = time.perf_counter()
            result = open_file(path, file_key, work / f"opened-{index:05d}")
            latencies.append(time.perf_counter() - start)
            return sum(f.size for f in result.files)

        os.sync()
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task(f"opening {bids} bids on {workers} thread(s)", total=bids)
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ggzy-bench-open") as pool:
                opened_bytes = 0
                for size in pool.map(open_one, range(bids)):
                    opened_bytes += size
                    progress.advance(task)
            seconds = time.perf_counter() - start
        if opened_bytes != bids * size_mib * MIB:
            raise click.ClickException(f"opened {opened_bytes} bytes, expected {bids * size_mib * MIB}")

    total_mib = float(bids * size_mib)
    # the same run's raw rate, over at most 1 GiB: it is a rate, the volume only has to be long enough
    aead_mib = min(total_mib, 1024.0)
    aead = Measurement("python_aead_decrypt_into", aead_mib, seconds=aead_in_memory(aead_mib, decrypt=True))
    opening = Measurement("open_all", total_mib, seconds=seconds)
    opening.extra.update(
        {
            "bids": bids,
            "workers": workers,
            "bid_mib": size_mib,
            "open_p50_s": round(statistics.median(latencies), 4),
            "open_max_s": round(max(latencies), 4),
        }
    )
    sealing = Measurement("seal_all", total_mib, seconds=seal_seconds)
    sealing.extra.update({"bids": bids, "workers": 1, "bid_mib": size_mib})
    click.echo(_line("opening", sealing, {}, {}))
    click.echo(_line("opening", opening, {"python_aead_decrypt_into": _ratio(opening, aead)}, {}))
    click.echo(_line("opening", aead, {}, {}))
