"""Sealed payloads: sealing and opening throughput beside bare AES-256-GCM, and the memory
it takes to open a 1 GB model.

Throughput, in MB/s (10^6 bytes a second of plaintext), for payloads of 1 MB, 100 MB and
1 GB, with both suites (mlkem768-x25519, the default, and x25519). Ours is the whole
operation: a fresh content key wrapped with HPKE, the header, the 4 MiB chunks each with
its own nonce, associated data and tag. The baseline is the bare primitive underneath:
cryptography's AESGCM encrypting (or decrypting) the same buffer in one call, timed in the
same run, interleaved with ours round by round so machine noise hits both alike; figures
are medians over the rounds. Goal: ours / bare >= 0.8x from 100 MB up.

Below 1 GB the payload is sealed and opened in memory (`seal`, `open_sealed`). At 1 GB it
goes file to file (`seal_stream`, `open_stream`) under .bench/, as a real model would: ours
then includes reading and writing the files (in the page cache; nothing is fsynced), the
baseline still encrypts in memory. The files are deleted afterwards.

Peak memory of opening the 1 GB payload: a fresh process makes its own key pair, the
payload is sealed to it, and the process opens it twice, streaming first, then in memory;
its VmHWM after each (the process's peak resident memory, a high-water mark, so the
streaming figure is read before the in-memory open runs; not ru_maxrss, which a child
started by vfork inherits from its parent). The in-memory open holds the envelope and the
plaintext (~2x the payload), never a third copy; streaming holds a few chunks.

`python -m benchmarks.bench_seal` runs it alone (about a minute on two cores).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from rich.console import Console
from rich.table import Table

from ccattest.seal.envelope import (
    DEFAULT_CHUNK,
    SealContext,
    open_sealed,
    open_stream,
    seal,
    seal_stream,
)
from ccattest.seal.keys import SealingKeyPair, SealingPublicKey, SuiteName

from .harness import RESULTS, Row, record, show

MB = 1_000_000
MIB = 1 << 20
SIZES = (1 * MB, 100 * MB, 1000 * MB)
STREAM_FROM = 1000 * MB  # at and above: file to file, and the peak memory of opening
GOAL, GOAL_FROM = 0.8, 100 * MB  # ours / bare, from this size up
STREAM_GOAL_CHUNKS = 4  # streaming open: at most this many chunks above the process's start
ROUNDS = {1 * MB: 9, 100 * MB: 9}  # by size; larger sizes STREAM_ROUNDS
STREAM_ROUNDS = 5
RUN_SECONDS = 0.1  # a timed run repeats a small operation until it lasts this long
NOISY_SPREAD = 0.2  # (max - min) / median of the bare runs above this: say timings are noisy
NOISY_OTHERS = 0.1  # others' share of the machine's CPU above this: say so too
SUITES = (SuiteName.MLKEM768_X25519, SuiteName.X25519)
CONTEXT = SealContext(job="bench", task="train", round=1, sender="server", recipient="site-1")
NONCE = bytes(12)

# The opening process: its own key pair (keys never leave a process), the public half on
# stdout, then on one line from stdin: go. Streams, then opens in memory, reporting peaks.
CHILD = r"""
import json, os, sys, time
from datetime import UTC, datetime
from ccattest.seal.envelope import SealContext, open_sealed, open_stream
from ccattest.seal.keys import SealingKeyPair, SuiteName

def peak():  # this process's own high-water mark (ru_maxrss would carry the parent's
    with open("/proc/self/status") as status:  # over the exec: subprocess uses vfork)
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB

suite, context, source, target = sys.argv[1:5]
context = SealContext(**json.loads(context))
pair = SealingKeyPair.generate(SuiteName(suite), datetime.now(UTC))
print(json.dumps(pair.public.to_wire()), flush=True)
sys.stdin.readline()
found = {"start": peak()}
began = time.perf_counter()
with open(source, "rb") as src, open(target, "wb") as dst:
    open_stream(src, dst, pair, context)
found["stream_seconds"] = time.perf_counter() - began
found["stream_peak"] = peak()
began = time.perf_counter()
with open(source, "rb") as src:
    envelope = bytearray(os.fstat(src.fileno()).st_size)
    view, at = memoryview(envelope), 0
    while at < len(envelope):
        got = src.readinto(view[at:])
        if not got:
            raise SystemExit("the sealed file ended early")
        at += got
