from rich.console import Console

from . import bench_cli, bench_federation, bench_software
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
    rows = [*rows, *cli_rows]
    with console.status("simulated federations: 10 to 200 sites, both protocols (~2 min)..."):
        federation = bench_federation.rows(console)
    record([*rows, *federation])
    console.print(f"wrote {len(rows) + len(federation)} figures to {RESULTS}")


main()
