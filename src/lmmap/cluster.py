"""SLURM checks of the SLURM profile (profiles/slurm) and of `lmmap cluster-check`.

- status_command: how the executor polls job states, decided once (sacct needs slurmdbd; squeue needs
  the cluster to keep finished jobs long enough), never left to a guess that can hang.
- misfits: the planned jobs that no node of their partition can ever run (pre-flight, before sbatch).
- Watchdog: while a run goes on, stops it when a job is pending for a reason waiting cannot resolve, or
  when Snakemake waits for jobs that SLURM has finished and the status command cannot see.

Parsing and deciding are pure functions of the commands' text output, so tests feed canned output;
only `slurm()` runs commands. Standard library only: the profile imports this module.
"""

from __future__ import annotations

import getpass
import re
import subprocess
from dataclasses import dataclass, field

# The executor polls at most every 180 s (it backs off by 10 s per poll that finds nothing new).
MAX_POLL_SECONDS = 180
# Pending reasons that no amount of waiting resolves: the request exceeds what the partition, the
# account or the QOS allows a single job (SLURM's job_reason strings).
HOPELESS = re.compile(
    r"^(PartitionConfig|PartitionNodeLimit|PartitionTimeLimit|BadConstraints|InvalidAccount"
    r"|InvalidQOS|(Assoc|QOS)Max\w*PerJob\w*|QOSMin\w+)$"
)
# Reasons that resolve only if something changes: hopeless when the partition has no usable node
# (ReqNodeNotAvail, PartitionDown, ...) or when none of the user's jobs runs (max-jobs limits).
NODES_GONE = re.compile(r"^(ReqNodeNotAvail.*|PartitionDown|PartitionInactive|NodeDown)$")
JOBS_LIMIT = re.compile(r"^(Assoc|QOS)MaxJobs\w*$")
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT"}


class ClusterError(RuntimeError):
    """The cluster cannot run this workflow as configured: the message is one line saying why and what to set."""


def slurm(*args: str, timeout: int = 30) -> subprocess.CompletedProcess | None:
    """Run a SLURM client command; None when it is not installed or does not answer in time."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None


# --- the status command -------------------------------------------------------------------------


def parse_min_job_age(config_text: str) -> int | None:
    """MinJobAge in seconds from `scontrol show config` ("MinJobAge = 300 sec")."""
    match = re.search(r"^MinJobAge\s*=\s*(\d+)", config_text, re.MULTILINE)
    return int(match.group(1)) if match else None


def choose_status_command(
    accounting: bool | None, min_job_age: int | None, init_seconds: int = 40
) -> tuple[str, str | None]:
    """(command, warning) for the executor, from whether `sacct` works (None: not installed) and the
    cluster's MinJobAge. Raises ClusterError when neither command can follow the jobs.

    squeue sees a finished job for MinJobAge seconds only; the executor polls at most every 180 s,
    and itself switches back to sacct (wherever the binary exists) if MinJobAge < 3 x its first interval."""
    if accounting:
        return "sacct", None
    if min_job_age is None:
        if accounting is None:  # no SLURM client here at all (e.g. a dry run on a laptop): nothing to poll
            return "", None
        raise ClusterError(
            "sacct fails (no slurmdbd) and `scontrol show config` does not tell MinJobAge: "
            "set LMMAP_SLURM_STATUS_COMMAND=squeue if finished jobs stay in squeue for minutes"
        )
    if min_job_age < 3 * init_seconds and accounting is False:
        raise ClusterError(
            f"sacct fails (no slurmdbd) and MinJobAge={min_job_age}s is below 3 x "
            f"slurm-init-seconds-before-status-checks ({init_seconds}s), so the executor would "
            f"poll with sacct and never see its jobs: set slurm-init-seconds-before-status-checks "
            f"to at most {min_job_age // 3} in the profile, or ask for MinJobAge >= 300"
        )
    warning = None
    if min_job_age < MAX_POLL_SECONDS + init_seconds:
        warning = (
            f"MinJobAge={min_job_age}s: squeue forgets a finished job before the executor's next poll "
            f"may come (up to {MAX_POLL_SECONDS}s); lower seconds-between-status-checks or ask for "
            f"MinJobAge >= {MAX_POLL_SECONDS + init_seconds}"
        )
    return "squeue", warning


def accounting_works() -> bool | None:
    """Whether `sacct` answers (slurmdbd runs); None when sacct is not installed."""
    result = slurm("sacct", "-n", "-X", "-S", "now", "-o", "JobID", timeout=20)
    if result is None:
        return None
    return result.returncode == 0


def status_command(setting: str = "", init_seconds: int = 40, warn=print) -> str:
    """The status command to give the executor: the site's setting when made, else decided here."""
    if setting:
        if setting not in ("sacct", "squeue"):
            raise ClusterError(f"LMMAP_SLURM_STATUS_COMMAND must be 'sacct', 'squeue' or empty, not '{setting}'")
        return setting
    accounting = accounting_works()
    config = slurm("scontrol", "show", "config") if accounting is False else None
    age = parse_min_job_age(config.stdout) if config is not None and config.returncode == 0 else None
    command, warning = choose_status_command(accounting, age, init_seconds)
    if warning:
        warn(f"lmmap: warning: {warning}")
    return command