plain = open_sealed(envelope, pair, context)
with open(target, "wb") as dst:
    dst.write(plain)
found["memory_seconds"] = time.perf_counter() - began
found["memory_peak"] = peak()
print(json.dumps(found), flush=True)
"""


def label(size: int) -> str:
    return f"{size / 1000 / MB:g} GB" if size >= 1000 * MB else (
        f"{size / MB:g} MB" if size >= MB else f"{size / 1000:g} kB")


def payload(size: int) -> bytes:
    """`size` bytes, random-looking (AES does not care; the disk might)."""
    block = os.urandom(MIB)
    return block * (size // MIB) + block[:size % MIB]


def interleaved(calls: dict[str, Callable[[], object]], rounds: int,
                run_seconds: float) -> dict[str, list[float]]:
    """Seconds per call of each, one timed run of each per round, in turn."""
    counts = {}
    for name, call in calls.items():  # warm up, and how many calls fill one run
        start = time.perf_counter()
        call()
        once = time.perf_counter() - start
        counts[name] = max(1, round(run_seconds / max(once, 1e-9)))
    found: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            count = counts[name]
            start = time.perf_counter()
            for _ in range(count):
                call()
            found[name].append((time.perf_counter() - start) / count)
    return found


def spread(times: list[float]) -> float:
    return (max(times) - min(times)) / statistics.median(times)


def open_peaks(size: int, plain_path: Path, directory: Path,
               suite: SuiteName = SuiteName.MLKEM768_X25519) -> dict[str, float]:
    """Peak RSS (MiB) of a fresh process opening a sealed `size`-byte payload, streaming
    then in memory; its start (after imports and key generation) for comparison."""
    sealed, opened = directory / "child-sealed.bin", directory / "child-opened.bin"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, suite.value, json.dumps(asdict(CONTEXT)), str(sealed),
         str(opened)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        public = SealingPublicKey.from_wire(json.loads(proc.stdout.readline()))
        with plain_path.open("rb") as src, sealed.open("wb") as dst:
            seal_stream(src, size, dst, public, CONTEXT)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        found = json.loads(proc.stdout.readline())
    finally:
        proc.stdin.close()
        if proc.wait(timeout=600) != 0:
            raise RuntimeError(f"the opening process exited {proc.returncode}")
    if opened.stat().st_size != size:
        raise RuntimeError("the opening process wrote the wrong number of bytes")
    for name in (sealed, opened):
        name.unlink()
    return found


def measure(size: int, pairs: dict[SuiteName, SealingKeyPair], directory: Path,
            stream: bool, rounds: int,
            run_seconds: float) -> tuple[dict[str, list[float]], dict[str, float] | None]:
    """Seconds per operation, by name (bare encrypt/decrypt, seal/open for each suite), and
    when streaming, the peak memory of opening (open_peaks)."""
    data = payload(size)
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    bare_sealed = aead.encrypt(NONCE, data, None)
    calls: dict[str, Callable[[], object]] = {"bare encrypt": lambda: aead.encrypt(
        NONCE, data, None)}
    if not stream:
        sealed = {suite: seal(data, pair.public, CONTEXT) for suite, pair in pairs.items()}
        for suite, pair in pairs.items():
            calls[f"seal {suite}"] = lambda pair=pair: seal(data, pair.public, CONTEXT)
        calls["bare decrypt"] = lambda: aead.decrypt(NONCE, bare_sealed, None)
        for suite, pair in pairs.items():
            calls[f"open {suite}"] = lambda suite=suite, pair=pair: open_sealed(
                sealed[suite], pair, CONTEXT)
        found = interleaved(calls, rounds, run_seconds)
        for suite, pair in pairs.items():
            if open_sealed(sealed[suite], pair, CONTEXT) != data:
                raise RuntimeError(f"{suite}: the opened payload differs")
        return found, None
    plain_path, opened = directory / "plain.bin", directory / "opened.bin"
    plain_path.write_bytes(data)
    paths = {suite: directory / f"sealed-{suite}.bin" for suite in pairs}

    def seal_file(suite: SuiteName) -> None:
        with plain_path.open("rb") as src, paths[suite].open("wb") as dst:
            seal_stream(src, size, dst, pairs[suite].public, CONTEXT)

    def open_file(suite: SuiteName) -> None:
        with paths[suite].open("rb") as src, opened.open("wb") as dst:
            open_stream(src, dst, pairs[suite], CONTEXT)

    for suite in pairs:  # before the opens: their warm-up writes the sealed files
        calls[f"seal {suite}"] = lambda suite=suite: seal_file(suite)
    calls["bare decrypt"] = lambda: aead.decrypt(NONCE, bare_sealed, None)
    for suite in pairs:
        calls[f"open {suite}"] = lambda suite=suite: open_file(suite)
    found = interleaved(calls, rounds, run_seconds)
    for suite in pairs:
        open_file(suite)
        if opened.read_bytes() != data:
            raise RuntimeError(f"{suite}: the opened file differs")
    data = bare_sealed = b""  # free them (the closures hold the names) before the child runs
    peaks = open_peaks(size, plain_path, directory)
    for path in (plain_path, opened, *paths.values()):
        path.unlink()
    return found, peaks


def cpu_seconds() -> tuple[float, float] | None:
    """(busy seconds of the whole machine, of this process and its children), or None
    without /proc/stat: what others ran is the difference."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _, _, irq, softirq, steal = (int(x) for x in fields[:8])
    ticks = os.sysconf("SC_CLK_TCK")
    mine = os.times()
    return ((user + nice + system + irq + softirq + steal) / ticks,
            mine.user + mine.system + mine.children_user + mine.children_system)


