"""`ggzy bench seal` and `ggzy bench opening`: envelope throughput, one JSON line per measurement.

`seal` measures, on one random file, file to file: sealing a bid (`seal_bid`, one file, three
custodians, t = 2) as the client does, without hashing the envelope (`hash_output=False`: it is hashed
when submitted), the same with the envelope's SHA-256 computed on the way (`ggzy_seal_hashed`), opening it
(`open_bid`), the bare encryption stage (`encrypt_payload`, no tar, manifest or hashing) and whole-envelope
decryption, next to the references that say what the hardware allows: Python's ChaCha20-Poly1305
`encrypt_into` on 64 KiB chunks in memory, `openssl speed -elapsed` on the same primitive (wall time, as
every other case here, not CPU time) and the age CLI encrypting and decrypting the same file. The
bidder's real cost is `ggzy_seal_fresh_process`: the `ggzy bid seal --prepared` command itself as a new
process, offline from a sealing context (start-up, imports, self-check and fsync included, its bytecode
cached once beforehand as an installed package has it), next to the age CLI as a process; beside them,
what sealing must do and age does not (`sha256_files`, the files' SHA-256 for the signed manifest) and
age followed by an fsync of its output (`age_encrypt_fsync`), as the command makes its envelope durable
before renaming it into place. Every case,
the references included, runs once per round (`storage.benchmark.interleave`), and each line gives the
median of `--repeat` rounds with min and max. The page cache is flushed (`sync`) before each timed run so
one run's write-back does not land in the next one's time. Peak memory is measured in fresh interpreters
sealing 32 MiB and `--size-mib` (`storage.benchmark.peak_memory`), to show it does not grow with the file.

`opening` seals `--bids` envelopes (each a real seal with its own file key), stores them in a local object
store and opens them all at once through the platform's path (`bidding.envelopes.open_stored`, on the
opening's `OPEN_THREADS`), next to `open_bid` on local files on as many threads, the work no opening can
skip done in memory on as many threads (`opening_work_in_memory`: SHA-256 of the ciphertext, decryption,
SHA-256 of the plaintext) and the raw `decrypt_into` rate, all interleaved round after round. The platform
must check the receipt's hash of the ciphertext and the manifest's hash of every file, so that work, not the
AEAD, is its bound: with SHA-256 at ≈ 1.7 GB/s and ChaCha20-Poly1305 at ≈ 3.3 GB/s per core it runs at
1/(1 + 2 × 3.3/1.7) ≈ 0.2x the raw AEAD. The platform path's target is at least 0.5x of that work (it also
writes the plaintext to disk and syncs it); its ratio to the raw AEAD is printed too.

Ratios carry their targets (seal at least 1.5x age in process and 1.0x as the command, the encryption
stage at least 0.7x openssl, opening at least 0.5x the work it cannot skip), but nothing passes or fails on
time: the exit status is 0 whatever the figures. The lines of cases run as processes (the command and age)
also give their CPU seconds, which a busy machine hardly moves, and the command's line its CPU ratio to
age's (`cpu_ratio_vs`, age's CPU seconds over the command's).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from rich.console import Console
from rich.progress import Progress

from bidding import agekeys, bidfile, envelope, envelopes, sealing
from storage.benchmark import (
    Spread,
    emit,
    interleave,
    interleave_async,
    peak_memory,
    ratio,
    repeat_option,
)
from storage.clock import SystemClock

if TYPE_CHECKING:
    from storage.objects import LocalObjectStore

MIB = 1024 * 1024
TENDER = "GGZY-320100-2026-B000001"
BIDDER_CODE = "91320100MA1BENCH01"
CUSTODIANS = 3
THRESHOLD = 2
SEAL_TARGET_VS_AGE = 1.5
SEAL_COMMAND_TARGET_VS_AGE = 1.0
STAGE_TARGET_VS_OPENSSL = 0.7
OPEN_TARGET_VS_WORK = 0.5
MEMORY_SMALL_MIB = 32
OPENSSL_SECONDS = 2


def ggzy_command() -> list[str]:
    """The `ggzy` command of this installation: its console script, else `python -m ggzy`."""
    script = Path(sys.executable).with_name("ggzy")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ggzy"]


def prepared_context(keys: Keys) -> sealing.Prepared:
    """The sealing context `ggzy bid prepare` would save for the benchmark's tender and bidder."""
    registered = [("encryption", agekeys.x25519_public_raw(keys.bidder))]
    if keys.bidder.signing is not None:
        registered.append(("signing", agekeys.ed25519_public_raw(keys.bidder)))
    return sealing.Prepared(
        tender_id="bench",
        tender_code=TENDER,
        lots=(1,),
        custodians=tuple(keys.custodian_publics),
        threshold=THRESHOLD,
        bidder_credit_code=BIDDER_CODE,
        registered=tuple((purpose, base64.b64encode(raw).decode()) for purpose, raw in registered),
    )