# --- partitions and node sizes ------------------------------------------------------------------


def parse_records(text: str) -> list[dict[str, str]]:
    """`scontrol show partition|node -o`: one record per line of Key=Value fields."""
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in text.splitlines() if "=" in line]


def gres_gpus(gres: str) -> int:
    """GPUs in a GRES string: "gpu:2", "gpu:a100:4(S:0-1),shard:8" -> 2, 4."""
    total = 0
    for entry in re.sub(r"\([^)]*\)", "", gres or "").split(","):
        parts = entry.split(":")
        if parts[0] == "gpu" and len(parts) > 1 and parts[-1].isdigit():
            total += int(parts[-1])
        elif parts[0] == "gpu":
            total += 1
    return total


def parse_minutes(limit: str) -> int | None:
    """A SLURM time limit ("1-12:00:00", "04:00:00", "30", "UNLIMITED") in minutes; None: no limit."""
    if not limit or limit.upper() in ("UNLIMITED", "INFINITE", "NONE"):
        return None
    days, _, clock = limit.rpartition("-")
    fields = [int(f) for f in clock.split(":")]
    hours, minutes, seconds = ([0] * (3 - len(fields)) + fields) if len(fields) > 1 else (0, fields[0], 0)
    return (int(days or 0) * 24 + hours) * 60 + minutes + (1 if seconds else 0)


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    mem_mb: int
    gpus: int
    usable: bool  # not down, drained or failing

    def describe(self) -> str:
        return f"{self.cpus} CPUs, {self.mem_mb} MB, {self.gpus} GPUs"


@dataclass
class Partition:
    name: str
    up: bool
    default: bool
    max_minutes: int | None
    max_cpus: int | None  # MaxCPUsPerNode
    max_mem_mb: int | None  # MaxMemPerNode
    nodes: list[Node] = field(default_factory=list)

    def describe(self) -> str:
        biggest = max(self.nodes, key=lambda n: (n.cpus, n.mem_mb, n.gpus), default=None)
        limit = "no time limit" if self.max_minutes is None else f"time limit {self.max_minutes} min"
        sizes = f"largest node {biggest.describe()}" if biggest else "no nodes"
        return f"partition {self.name}: {'up' if self.up else 'DOWN'}, {len(self.nodes)} node(s), {sizes}, {limit}"


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def parse_partitions(partition_text: str, node_text: str) -> dict[str, Partition]:
    """Partitions with their nodes, from `scontrol show partition -o` and `scontrol show node -o`."""
    partitions = {}
    for rec in parse_records(partition_text):
        if "PartitionName" in rec:
            partitions[rec["PartitionName"]] = Partition(
                name=rec["PartitionName"],
                up=rec.get("State", "UP") == "UP",
                default=rec.get("Default") == "YES",
                max_minutes=parse_minutes(rec.get("MaxTime", "")),
                max_cpus=_number(rec.get("MaxCPUsPerNode")),
                max_mem_mb=_number(rec.get("MaxMemPerNode")),
            )
    for rec in parse_records(node_text):
        if "NodeName" not in rec:
            continue
        state = rec.get("State", "")
        node = Node(
            rec["NodeName"],
            int(rec.get("CPUTot", 0)),
            int(rec.get("RealMemory", 0)),
            gres_gpus(rec.get("Gres", "")),
            usable=not re.search(r"DOWN|DRAIN|FAIL|NOT_RESPONDING", state),
        )
        for name in filter(None, rec.get("Partitions", "").split(",")):
            if name in partitions:
                partitions[name].nodes.append(node)
    return partitions


