from rich.console import Console

from . import bench_software
from .harness import RESULTS, record, show


def main() -> None:
    console = Console()
    with console.status("running benchmarks (a few seconds each)..."):
        rows = bench_software.rows()
    show(console, rows)
    record(rows)
    console.print(f"wrote {len(rows)} figures to {RESULTS}")


main()
