"""`ccattest collateral`: fetch what verification needs, and carry it to offline sites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import CCAttestError
from .app import collateral_app
from .common import DEFAULT_CACHE, CacheOption, fail, out, platform_name, read_file

FETCH_PLATFORMS = ("snp", "tdx", "nvgpu")


@collateral_app.command("fetch")
def collateral_fetch(
    reports: Annotated[list[Path], typer.Argument(
        metavar="REPORT...", help="SNP reports, TDX quotes or GPU reports (raw, hex, base64).")],
    platform: Annotated[str, typer.Option(
        metavar="snp|tdx|nvgpu",
        help="snp: AMD KDS; tdx: Intel PCS or a PCCS; nvgpu: NVIDIA's RIM service.")] = "snp",
    gpu_arch: Annotated[str | None, typer.Option(
        "--gpu-arch", metavar="hopper|blackwell", help="nvgpu: names the driver RIM.")] = None,
    cache: CacheOption = DEFAULT_CACHE,
    product: Annotated[str | None, typer.Option(
        metavar="Milan|Genoa|Turin", help="snp: the product of version 2 reports.")] = None,
    crl: Annotated[bool, typer.Option("--crl", help="snp: also fetch the CRL.")] = False,
    url: Annotated[str | None, typer.Option(
        "--url", "--kds", metavar="URL", help="Service base URL (KDS, PCS, PCCS, RIM).")
    ] = None,
) -> None:
    """Fetch the collateral these reports need into the cache (then `export` it)."""
    from ..collateral import CollateralCache
    from ..encoding import decode_blob
    from ..timeutil import utcnow

    try:
        chosen = platform_name(platform, FETCH_PLATFORMS)
        blobs = [decode_blob(read_file(path, "report file")) for path in reports]
        store = CollateralCache(cache.expanduser())
        if chosen == "snp":
            from ..collateral.bundle import fetch_for_reports
            from ..platforms.snp.kds import KDS_URL, KdsClient

            with KdsClient(url or KDS_URL, cache=store) as client:
                count = fetch_for_reports(client, blobs, product=product, crl=crl)
        elif chosen == "tdx":
            from ..platforms.tdx import PCS_URL
            from ..platforms.tdx.pcs import PcsClient
            from ..platforms.tdx.verify import collateral_request

            wanted = {collateral_request(blob) for blob in blobs}
            with PcsClient(url or PCS_URL, cache=store) as client:
                for fmspc, ca in sorted(wanted):
                    client.collateral(bytes.fromhex(fmspc), ca)
            count = len(wanted)
        else:
            from ..platforms.nvgpu.abi import parse_report as parse_gpu_report
            from ..platforms.nvgpu.rim import rim_ids
            from ..platforms.nvgpu.rimservice import RimClient

            wanted = set()
            for blob in blobs:
                fields = parse_gpu_report(blob).fields
                ids = rim_ids(driver_version=fields.driver_version,
                              vbios_version=fields.vbios_version, project=fields.project,
                              project_sku=fields.project_sku, chip_sku=fields.chip_sku,
                              arch=gpu_arch or "hopper", chip_info=fields.chip_info)
                wanted |= {ids.driver, ids.vbios}
            with RimClient(*([url] if url else []), cache=store) as client:
                for rim_id in sorted(wanted):
                    client.rim(rim_id, at=utcnow())
            count = len(wanted)
    except CCAttestError as error:
        fail(error)
    out().print(f"collateral for {len(reports)} report(s) ({count} sets/items) is in {cache}",
                soft_wrap=True)


@collateral_app.command("export")
def collateral_export(
    bundle: Annotated[Path, typer.Argument(metavar="BUNDLE", help="File to write.")],
    cache: CacheOption = DEFAULT_CACHE,
) -> None:
    """Write the cache's valid items to one bundle file for an air-gapped site."""
    from ..collateral import CollateralCache
    from ..collateral.bundle import export_bundle
    from ..timeutil import utcnow

    try:
        items = export_bundle(CollateralCache(cache.expanduser()), bundle, valid_at=utcnow())
    except CCAttestError as error:
        fail(error)
    out().print(f"wrote {len(items)} items to {bundle}", soft_wrap=True)


@collateral_app.command("import")
def collateral_import(
    bundle: Annotated[Path, typer.Argument(metavar="BUNDLE", help="Bundle to read.")],
    cache: CacheOption = DEFAULT_CACHE,
) -> None:
    """Check a bundle (digests, parseable items) and add it to the cache."""
    from ..collateral import CollateralCache
    from ..collateral.bundle import import_bundle

    try:
        items = import_bundle(CollateralCache(cache.expanduser()), bundle)
    except CCAttestError as error:
        fail(error)
    out().print(f"imported {len(items)} items into {cache}", soft_wrap=True)