def read_partitions() -> dict[str, Partition]:
    """The cluster's partitions as the controller reports them."""
    results = [slurm("scontrol", "show", kind, "-o") for kind in ("partition", "node")]
    for result in results:
        if result is None or result.returncode != 0:
            why = "not installed" if result is None else result.stderr.strip()
            raise ClusterError(f"cannot read the SLURM partitions (scontrol: {why})")
    return parse_partitions(results[0].stdout, results[1].stdout)


# --- requests of planned jobs -------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What one sbatch call will ask for (as snakemake-executor-plugin-slurm translates resources)."""

    job: str  # "rule plot_maps" or "group analysis (compute_coordinates, plot_maps)"
    model: str | None
    partition: str | None  # None: the cluster's default partition
    cpus: int
    mem_mb: int
    gpus: int
    minutes: int | None

    def describe(self) -> str:
        time = f", {self.minutes} min" if self.minutes else ""
        return f"{self.cpus} CPUs, {self.mem_mb} MB, {self.gpus} GPUs{time}"


def request(job: str, model: str | None, resources: dict, threads: int) -> Request:
    """The sbatch request of a job from its Snakemake resources: --cpus-per-task (cpus_per_task or
    threads), --mem (mem_mb, or mem_mb_per_cpu per CPU), --gpus (gpu) or --gres=gpu:N, -t (runtime), -p."""

    def number(name: str) -> int:  # 0 when unset or not known yet (Snakemake's "<TBD>")
        value = resources.get(name)
        return int(value) if isinstance(value, (int, float)) else 0

    cpus = number("cpus_per_task") or int(threads or 1)
    mem_mb = number("mem_mb") or number("mem_mb_per_cpu") * cpus
    gpus = number("gpu") or gres_gpus(str(resources.get("gres") or ""))
    return Request(job, model, resources.get("slurm_partition") or None, cpus, mem_mb, gpus, number("runtime") or None)


def misfit(req: Request, partitions: dict[str, Partition]) -> str | None:
    """Why no node of the job's partition can ever run it (one line), or None when one can."""
    who = req.job + (f" (model {req.model})" if req.model else "")
    name = req.partition or next((p.name for p in partitions.values() if p.default), None)
    part = partitions.get(name) if name else None
    if part is None:
        where = f"partition '{name}' does not exist" if name else "the cluster has no default partition"
        return f"{who} asks for {req.describe()}: {where} (partitions: {', '.join(sorted(partitions))})"
    asks = f"{who} asks for {req.describe()} on partition {part.name}"
    if not part.up:
        return f"{asks}: the partition is DOWN"
    if part.max_minutes is not None and req.minutes and req.minutes > part.max_minutes:
        return f"{asks}: its time limit is {part.max_minutes} min"
    if part.max_cpus is not None and req.cpus > part.max_cpus:
        return f"{asks}: it allows {part.max_cpus} CPUs per node"
    if part.max_mem_mb is not None and req.mem_mb > part.max_mem_mb:
        return f"{asks}: it allows {part.max_mem_mb} MB per node"
    usable = [n for n in part.nodes if n.usable]
    if any(n.cpus >= req.cpus and n.mem_mb >= req.mem_mb and n.gpus >= req.gpus for n in usable):
        return None
    if not usable:
        return f"{asks}: none of its {len(part.nodes)} node(s) is usable (down or drained)"
    biggest = max(usable, key=lambda n: (n.cpus >= req.cpus) + (n.mem_mb >= req.mem_mb) + (n.gpus >= req.gpus))
    return f"{asks}: its largest node has {biggest.describe()}"


