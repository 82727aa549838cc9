"""How failure actions are carried out inside NVFlare's parent processes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..mesh.actions import Cause
from ..mesh.trustbook import TrustBook

log = logging.getLogger("ccattest.nvflare")


def _stop_runs(engine: Any, site: str | None) -> list[str]:
    """Abort running jobs (those including `site`, or all); returns their ids."""
    from nvflare.apis.fl_constant import RunProcessKey

    stopped = []
    for job_id, info in list(getattr(engine, "run_processes", {}).items()):
        participants = [getattr(c, "name", c) for c in info.get(RunProcessKey.PARTICIPANTS) or []]
        if site is None or site in participants:
            with engine.new_context() as fl_ctx:
                engine.job_runner.stop_run(job_id, fl_ctx)
            stopped.append(job_id)
    return stopped


Note = Callable[[str, str, str], None]  # (event kind, site, detail)


class ServerEffects:
    def __init__(self, engine: Any, trust: TrustBook, note: Note) -> None:
        self.engine = engine
        self.trust = trust
        self._note = note

    def alert(self, site: str, cause: Cause, detail: str) -> None:
        log.warning("ccattest: %s is %s: %s", site, cause.value, detail)
        self._note("alert", site, f"{cause.value}: {detail}")

    def exclude_site(self, site: str, detail: str, cause: Cause = Cause.REJECTED) -> None:
        if self.trust.exclude(site, detail):
            stopped = _stop_runs(self.engine, site)
            self.engine.disable_clients([site])
            log.error("ccattest: excluded %s (%s); stopped jobs %s", site, detail, stopped)
            self._note("exclude_site", site, detail)

    def readmit_site(self, site: str, detail: str) -> None:
        """Undo exclude_site once a fresh affirming verdict re-admitted the site (the mesh
        decided; the trust book is already clear): NVFlare lets it in again, and a live
        client's next heartbeat brings its session back."""
        self.engine.enable_clients([site])
        log.warning("ccattest: re-admitted %s (%s)", site, detail)
        self._note("readmit_site", site, detail)

    def allow_rejoin(self, site: str) -> None:
        """An excluded client re-registers with affirming (provisional) evidence: NVFlare
        refuses disabled clients at registration, after our check, so enable it to let the
        registration finish and its confirmation attest it definitively. It stays excluded
        in the trust book, so the job gate refuses its jobs until then."""
        self.engine.enable_clients([site])
        self._note("rejoin_allowed", site, "re-registering; excluded until its confirmation")

    def stop_jobs(self, site: str, detail: str) -> None:
        stopped = _stop_runs(self.engine, None)
        log.error("ccattest: stopped jobs %s because %s failed: %s", stopped, site, detail)
        self._note("stop_jobs", site, detail)

    def shutdown(self, site: str, detail: str) -> None:
        log.critical("ccattest: shutting the federation down: %s: %s", site, detail)
        self._note("shutdown", site, detail)
        threading.Thread(target=self._shutdown_all, args=(site,), name="ccattest-shutdown",
                         daemon=True).start()

    def _shutdown_all(self, failed_site: str) -> None:
        from nvflare.fuel.hci.conn import Connection
        from nvflare.fuel.hci.server.constants import ConnProps
        from nvflare.private.fed.server.training_cmds import TrainingCommandModule

        # NVFlare declines to shut down while a job runs, or while a client it must stop
        # does not answer (a dead one): stop the jobs and drop the failed site first.
        _stop_runs(self.engine, None)
        if failed_site != "*":
            self.engine.disable_clients([failed_site])
        conn = Connection(app_ctx=self.engine,
                          props={ConnProps.ADMIN_SERVER: self.engine.server.admin_server})
        commands = TrainingCommandModule()
        error = commands.validate_command_targets(conn, ["all"])  # "" when valid
        if error:
            log.error("ccattest: cannot shut down: %s", error)
            return
        commands.shutdown(conn, ["shutdown", "all"])
        log.info("ccattest: shutdown answered %s", conn.buffer.output)


class ClientEffects:
    """A client can only act on itself: refuse jobs with an excluded peer, or leave."""

    def __init__(self, engine: Any, trust: TrustBook, server: str, note: Note) -> None:
        self.engine = engine
        self.trust = trust
        self.server = server
        self._note = note

    def alert(self, site: str, cause: Cause, detail: str) -> None:
        log.warning("ccattest: %s is %s: %s", site, cause.value, detail)
        self._note("alert", site, f"{cause.value}: {detail}")

    def exclude_site(self, site: str, detail: str, cause: Cause = Cause.REJECTED) -> None:
        self.trust.exclude(site, detail)
        self._note("exclude_site", site, detail)
        if site != self.server:
            return
        if cause is Cause.REJECTED:
            self.shutdown(site, f"the server failed attestation: {detail}")
        else:  # a partition heals: wait, refusing jobs, for the server's next fresh evidence
            log.error("ccattest: the server is unreachable (%s): refusing its jobs until it "
                      "attests again", detail)

    def readmit_site(self, site: str, detail: str) -> None:
        self._note("readmit_site", site, detail)  # the trust book is clear: jobs run again

    def stop_jobs(self, site: str, detail: str) -> None:
        for job_id in self.engine.get_all_job_ids():
            self.engine.abort_app(job_id)
        self._note("stop_jobs", site, detail)

    def shutdown(self, site: str, detail: str) -> None:
        log.critical("ccattest: this client leaves the federation: %s: %s", site, detail)
        self._note("shutdown", site, detail)
        self.engine.shutdown()
