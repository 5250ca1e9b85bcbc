"""The workflow's `onstart` on a SLURM run (rules/cluster.smk): the glue between Snakemake's objects
and the checks of lmmap.cluster.

Site variables (profiles/slurm/site.env):
  LMMAP_SLURM_PREFLIGHT=1        check every planned job against its partition before anything is
                                 submitted (0: skip; "only": check, then stop: `lmmap cluster-check`)
  LMMAP_SLURM_STALL_SECONDS=600  stop a run that waits that long for jobs SLURM has finished
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

from lmmap.cluster import ClusterError, Request, Watchdog, misfits, read_partitions, read_queue, request, status_command

WATCH_SECONDS = 10  # between two looks at the queue
GRACE_SECONDS = 30  # for Snakemake to cancel its jobs and exit after the watchdog interrupts it
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+)")
PREFLIGHT_OK = "lmmap pre-flight: ok"


def on_slurm(workflow) -> bool:
    plugin = getattr(workflow, "executor_plugin", None)
    return getattr(plugin, "name", "") == "slurm"


def _describe(job) -> tuple[str, str | None]:
    """("rule x" or "group g (rules)", the model(s)) of a job or group job."""
    members = list(job.jobs) if job.is_group() else [job]
    models = sorted({m.wildcards_dict["model"] for m in members if "model" in m.wildcards_dict})
    model = ", ".join(models[:3]) + (f" and {len(models) - 3} more" if len(models) > 3 else "") if models else None
    if job.is_group():
        rules = sorted({m.rule.name for m in members})
        return f"group {job.groupid} ({', '.join(rules)}; {len(members)} jobs)", model
    return f"rule {job.rule.name}", model


def planned_requests(dag) -> list[Request]:
    """The sbatch request of every job (or group job) the run will submit, at its first attempt."""
    requests = []
    for job in dag.get_jobs_or_groups():
        if job.is_local or (not job.is_group() and not dag.needrun(job)):
            continue
        resources = {name: value for name, value in job.resources.items() if isinstance(value, (int, float, str))}
        requests.append(request(*_describe(job), resources, job.threads))
    return requests


def preflight(workflow, log=print, warn=print) -> None:
    """Fail the run before anything is submitted if a planned job cannot fit its partition, or if
    no status command can follow the jobs; decide the status command where the site left it empty
    (the executor reads its setting at every poll)."""
    settings = workflow.executor_settings
    init = getattr(settings, "init_seconds_before_status_checks", 40) or 40
    # the site variable, not the executor's setting: that is the plugin's own default when the site left it empty
    chosen = status_command(os.environ.get("LMMAP_SLURM_STATUS_COMMAND", "").strip(), init, warn)
    settings.status_command = chosen or settings.status_command
    log(f"lmmap pre-flight: the executor polls job states with {settings.status_command or 'its default'}")
    mode = os.environ.get("LMMAP_SLURM_PREFLIGHT", "1").strip()
    if mode == "0":
        return
    partitions = read_partitions()
    requests = planned_requests(workflow.dag)
    problems = misfits(requests, partitions)
    if problems:
        raise ClusterError("\n".join(f"lmmap pre-flight: cannot run: {line}" for line in problems))
    log(
        f"{PREFLIGHT_OK}: {len(requests)} job(s) fit their partitions "
        f"({'; '.join(p.describe() for p in partitions.values())})"
    )
    if mode == "only":
        sys.exit(0)


class _Submissions(logging.Handler):
    """Collects Snakemake job id -> SLURM job id from the executor's "has been submitted" messages."""

    def __init__(self):
        super().__init__()
        self.slurm_ids: dict[str, str] = {}

    def emit(self, record):
        match = SUBMITTED.search(str(record.msg))
        if match:
            self.slurm_ids[match.group(1)] = match.group(2)


def _awaited(workflow, submissions: _Submissions) -> dict[str, str]:
    """SLURM id -> job description of the remote jobs Snakemake waits for."""
    for _ in range(3):  # the scheduler thread may change the set while we copy it
        try:
            running = list(workflow.scheduler.running)
            break
        except RuntimeError:
            time.sleep(0.1)
    else:
        return {}
    return {
        submissions.slurm_ids[str(job.jobid)]: _describe(job)[0]
        for job in running
        if not job.is_local and str(job.jobid) in submissions.slurm_ids
    }


def _watch(workflow, watchdog: Watchdog, submissions: _Submissions, logger) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        queue = read_queue()
        if queue is None:
            continue
        watchdog.status_command = workflow.executor_settings.status_command
        reason = watchdog.observe(time.time(), _awaited(workflow, submissions), queue)
        if reason:
            logger.error(f"lmmap watchdog: stopping the run: {reason}")
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: Snakemake cancels its jobs and fails
            time.sleep(GRACE_SECONDS)
            # Still running: the executor did not act on the interrupt (seen while it polls with sacct).
            # Cancel this run's jobs and end the process: a stalled run must never hang.
            _cancel(list(submissions.slurm_ids.values()))
            logger.error("lmmap watchdog: the run did not stop on the interrupt: ending it")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)


def _cancel(slurm_ids: list[str]) -> None:
    if slurm_ids:
        subprocess.run(["scancel", *slurm_ids], capture_output=True, timeout=60, check=False)


def start_watchdog(workflow) -> None:
    from snakemake.logging import logger

    submissions = _Submissions()
    logger.addHandler(submissions)
    try:
        partitions = read_partitions()
    except ClusterError:
        partitions = {}
    stall = float(os.environ.get("LMMAP_SLURM_STALL_SECONDS") or 600)
    watchdog = Watchdog(workflow.executor_settings.status_command, stall, partitions)
    threading.Thread(
        target=_watch, args=(workflow, watchdog, submissions, logger), daemon=True, name="lmmap-watchdog"
    ).start()


def onstart(workflow) -> None:
    from snakemake.exceptions import WorkflowError
    from snakemake.logging import logger

    try:
        preflight(workflow, log=logger.info, warn=logger.warning)
    except ClusterError as exc:
        raise WorkflowError(str(exc)) from None
    start_watchdog(workflow)
