"""The `ccattest` command: one module per command group.

Each module registers its commands on `app` when imported; heavy imports (verifiers,
pydantic policy models, HTTP clients, NVFlare) happen inside the commands.
"""

from __future__ import annotations

import json
import signal
import sys

try:  # typer 0.2x carries its own copy of click; older ones use click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_errors  # type: ignore[no-redef]

import typer

from . import (  # noqa: F401
    audit,
    audit_receipt,
    collateral,
    collect,
    demo,
    nvflare,
    policy,
    serve,
    status,
    token,
    verify,
)
from .app import app
from .common import EXIT_USAGE


def main(argv: list[str] | None = None) -> None:
    # Writing to a closed pipe (`ccattest verify ... | head -2`) ends quietly, not with a
    # traceback; the default SIGPIPE action keeps the exit status the shell expects.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=args, prog_name="ccattest", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()  # the command's help, as `ccattest` alone prints
        code = exc.exit_code
    except click_errors.UsageError as exc:
        usage_error(exc, args)
        code = EXIT_USAGE
    except click_errors.Abort:
        sys.stderr.write("aborted\n")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def usage_error(exc: click_errors.UsageError, args: list[str]) -> None:
    """One line, what is wrong and what to do, as for every other error; with --json, the
    one JSON object `verify` promises for every outcome."""
    if exc.ctx is not None and exc.ctx.parent is not None:
        command = exc.ctx.command_path
    else:  # the error came before a subcommand's context: name it from the words typed
        command = "ccattest"
        group = typer.main.get_command(app)
        for word in args[:2]:
            found = getattr(group, "commands", {}).get(word)
            if found is None:
                break
            command, group = f"{command} {word}", found
    message = exc.format_message().rstrip(".")
    hint = f"see `{command} --help`"
    sys.stderr.write(f"error: {message}; {hint}\n")
    if "--json" in args and args[:1] == ["verify"]:
        answer = {"platform": None, "status": "none", "verified": False, "attester": None,
                  "trust_vector": {}, "claims": {}, "collateral": {}, "policy_id": None,
                  "reasons": [{"check": "input", "passed": False, "message": message,
                               "hint": hint}]}
        sys.stdout.write(json.dumps(answer, indent=2) + "\n")


__all__ = ["app", "main"]
