"""The root `ccattest` command and its groups."""

from __future__ import annotations

from typing import Annotated

import typer


def _typer(help_text: str, **kwargs: object) -> typer.Typer:
    # Plain click help (no rich panels): it reads well at 80 columns and in a pipe.
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None,
                       add_completion=False, **kwargs)  # type: ignore[arg-type]


app = _typer(
    "Confidential-computing attestation for federated systems: collect evidence, verify it "
    "natively, appraise it against your policy, and sign the result.",
    name="ccattest",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    pretty_exceptions_enable=False,  # locals may hold key material; errors are ours to print
)
policy_app = _typer("Write and check appraisal policies.")
token_app = _typer("Signed attestation results (EAR JWTs) and their keys.")
collateral_app = _typer(
    "Fetch, export and import verification collateral for offline sites: AMD KDS "
    "certificates and CRLs (snp), Intel PCS TCB Info, QE Identity and CRLs (tdx), NVIDIA "
    "RIMs (nvgpu).")
nvflare_app = _typer("Run ccattest's CC manager inside NVIDIA FLARE.")
audit_app = _typer("Check a site's tamper-evident record of attestation events.")
app.add_typer(policy_app, name="policy")
app.add_typer(token_app, name="token")
app.add_typer(collateral_app, name="collateral")
app.add_typer(nvflare_app, name="nvflare")
app.add_typer(audit_app, name="audit")


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Show the version.")] = False
          ) -> None:
    if version:
        from .. import __version__

        typer.echo(f"ccattest {__version__}")
        raise typer.Exit()


@app.command("platforms")
def list_platforms() -> None:
    """List the evidence platforms this build knows."""
    import shutil
    import textwrap

    from ..platforms.base import platforms

    width = max(40, shutil.get_terminal_size((80, 24)).columns)
    for entry in platforms().values():
        typer.echo(textwrap.fill(entry.summary, width=width, initial_indent=f"{entry.name:<11} ",
                                 subsequent_indent=" " * 12, break_on_hyphens=False))
