"""Manual re-admission on NVFlare: the `ccattest_readmit SITE` admin command, and the
request file a site's own operator drops into its kit.

Why these channels. NVFlare 2.9 gives a parent-process component no documented way to
receive an admin command: `app_command` only reaches a running job's process, and the
command registry is built from `ServerCommandModules.cmd_modules` when the admin server is
created. That list is read in `server_train.main` *after* `deployer.deploy()`, which fires
SYSTEM_BOOTSTRAP, so a CommandModule appended at SYSTEM_BOOTSTRAP becomes an ordinary
server command: the admin's mTLS login, NVFlare's authorization (the right is the
command's name, so a project admin has it and others only where authorization.json grants
it) and the FLARE API's `do_command` all apply unchanged. That reaches the server only:
NVFlare forwards admin commands to clients through its own fixed modules. A client's
holds (a client judges its peers and the server too) are lifted by that site's operator,
who holds its kit: `ccattest nvflare readmit SITE --kit KIT` writes
`local/cc/readmit/SITE.json`, which the CC manager picks up at its next round. Both only
lift a hold; the site's next fresh affirming attestation re-admits it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import CCAttestError, ConfigError

COMMAND = "ccattest_readmit"
REQUESTS = "readmit"  # the folder beside cc_config.yaml
SITE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")

Lift = Callable[[str, str], str]  # (site, who asked) -> what happened, or raises


def check_site(site: str) -> str:
    if not site or len(site) > 128 or not set(site) <= SITE_CHARS or site.startswith("."):
        raise ConfigError("not a site name", expected="letters, digits, . _ - @",
                          found=repr(site[:60]))
    return site


def write_request(cc_dir: Path, site: str, by: str, at: datetime) -> Path:
    """The kit channel: a request the site's CC manager takes at its next round."""
    folder = cc_dir / REQUESTS
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{check_site(site)}.json"
    tmp = folder / f".{site}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"site": site, "by": by, "at": at.isoformat()}))
    os.replace(tmp, path)
    return path


def take_requests(cc_dir: Path, lift: Lift) -> list[tuple[str, str]]:
    """Apply and remove every request file; (site, outcome) for each. A request for a site
    that is not excluded is dropped with its outcome (so it cannot linger and lift a
    future exclusion)."""
    folder = cc_dir / REQUESTS
    if not folder.is_dir():
        return []
    done = []
    for path in sorted(folder.glob("*.json")):
        try:
            request = json.loads(path.read_text())
            site = check_site(str(request.get("site", "")))
            outcome = lift(site, f"{request.get('by', 'an operator')} (request file)")
        except (OSError, ValueError, AttributeError) as error:
            site, outcome = path.stem, f"unreadable request: {error}"
        except CCAttestError as error:
            site, outcome = path.stem, str(error)
        path.unlink(missing_ok=True)
        done.append((site, outcome))
    return done


def register_admin_command(lift: Lift) -> bool:
    """Add `ccattest_readmit SITE` to the server's admin commands; call at SYSTEM_BOOTSTRAP
    (before NVFlare builds its admin server). False when this NVFlare lacks the hook."""
    try:
        from nvflare.private.fed.server.server_cmd_modules import ServerCommandModules
    except ImportError:
        return False
    modules = ServerCommandModules.cmd_modules
    modules[:] = [m for m in modules if not isinstance(m, _module_class())]
    ServerCommandModules.register_cmd_module(_module_class()(lift))
    return True


_CLASS: Any = None


def _module_class() -> Any:
    """The CommandModule class, built on first use so that importing this module (the CLI)
    does not import NVFlare's server."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from nvflare.fuel.hci.conn import Connection
    from nvflare.fuel.hci.proto import MetaStatusValue, make_meta
    from nvflare.fuel.hci.reg import CommandModule, CommandModuleSpec, CommandSpec
    from nvflare.private.fed.server.cmd_utils import CommandUtil

    class ReadmitCommandModule(CommandModule, CommandUtil):
        def __init__(self, lift: Lift) -> None:
            super().__init__()
            self.lift = lift

        def get_spec(self) -> Any:
            return CommandModuleSpec(name="ccattest", cmd_specs=[CommandSpec(
                name=COMMAND,
                description="ccattest: lift the hold on an excluded site; its next fresh "
                            "affirming attestation re-admits it",
                usage=f"{COMMAND} <site-name>", handler_func=self.readmit,
                authz_func=self.command_authz_required, visible=True)])

        def readmit(self, conn: Connection, args: list[str]) -> None:
            if len(args) != 2:
                conn.append_error(f"usage: {COMMAND} <site-name>",
                                  meta=make_meta(MetaStatusValue.SYNTAX_ERROR, ""))
                return
            user = conn.get_prop("_userName") or "an admin"  # ConnProps.USER_NAME
            try:
                outcome = self.lift(check_site(args[1]), f"{user} (admin command)")
            except CCAttestError as error:
                conn.append_error(str(error), meta=make_meta(MetaStatusValue.ERROR, str(error)))
                return
            conn.append_string(outcome, meta=make_meta(MetaStatusValue.OK, outcome))

    _CLASS = ReadmitCommandModule
    return _CLASS
