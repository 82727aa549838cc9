"""`ccattest nvflare`: ccattest's CC manager in NVIDIA FLARE startup kits."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CCAttestError, ConfigError

if TYPE_CHECKING:
    from ..nvflare.kits import Kit
from .app import nvflare_app
from .common import fail, out, platform_name

SEAL_MODES = ("off", "on", "required")


def seal_mode(value: str) -> str:
    if value not in SEAL_MODES:
        raise ConfigError(f"--seal {value}: unknown sealing mode", expected=" | ".join(SEAL_MODES))
    return value

ACTIONS = "alert|exclude_site|stop_jobs|shutdown"
# provisioning.HARDWARE's names, repeated so that --help need not import provisioning.
HARDWARE = ("snp", "tdx", "nvgpu", "azure-snp", "azure-tdx", "aci")
DEV_WARNING = ("development TEE: no hardware guarantee — do not use in production; pass "
               "--platform for real hardware")


@nvflare_app.command("configure")
def nvflare_configure(
    kits: Annotated[list[Path] | None, typer.Argument(
        metavar="KIT...", help="Server and client startup kits (folders with startup/).")] = None,
    poc: Annotated[Path | None, typer.Option(
        metavar="DIR", help="A POC or provisioned prod folder: configure every server and "
        "client kit in it.")
    ] = None,
    not_cc: Annotated[list[str] | None, typer.Option(
        "--not-cc", metavar="SITE", help="A site that is not CC-enabled (repeatable).")] = None,
    round_interval: Annotated[float, typer.Option(
        metavar="SECONDS", help="Seconds between rounds.")] = 60.0,
    round_deadline: Annotated[float, typer.Option(
        metavar="SECONDS", help="Seconds a round may take.")] = 30.0,
    on_rejected: Annotated[str, typer.Option(
        metavar=ACTIONS, help="What to do with a site whose evidence is rejected.")
    ] = "exclude_site",
    on_unreachable: Annotated[str, typer.Option(
        metavar=ACTIONS, help="What to do with a site that stops answering.")
    ] = "exclude_site",
    grace: Annotated[float, typer.Option(
        metavar="SECONDS", help="How long an unreachable site gets before its action.")
    ] = 60.0,
    root_dir: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Where the federation's development root key lives (never "
        "inside a kit).")] = None,
    platform: Annotated[list[str] | None, typer.Option(
        metavar="|".join(HARDWARE), help="The sites' CC hardware (repeatable: --platform snp "
        "--platform nvgpu for a CVM with a GPU). Without it: the development (software) TEE.")
    ] = None,
    maa_endpoint: Annotated[str | None, typer.Option(
        metavar="HOST", help="aci: the Microsoft Azure Attestation instance the sidecar asks "
        "and every site trusts.")] = None,
    federation: Annotated[str | None, typer.Option(
        metavar="NAME", help="The federation's name in every site's record (letters, digits, "
        ". _ -). Default: a random one.")] = None,
    record_url: Annotated[str | None, typer.Option(
        metavar="URL", help="Keep each site's record in a database instead of SQLite in its "
        "kit's local/cc/: {site} in the URL is the site's name, one database a site "
        "(postgresql://ccattest@db.example/records_{site}).")] = None,
    seal: Annotated[str, typer.Option(
        metavar="off|on|required", help="Seal models to each site's attested key (on), and "
        "refuse jobs with a non-CC site (required).")] = "off",
) -> None:
    """Add ccattest to existing NVFlare startup kits (or a POC workspace)."""
    from ..mesh.actions import ActionConfig
    from ..mesh.config import RoundsConfig
    from ..nvflare.kits import configure_kits, find_kit
    from ..provisioning import FederationRequest, SiteRequest

    try:
        paths = list(kits or [])
        if poc is not None:
            paths += sorted(p for p in poc.iterdir() if (p / "startup").is_dir())
        found = []
        for path in paths:
            try:
                found.append(find_kit(path))
            except ConfigError:
                if poc is None:
                    raise  # an explicitly named folder must be a kit; POC also holds admins
        if not found:
            raise ConfigError("no server or client startup kit found", hint="pass KIT... or --poc")
        if record_url and len(found) > 1 and "{site}" not in record_url:
            raise ConfigError("every site keeps its own log, in its own database",
                              expected="{site} in the URL, e.g. "
                              "postgresql://ccattest@db.example/records_{site}",
                              found=record_url)
        skip = set(not_cc or [])
        platforms = [name for name in (platform_name(p, HARDWARE) for p in platform or [])
                     if name is not None]
        request = FederationRequest(
            [SiteRequest(kit.name, kit.name not in skip) for kit in found],
            rounds=RoundsConfig(interval_seconds=round_interval, deadline_seconds=round_deadline),
            actions=ActionConfig(on_rejected=on_rejected, on_unreachable=on_unreachable,
                                 unreachable_grace_seconds=grace),
            platforms=platforms, maa_endpoint=maa_endpoint, federation=federation or "",
            record_url=record_url, seal=seal_mode(seal))
        root = root_dir or found[0].path.parent / ".ccattest-root"
        references = configure_kits(found, request, root, _now())
    except CCAttestError as error:
        fail(error)
    except ValueError as error:  # pydantic: an unknown action name
        fail(ConfigError("invalid option", found=str(error).splitlines()[0]))
    if platforms:
        _report_hardware(found, skip, platforms)
        _report_record(root)
        return
    warning = f"[bold yellow]{DEV_WARNING}[/bold yellow]"
    out().print(warning, soft_wrap=True)
    for kit in found:
        measurement = references.get(kit.name, "not CC-enabled")
        out().print(f"[bold]{kit.name}[/bold] ({kit.role}): {kit.local / 'cc'}  "
                    f"measurement {measurement[:16]}", soft_wrap=True)
    out().print(f"development root key: {root}", soft_wrap=True)
    _report_record(root)
    out().print(warning, soft_wrap=True)


def _report_record(root: Path) -> None:
    from ..provisioning import JWKS_FILE

    out().print("each site's record: local/cc/record.sqlite3 (or record.url); the "
                "federation's public keys, for whoever checks a record or a receipt:")
    out().print(f"  {root / JWKS_FILE}", soft_wrap=True)


def _report_hardware(kits: list[Kit], not_cc: set[str], platforms: list[str]) -> None:
    from ..provisioning import reference_todo

    console = out()
    for kit in kits:
        state = "not CC-enabled" if kit.name in not_cc else ", ".join(platforms)
        console.print(f"[bold]{kit.name}[/bold] ({kit.role}): {kit.local / 'cc'}  {state}",
                      soft_wrap=True)
    console.print("[bold yellow]TO DO before starting: the policies accept no measurement "
                  "yet[/bold yellow]\n(until then every site is refused). In each site's "
                  "local/cc/policy.yaml fill in:", soft_wrap=True)
    for line in reference_todo(platforms):
        console.print(f"  - {line}", soft_wrap=True)
    console.print("Take the values from a known-good site running the images you built:\n"
                  "  ccattest collect --platform PLATFORM --nonce HEX -o EVIDENCE\n"
                  "  ccattest policy init --from EVIDENCE", soft_wrap=True)


def _now() -> datetime:
    from ..timeutil import utcnow

    return utcnow()


@nvflare_app.command("readmit")
def nvflare_readmit(
    site: Annotated[str, typer.Argument(metavar="SITE", help="The excluded site.")],
    admin: Annotated[Path | None, typer.Option(
        metavar="ADMIN_KIT", help="An admin startup kit: lift the server's hold through "
        "NVFlare's admin channel (the `ccattest_readmit` command).")] = None,
    kit: Annotated[Path | None, typer.Option(
        metavar="KIT", help="This site's own startup kit (server or client): leave a "
        "request its CC manager takes at its next round.")] = None,
    user: Annotated[str | None, typer.Option(
        metavar="NAME", help="With --admin: the admin's name (default: the kit folder's).")
    ] = None,
) -> None:
    """Lift the hold on an excluded SITE. It does not re-admit it: its next fresh affirming
    attestation under the judging site's own policy does (exit 0 lifted, 2 not)."""
    from ..nvflare.admin import check_site

    try:
        check_site(site)
        if (admin is None) == (kit is None):
            raise ConfigError("say where to lift the hold", expected="--admin ADMIN_KIT (the "
                              "server) or --kit KIT (that site's own kit)", found="both or "
                              "neither")
        message = (_readmit_by_admin(site, admin, user) if admin is not None
                   else _readmit_by_request(site, kit))  # type: ignore[arg-type]
    except CCAttestError as error:
        fail(error)
    out().print(message, soft_wrap=True)