def rows(console: Console, progress: Callable[[str], None] | None = None, *,
         sizes: Sequence[int] = SIZES, stream_from: int = STREAM_FROM,
         rounds: int | None = None, run_seconds: float = RUN_SECONDS,
         directory: Path | None = None) -> list[Row]:
    """`rounds`: timed rounds per size (default: ROUNDS, or STREAM_ROUNDS when streaming);
    `directory`: where the files go (a folder inside it, removed afterwards)."""
    began, cpu_before = time.perf_counter(), cpu_seconds()
    pairs = {suite: SealingKeyPair.generate(suite, datetime.now(UTC)) for suite in SUITES}
    folder = (directory or RESULTS.parent) / f"seal-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    measured: dict[int, dict[str, list[float]]] = {}
    peaks_by_size: dict[int, dict[str, float]] = {}
    try:
        for size in sizes:
            stream = size >= stream_from
            if progress:
                progress(f"sealed payloads: {label(size)}"
                         f"{', file to file, and peak memory' if stream else ', in memory'}...")
            count = rounds or (STREAM_ROUNDS if stream else ROUNDS.get(size, STREAM_ROUNDS))
            measured[size], peaks = measure(size, pairs, folder, stream, count, run_seconds)
            if peaks is not None:
                peaks_by_size[size] = peaks
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    wall, cpu_after = time.perf_counter() - began, cpu_seconds()

    table = Table(title="sealed payloads beside bare AES-256-GCM (MB/s, medians)",
                  header_style="bold",
                  caption="bare: cryptography's AESGCM on the whole buffer, one call, in "
                  "memory, timed in the same rounds; files: file to file, page cache")
    for column in ("payload", "op", "suite", "runs", "ours", "bare", "ratio",
                   f"≥ {GOAL:.1f}x"):
        table.add_column(column, justify="left" if column in ("payload", "op", "suite")
                         else "right", no_wrap=column == "suite")
    out: list[Row] = []
    noisy: list[str] = []
    for size, found in measured.items():
        how = "file to file" if size >= stream_from else "in memory"
        for op, bare_name in (("seal", "bare encrypt"), ("open", "bare decrypt")):
            bare = size / statistics.median(found[bare_name]) / MB
            if spread(found[bare_name]) > NOISY_SPREAD:
                noisy.append(f"{label(size)} {bare_name.split()[1]} "
                             f"{spread(found[bare_name]):.0%}")
            for suite in pairs:
                times = found[f"{op} {suite}"]
                ours = size / statistics.median(times) / MB
                ratio = ours / bare
                met = ("yes" if ratio >= GOAL else "NO") if size >= GOAL_FROM else "-"
                table.add_row(f"{label(size)}{', files' if how == 'file to file' else ''}",
                              op, suite.value, str(len(times)), f"{ours:,.0f}",
                              f"{bare:,.0f}", f"{ratio:.2f}x", met)
                out.append(Row(f"{op} {label(size)} ({suite}, {how})", round(ours, 1), "MB/s",
                               f"bare AES-256-GCM {bare_name.split()[1]}, one call",
                               round(bare, 1), round(ratio, 3)))
    console.print(table)
    console.print(f"Goal: ours / bare ≥ {GOAL:.1f}x from {label(GOAL_FROM)} up (\"-\": no "
                  "goal; below that the HPKE key wrap, a fixed cost per payload, shows). At "
                  f"{label(stream_from)} ours reads and writes the files (page cache, no "
                  "fsync); bare stays in memory.")

    for size, found_peaks in peaks_by_size.items():
        start, stream_peak, stream_s, memory_peak, memory_s = (found_peaks[name] for name in (
            "start", "stream_peak", "stream_seconds", "memory_peak", "memory_seconds"))
        size_mib = size / MIB
        chunks = (stream_peak - start) * MIB / DEFAULT_CHUNK
        copies = (memory_peak - start) / size_mib
        peaks = Table(title=f"peak memory opening a {label(size)} payload "
                      f"({size_mib:,.0f} MiB) in a fresh process", header_style="bold",
                      caption=f"the process before opening (imports, key pair): "
                      f"{start:,.0f} MiB; a chunk: {DEFAULT_CHUNK // MIB} MiB")
        for column in ("open", "peak RSS", "above start", "payload", "goal", "met", "s"):
            peaks.add_column(column, justify="left" if column in ("open", "goal", "met")
                             else "right")
        peaks.add_row("streaming", f"{stream_peak:,.0f} MiB",
                      f"{stream_peak - start:,.0f} MiB", f"{size_mib:,.0f} MiB",
                      f"≤ {STREAM_GOAL_CHUNKS} chunks above start ({chunks:.1f})",
                      "yes" if chunks <= STREAM_GOAL_CHUNKS else "NO", f"{stream_s:.2f}")
        peaks.add_row("in memory", f"{memory_peak:,.0f} MiB",
                      f"{memory_peak - start:,.0f} MiB", f"{size_mib:,.0f} MiB",
                      f"< 3 copies: ≤ 2.5x payload above start ({copies:.2f}x)",
                      "yes" if copies <= 2.5 else "NO", f"{memory_s:.2f}")
        console.print(peaks)
        out.append(Row(f"open {label(size)}: peak memory, streaming", round(stream_peak, 1),
                       "MiB", "the payload's size", round(size_mib, 1),
                       round(stream_peak / size_mib, 3)))
        out.append(Row(f"open {label(size)}: peak memory, in memory", round(memory_peak, 1),
                       "MiB", "the payload's size", round(size_mib, 1),
                       round(memory_peak / size_mib, 3)))

    cores = os.cpu_count() or 1
    others = None
    if cpu_before and cpu_after:
        others = max(0.0, (cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1]))
    console.print(f"Sealing benchmark: {wall:.0f} s on {cores} cores"
                  + (f"; CPU used by other processes and the kernel's own threads meanwhile: "
                     f"{others:.0f} s ({others / (wall * cores):.0%} of the machine)"
                     if others is not None else "") + ".")
    busy = others is not None and others / (wall * cores) > NOISY_OTHERS
    if noisy or busy:
        console.print("[yellow]Timings look noisy: "
                      + (f"the bare runs spread {', '.join(noisy)} (max - min over median); "
                         if noisy else "")
                      + ("other processes were running; " if busy else "")
                      + "ours and bare are interleaved round by round, so the ratios suffer "
                      "less than the figures.[/]")
    return out


def main() -> None:
    console = Console()
    with console.status("sealed payloads: 1 MB, 100 MB, 1 GB, both suites, beside bare "
                        "AES-256-GCM (~1 min)...") as status:
        found = rows(console, status.update)
    show(console, found)
    record(found)


if __name__ == "__main__":
    main()
