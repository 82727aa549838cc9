from rich.console import Console

from . import (
    bench_cli,
    bench_console,
    bench_federation,
    bench_nvidia,
    bench_record,
    bench_seal,
    bench_seal_job,
    bench_software,
)
from .harness import RESULTS, record, show


def main() -> None:
    console = Console()
    with console.status("timing verification against bare primitives..."):
        rows = bench_software.rows()
    show(console, rows)
    with console.status("whole ccattest processes beside a floor process..."):
        cli_rows = bench_cli.rows()
    show(console, cli_rows)
    console.print("CLI figures: wall ms and peak MiB; the ratio is ours / the floor process "
                  "(python + cryptography + one P-384 verify).")
    with console.status("ccattest beside NVIDIA's nv-local-gpu-verifier on one real GPU "
                        "report and its two RIMs..."):
        nvidia_rows = bench_nvidia.rows(console)
    if nvidia_rows:
        show(console, nvidia_rows)
        console.print("NVIDIA figures: the same evidence, offline, at 2023-07-15; ratio = "
                      "ours / NVIDIA's (see benchmarks/bench_nvidia.py for how it is run).")
    rows = [*rows, *cli_rows, *nvidia_rows]
    with console.status("simulated federations: 10 to 200 sites, both protocols, wall time "
                        "and each site's critical path (~4 min)..."):
        federation = bench_federation.rows(console)
    with console.status("record growth: 30 days of 5-minute rounds, 200 sites "
                        "(~3 min)...") as status:
        growth = bench_record.rows(console, status.update)
    show(console, growth)
    with console.status("the console's routes: a 200-site federation with 30 days of record "
                        "(its data built once, ~2 min)...") as status:
        served = bench_console.rows(console, status.update)
    show(console, served)
    with console.status("sealed payloads: 1 MB to 1 GB beside bare AES-256-GCM "
                        "(~1 min)...") as status:
        sealing = bench_seal.rows(console, status.update)
    show(console, sealing)
    with console.status("a NumPy job on NVFlare, sealed and unsealed (~2 min)..."):
        sealed_job = bench_seal_job.rows(console)
    show(console, sealed_job)
    found = [*rows, *federation, *growth, *served, *sealing, *sealed_job]
    record(found)
    console.print(f"wrote {len(found)} figures to {RESULTS}")


main()