def _readmit_by_admin(site: str, admin: Path, user: str | None) -> str:
    from ..nvflare.admin import COMMAND

    try:
        from nvflare.fuel.flare_api.flare_api import new_secure_session
    except ImportError:
        raise ConfigError("NVFlare is not installed", hint="pip install 'ccattest[nvflare]'"
                          ) from None
    if not (admin / "startup").is_dir():
        raise ConfigError(f"{admin} is not an admin startup kit", expected="a folder with "
                          "startup/fed_admin.json")
    try:
        session = new_secure_session(user or admin.resolve().name, str(admin), timeout=30)
    except Exception as error:  # NVFlare raises its own kinds for login failures
        raise CCAttestError("cannot log in to the NVFlare server",
                            found=f"{type(error).__name__}: {error}") from None
    try:
        reply = session.do_command(f"{COMMAND} {site}")
    finally:
        session.close()
    meta = reply.get("meta") or {}
    info = str(meta.get("info") or reply.get("details") or reply)
    if meta.get("status", reply.get("status")) not in ("ok", "SUCCESS"):
        raise CCAttestError(f"the server refused: {info}"[:400])
    return info


def _readmit_by_request(site: str, kit: Path) -> str:
    from ..nvflare.admin import write_request

    cc_dir = kit / "local" / "cc"
    if not (cc_dir / "cc_config.yaml").is_file():
        raise ConfigError(f"{kit} holds no ccattest configuration",
                          expected="a startup kit configured by `ccattest nvflare configure`",
                          found=f"no {cc_dir / 'cc_config.yaml'}")
    path = write_request(cc_dir, site, "the site's operator", _now())
    return (f"{site}: request left in {path}; the CC manager lifts the hold at its next "
            "round, and the site's next fresh affirming attestation re-admits it")