def seal_with_the_command(source: Path, target: Path, identity: Path, prepared: Path) -> None:
    """Seal `source` into `target` with `ggzy bid seal --prepared`, a new process, as a bidder runs it:
    the interpreter's start-up, the command line's imports, the envelope's self-check and its fsync are
    all in its time, as the age CLI's start-up is in age's."""
    command = [
        *ggzy_command(),
        "bid",
        "seal",
        "--prepared",
        str(prepared),
        "--key",
        str(identity),
        "--kind",
        "technical",
        "--out",
        str(target),
        str(source),
    ]
    # our own installation's command, argv as a list: no shell, nothing from outside
    subprocess.run(command, check=True, timeout=3600, stdout=subprocess.DEVNULL)  # noqa: S603


def cache_bytecode(source: Path, target: Path, identity: Path, prepared: Path) -> None:
    """Seal once, untimed, letting the interpreter write the bytecode of what the command imports, as an
    installed package has it (PYTHONDONTWRITEBYTECODE would otherwise make every run compile its
    sources, a cost no installed command pays)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    command = [*ggzy_command(), "bid", "seal", "--prepared", str(prepared), "--key", str(identity)]
    command += ["--kind", "technical", "--out", str(target), str(source)]
    subprocess.run(command, check=True, timeout=3600, env=env, stdout=subprocess.DEVNULL)  # noqa: S603


def sha256_files(paths: list[Path]) -> None:
    """What sealing must do and age does not: each file's SHA-256, for the signed manifest."""
    for path in paths:
        with path.open("rb") as src:
            hashlib.file_digest(src, "sha256")


def probe_seal(source: str, target: str) -> int:
    """Memory probe (run by `storage.benchmark.peak_memory` in a fresh interpreter): seal one file."""
    seal_file(Path(source), Path(target), Keys())
    return Path(target).stat().st_size


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


CASE_NOTES = {
    "ggzy_seal_fresh_process": "`ggzy bid seal --prepared` as a new process (offline): start-up, imports, "
    "sealing, the envelope's self-check and its fsync",
    "sha256_files": "the files' SHA-256 alone, for the signed manifest: work sealing must do and age does not",
    "age_encrypt_fsync": "age -e -r, then an fsync of its output, as ggzy bid seal makes its envelope durable",
}


def _line(bench: str, case: str, size_mib: float, spread: Spread | None, **fields: Any) -> None:
    """One JSON line: the case's median seconds and MiB/s over the rounds, with min and max."""
    row: dict[str, Any] = {"size_mib": size_mib}
    if spread is None:
        row |= {"seconds": None, "mib_per_s": None}
    else:
        row |= spread.fields("seconds") | spread.rate(size_mib).fields("mib_per_s", 1)
    emit(bench, case, **row, **fields)


def _mib_s(spread: Spread | None, size_mib: float) -> float | None:
    return None if spread is None else size_mib / spread.median


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