def misfits(requests: list[Request], partitions: dict[str, Partition]) -> list[str]:
    return [line for line in (misfit(r, partitions) for r in requests) if line]


# --- while running ------------------------------------------------------------------------------


def parse_queue(text: str) -> dict[str, tuple[str, str, str]]:
    """`squeue -o %i|%T|%r|%P`: SLURM job id -> (state, reason, partition)."""
    queue = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            queue[parts[0]] = (parts[1], parts[2], parts[3])
    return queue


def read_queue() -> dict[str, tuple[str, str, str]] | None:
    """The user's jobs, finished ones included while the controller keeps them; None if squeue fails."""
    result = slurm("squeue", "-h", "--states=all", "-u", getpass.getuser(), "-o", "%i|%T|%r|%P")
    return parse_queue(result.stdout) if result is not None and result.returncode == 0 else None


def hopeless(reason: str, partition: Partition | None, user_jobs_running: bool) -> bool:
    """Whether a job pending for `reason` can never start by waiting."""
    if HOPELESS.match(reason):
        return True
    if NODES_GONE.match(reason):
        return partition is not None and (not partition.up or not any(n.usable for n in partition.nodes))
    return bool(JOBS_LIMIT.match(reason)) and not user_jobs_running


@dataclass
class Watchdog:
    """Decides, from one look at the queue after another, when a run can no longer progress.

    `observe` gets the SLURM jobs Snakemake waits for ({id: description}) and the queue; it returns
    the one-line reason to stop the run, or None."""

    status_command: str
    stall_seconds: float
    partitions: dict[str, Partition] = field(default_factory=dict)
    _seen: dict = field(default_factory=dict)  # job id -> last state
    _hopeless: dict = field(default_factory=dict)  # job id -> reason, seen once already
    _last_change: float | None = None

    def observe(self, now: float, awaited: dict[str, str], queue: dict[str, tuple[str, str, str]]) -> str | None:
        states = {jobid: queue.get(jobid, ("GONE", "", ""))[0] for jobid in awaited}
        if states != self._seen:
            self._seen, self._last_change = states, now
        running = any(state == "RUNNING" for state, _, _ in queue.values())
        for jobid, (state, reason, partition) in queue.items():
            if (
                jobid not in awaited
                or state != "PENDING"
                or not hopeless(reason, self.partitions.get(partition), running)
            ):
                self._hopeless.pop(jobid, None)
                continue
            if self._hopeless.get(jobid) == reason:  # seen twice in a row: not a passing state
                return (
                    f"SLURM job {jobid} ({awaited[jobid]}) is pending with reason {reason}, which waiting "
                    f"cannot resolve (its request exceeds what partition {partition} or the account allows): "
                    f"run `python -m lmmap cluster-check` and fix the resources or the site variables"
                )
            self._hopeless[jobid] = reason
        if not awaited or any(state in ACTIVE for state in states.values()):
            return None
        if now - self._last_change >= self.stall_seconds:
            jobs = ", ".join(f"{jobid} ({awaited[jobid]}: {states[jobid]})" for jobid in sorted(awaited))
            return (
                f"no job of this run has changed state for {now - self._last_change:.0f} s and the queue "
                f"holds none of them: SLURM jobs {jobs}; the executor polls with "
                f"'{self.status_command or 'its default'}', which does not see them finish ({self._hint()})"
            )
        return None

    def _hint(self) -> str:
        if self.status_command == "squeue":
            return "squeue forgets finished jobs after MinJobAge: set LMMAP_SLURM_STATUS_COMMAND=sacct if slurmdbd runs"
        return "sacct needs slurmdbd: leave LMMAP_SLURM_STATUS_COMMAND empty, or set it to squeue"