class ChildCpu:
    """CPU seconds (user and system) of the processes a case starts, per run: unlike wall time, this
    hardly moves with what else the machine is running, so a busy machine still shows what each costs."""

    def __init__(self) -> None:
        self.runs: dict[str, list[float]] = {}

    def around(self, case: str, run: Callable[[], object]) -> Callable[[], None]:
        """`run`, with the CPU time of the children it waited for recorded under `case`."""

        def measured() -> None:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            run()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            self.runs.setdefault(case, []).append(used)

        return measured

    def fields(self, case: str) -> dict[str, Any]:
        """`cpu_seconds` with its min and max, for a case that ran in child processes."""
        runs = self.runs.get(case)
        if not runs:
            return {}
        spread = Spread(tuple(runs)).fields("cpu_seconds", 3)
        spread.pop("repeats", None)
        return spread


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
    """MiB/s of `openssl speed -elapsed -evp chacha20-poly1305` on 64 KiB blocks, or (None, why not).

    `-elapsed` makes openssl divide by wall time, as every other case here does; without it, it divides
    by its own CPU time, which on a busy machine overstates the rate several times.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        return None, "openssl is not installed"
    command = [
        openssl,
        "speed",
        "-elapsed",
        "-evp",
        "chacha20-poly1305",
        "-seconds",
        str(seconds),
        "-bytes",
        "65536",
    ]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"openssl speed did not run: {exc}"
    # the result line: "ChaCha20-Poly1305  2199111.53k" in thousands of bytes per second
    match = re.search(r"^chacha20-poly1305\s+([0-9.]+)k\s*$", run.stdout, re.IGNORECASE | re.MULTILINE)
    if run.returncode != 0 or match is None:
        return None, f"openssl speed gave no ChaCha20-Poly1305 figure (exit {run.returncode})"
    return float(match.group(1)) * 1000 / MIB, None


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
@repeat_option()
@click.option(
    "--openssl-seconds",
    type=click.IntRange(1, 60),
    default=OPENSSL_SECONDS,
    show_default=True,
    help="How long `openssl speed` measures in each round.",
)
@scratch_dir
def seal_command(size_mib: int, repeat: int, openssl_seconds: int, directory: Path | None) -> None:
    """Seal and open throughput, file to file, interleaved with age, openssl and the raw AEAD."""
    err = _err()
    keys = Keys()
    with tempfile.TemporaryDirectory(prefix="ggzy-bench-seal-", dir=directory) as scratch:
        work = Path(scratch)
        source = work / "bid.bin"
        sealed = work / "bid.age"
        fresh = work / "fresh.age"
        payload = work / "payload.bin"
        decrypted = work / "decrypted.bin"
        opened = work / "opened"
        age_out = work / "age.age"
        age_back = work / "age.out"
        identity = work / "key.txt"
        identity.write_text(agekeys.identity_file_text(keys.bidder, SystemClock().now()))
        prepared = work / "prepared.json"
        prepared.write_text(prepared_context(keys).to_json())
        recipient = agekeys.recipient(agekeys.x25519_public_raw(keys.bidder))
        age = shutil.which("age")
        with err.status(f"writing {size_mib} MiB of random data"):
            random_file(source, size_mib)
        file_key = envelope.generate_file_key()
        seal_file(source, sealed, keys)
        state = {"key": bidder_file_key(sealed, keys)}
        cache_bytecode(source, fresh, identity, prepared)
        openssl_skipped: list[str] = []
        cpu = ChildCpu()

        def run_seal() -> None:
            seal_file(source, sealed, keys)
            state["key"] = bidder_file_key(sealed, keys)

        def run_seal_hashed() -> None:
            seal_file(source, sealed, keys, hash_output=True)
            state["key"] = bidder_file_key(sealed, keys)

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

        def run_age_encrypt_fsync() -> None:
            run_age_encrypt()
            with age_out.open("rb") as written:
                os.fsync(written.fileno())

        def run_age_decrypt() -> None:
            assert age is not None
            subprocess.run([age, "-d", "-i", str(identity), "-o", str(age_back), str(age_out)], check=True)  # noqa: S603

        def openssl_seconds_for_file() -> float:
            rate, why = openssl_rate(openssl_seconds)
            if rate is None:
                openssl_skipped.append(why or "openssl gave no figure")
                return 0.0
            return size_mib / rate

        cases: dict[str, Callable[[], float]] = {
            "ggzy_seal": lambda: _timed(run_seal, lambda: _remove(sealed)),
            "ggzy_seal_hashed": lambda: _timed(run_seal_hashed, lambda: _remove(sealed)),
            "ggzy_seal_fresh_process": lambda: _timed(
                cpu.around(
                    "ggzy_seal_fresh_process",
                    lambda: seal_with_the_command(source, fresh, identity, prepared),
                ),
                lambda: _remove(fresh),
            ),
            "ggzy_open": lambda: _timed(run_open, lambda: _remove(opened)),
            "ggzy_encrypt_stage": lambda: _timed(run_stage, lambda: _remove(payload)),
            "ggzy_decrypt": lambda: _timed(run_decrypt, lambda: _remove(decrypted)),
            "python_aead_encrypt_into": lambda: aead_in_memory(size_mib, decrypt=False),
            "sha256_files": lambda: _timed(lambda: sha256_files([source])),
            "openssl_raw_aead": openssl_seconds_for_file,
        }
        if age is not None:
            cases["age_encrypt"] = lambda: _timed(
                cpu.around("age_encrypt", run_age_encrypt), lambda: _remove(age_out)
            )
            cases["age_encrypt_fsync"] = lambda: _timed(run_age_encrypt_fsync, lambda: _remove(age_out))
            cases["age_decrypt"] = lambda: _timed(run_age_decrypt, lambda: _remove(age_back))
        with err.status(f"{repeat} interleaved rounds of {len(cases)} cases"):
            spreads: dict[str, Spread | None] = dict(interleave(cases, repeat))
        if openssl_skipped:
            spreads["openssl_raw_aead"] = None

        with err.status("peak memory of sealing, in fresh interpreters"):
            probes = []
            for probe_mib in sorted({min(MEMORY_SMALL_MIB, size_mib), size_mib}):
                probe_source = source
                if probe_mib != size_mib:
                    probe_source = work / f"probe-{probe_mib}.bin"
                    random_file(probe_source, probe_mib)
                _remove(sealed)
                probes.append(
                    (probe_mib, peak_memory("bidding.bench:probe_seal", str(probe_source), str(sealed)))
                )

    def vs(case: str, baseline: str) -> float | None:
        return ratio(_mib_s(spreads.get(case), size_mib), _mib_s(spreads.get(baseline), size_mib))

    no_age = None if age is not None else "the age CLI is not installed"
    lines: list[tuple[str, dict[str, float | None], dict[str, float], str | None]] = [
        (
            "ggzy_seal",
            {"age_encrypt": vs("ggzy_seal", "age_encrypt")},
            {"age_encrypt": SEAL_TARGET_VS_AGE},
            None,
        ),
        ("ggzy_seal_hashed", {"age_encrypt": vs("ggzy_seal_hashed", "age_encrypt")}, {}, None),
        (
            "ggzy_seal_fresh_process",
            {
                "age_encrypt": vs("ggzy_seal_fresh_process", "age_encrypt"),
                "age_encrypt_fsync": vs("ggzy_seal_fresh_process", "age_encrypt_fsync"),
            },
            {"age_encrypt": SEAL_COMMAND_TARGET_VS_AGE},
            None,
        ),
        ("ggzy_open", {"age_decrypt": vs("ggzy_open", "age_decrypt")}, {}, None),
        (
            "ggzy_encrypt_stage",
            {
                "openssl_raw_aead": vs("ggzy_encrypt_stage", "openssl_raw_aead"),
                "python_aead_encrypt_into": vs("ggzy_encrypt_stage", "python_aead_encrypt_into"),
                "age_encrypt": vs("ggzy_encrypt_stage", "age_encrypt"),
            },
            {"openssl_raw_aead": STAGE_TARGET_VS_OPENSSL},
            None,
        ),
        ("ggzy_decrypt", {"age_decrypt": vs("ggzy_decrypt", "age_decrypt")}, {}, None),
        (
            "python_aead_encrypt_into",
            {"openssl_raw_aead": vs("python_aead_encrypt_into", "openssl_raw_aead")},
            {},
            None,
        ),
        ("sha256_files", {"age_encrypt": vs("sha256_files", "age_encrypt")}, {}, None),
        ("age_encrypt", {}, {}, no_age),
        ("age_encrypt_fsync", {"age_encrypt": vs("age_encrypt_fsync", "age_encrypt")}, {}, no_age),
        ("age_decrypt", {}, {}, no_age),
        ("openssl_raw_aead", {}, {}, openssl_skipped[0] if openssl_skipped else None),
    ]
    for case, ratio_vs, target, skipped in lines:
        extra: dict[str, Any] = {"ratio_vs": ratio_vs, "target": target}
        if skipped is not None:
            extra["skipped"] = skipped
        extra |= cpu.fields(case)
        if case == "ggzy_seal_fresh_process":
            ours, age_cpu = cpu.fields(case).get("cpu_seconds"), cpu.fields("age_encrypt").get("cpu_seconds")
            extra["cpu_ratio_vs"] = {"age_encrypt": ratio(age_cpu, ours)}
        if case in CASE_NOTES:
            extra["measures"] = CASE_NOTES[case]
        if case == "openssl_raw_aead":
            extra["source"] = (
                f"openssl speed -elapsed -evp chacha20-poly1305 -bytes 65536 -seconds {openssl_seconds}"
            )
        _line("seal", case, size_mib, spreads.get(case), **extra)
    for probe_mib, peak in probes:
        emit("seal", "ggzy_seal_peak_rss", size_mib=probe_mib, **peak.fields())


def opening_work_in_memory(size_mib: float) -> float:
    """Seconds for the work no opening can skip, over `size_mib` MiB in memory, 1 MiB at a time: SHA-256
    of the ciphertext (checked against the receipt), ChaCha20-Poly1305 decryption of its 64 KiB chunks into
    one reused buffer, SHA-256 of the plaintext (checked against the manifest). No I/O, no copies."""
    aead = ChaCha20Poly1305(os.urandom(32))
    count = MIB // envelope.CHUNK_SIZE
    plain = memoryview(bytearray(os.urandom(count * envelope.CHUNK_SIZE)))
    sealed = memoryview(bytearray(count * envelope.ENCRYPTED_CHUNK_SIZE))
    nonce = bytes(12)
    slots = [
        (
            sealed[i * envelope.ENCRYPTED_CHUNK_SIZE : (i + 1) * envelope.ENCRYPTED_CHUNK_SIZE],
            plain[i * envelope.CHUNK_SIZE : (i + 1) * envelope.CHUNK_SIZE],
        )
        for i in range(count)
    ]
    for ciphertext, plaintext in slots:
        aead.encrypt_into(nonce, plaintext, None, ciphertext)
    sealed_digest, plain_digest = hashlib.sha256(), hashlib.sha256()
    start = time.perf_counter()
    for _ in range(int(size_mib * MIB) // MIB):
        sealed_digest.update(sealed)
        for ciphertext, plaintext in slots:
            aead.decrypt_into(nonce, ciphertext, None, plaintext)
        plain_digest.update(plain)
    return time.perf_counter() - start


def _on_threads(work: Callable[[float], float], total_mib: float, threads: int) -> float:
    """Seconds for `threads` threads to do `work` over `total_mib` MiB between them."""
    share = total_mib / threads
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ggzy-bench-work") as pool:
        started = time.perf_counter()
        list(pool.map(lambda _: work(share), range(threads)))
        return time.perf_counter() - started


def aead_on_threads(total_mib: float, threads: int) -> float:
    """Seconds for `threads` threads to decrypt `total_mib` MiB between them with the raw AEAD, in memory."""
    return _on_threads(lambda mib: aead_in_memory(mib, decrypt=True), total_mib, threads)


def opening_work_on_threads(total_mib: float, threads: int) -> float:
    """Seconds for `threads` threads to do `opening_work_in_memory` over `total_mib` MiB between them."""
    return _on_threads(opening_work_in_memory, total_mib, threads)


async def _open_all_stored(store: LocalObjectStore, stored: list[tuple[str, str, bytes]], round_: int) -> int:
    """Open every stored envelope at once through `bidding.envelopes.open_stored`, as the opening jobs do."""

    results = await asyncio.gather(
        *(
            envelopes.open_stored(
                store,
                key=key,
                sha256=sha256,
                file_key=file_key,
                out_prefix=f"opened/round-{round_}/{index:05d}",
            )
            for index, (key, sha256, file_key) in enumerate(stored)
        )
    )
    failed = [r.error for r in results if r.error is not None]
    if failed:
        raise click.ClickException(f"{len(failed)} envelopes did not open: {sorted(set(failed))}")
    return sum(f["size"] for r in results for f in r.files)


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
@repeat_option()
@scratch_dir
def opening_command(bids: int, size_mib: int, repeat: int, directory: Path | None) -> None:
    """Open many stored bids at once through the platform's path, next to the raw AEAD on as many threads."""
    # imported here: the seal probe imports this module in a fresh interpreter, and its baseline
    # memory should be sealing's, not the database layer's
    from storage.objects import LocalObjectStore

    err = _err()
    keys = Keys()
    threads = int(envelopes.OPEN_THREADS)
    with tempfile.TemporaryDirectory(prefix="ggzy-bench-opening-", dir=directory) as scratch:
        work = Path(scratch)
        source = work / "bid.bin"
        store = LocalObjectStore(work / "objects", "http://127.0.0.1", secrets.token_bytes(32))
        asyncio.run(store.ensure_ready())
        with err.status(f"writing {size_mib} MiB of random data"):
            random_file(source, size_mib)
        stored: list[tuple[str, str, bytes]] = []
        local: list[tuple[Path, bytes]] = []
        seal_seconds = 0.0
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task(f"sealing and storing {bids} bids", total=bids)
            for index in range(bids):
                path = work / f"bid-{index:05d}.age"
                started = time.perf_counter()
                seal_file(source, path, keys)  # a real seal each time: its own file key and ephemeral keys
                seal_seconds += time.perf_counter() - started
                file_key = bidder_file_key(path, keys)
                key = f"bids/bench/{index:05d}.age"
                info = asyncio.run(store.put_bytes(key, path.read_bytes()))
                stored.append((key, info.sha256 or "", file_key))
                local.append((path, file_key))
                progress.advance(task)

        total_mib = float(bids * size_mib)
        expected = bids * size_mib * MIB
        rounds = {"platform": 0}

        async def platform() -> float:
            rounds["platform"] += 1
            _remove(store.root / "opened")
            os.sync()
            started = time.perf_counter()
            opened = await _open_all_stored(store, stored, rounds["platform"])
            seconds = time.perf_counter() - started
            if opened != expected:
                raise click.ClickException(f"opened {opened} bytes, expected {expected}")
            return seconds

        def files_only() -> float:
            for index in range(bids):
                _remove(work / f"opened-{index:05d}")
            os.sync()

            def open_one(index: int) -> int:
                path, file_key = local[index]
                return sum(f.size for f in open_file(path, file_key, work / f"opened-{index:05d}").files)

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ggzy-bench-open") as pool:
                opened = sum(pool.map(open_one, range(bids)))
            seconds = time.perf_counter() - started
            if opened != expected:
                raise click.ClickException(f"opened {opened} bytes, expected {expected}")
            return seconds

        async def files_only_async() -> float:
            return await asyncio.to_thread(files_only)

        async def aead() -> float:
            return await asyncio.to_thread(aead_on_threads, total_mib, threads)

        async def opening_work() -> float:
            return await asyncio.to_thread(opening_work_on_threads, total_mib, threads)

        cases: dict[str, Callable[[], Awaitable[float]]] = {
            "open_stored_all": platform,
            "open_files_all": files_only_async,
            "hash_decrypt_hash_in_memory": opening_work,
            "python_aead_decrypt_into": aead,
        }
        with err.status(f"{repeat} interleaved rounds: opening {bids} bids on {threads} thread(s)"):
            spreads = asyncio.run(interleave_async(cases, repeat))

    common = {"bids": bids, "bid_mib": size_mib, "threads": threads}
    raw = spreads["python_aead_decrypt_into"]
    floor = spreads["hash_decrypt_hash_in_memory"]

    def versus(case: str) -> dict[str, float | None]:
        return {
            "hash_decrypt_hash_in_memory": ratio(floor.median, spreads[case].median),
            "python_aead_decrypt_into": ratio(raw.median, spreads[case].median),
        }

    _line(
        "opening",
        "open_stored_all",
        total_mib,
        spreads["open_stored_all"],
        path="object store hands over and hashes the envelope, open_bid, metadata, store takes the files over",
        ratio_vs=versus("open_stored_all"),
        target={"hash_decrypt_hash_in_memory": OPEN_TARGET_VS_WORK},
        **common,
    )
    _line(
        "opening",
        "open_files_all",
        total_mib,
        spreads["open_files_all"],
        path="open_bid from local files to local files",
        ratio_vs=versus("open_files_all"),
        target={},
        **common,
    )
    _line(
        "opening",
        "hash_decrypt_hash_in_memory",
        total_mib,
        floor,
        ratio_vs={"python_aead_decrypt_into": ratio(raw.median, floor.median)},
        target={},
        **common,
    )
    _line("opening", "python_aead_decrypt_into", total_mib, raw, ratio_vs={}, target={}, **common)
    emit("opening", "seal_all", size_mib=total_mib, seconds=round(seal_seconds, 4), bids=bids, threads=1)
