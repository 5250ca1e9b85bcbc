"""The SLURM checks of lmmap.cluster on canned `scontrol`/`squeue` output (no cluster needed): partition
limits, job requests against them, the choice of status command, and the watchdog's decisions."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lmmap.cluster import (
    ClusterError,
    Request,
    Watchdog,
    choose_status_command,
    gres_gpus,
    misfits,
    parse_min_job_age,
    parse_minutes,
    parse_partitions,
    parse_queue,
    request,
)

# `scontrol show partition -o` / `scontrol show node -o` of a cluster with a CPU and a GPU partition
# (shortened; the test cluster of tests/slurm prints the same fields)
PARTITIONS = """\
PartitionName=cpu AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=1-00:00:00 MaxCPUsPerNode=UNLIMITED Nodes=c[1-2] State=UP TotalCPUs=4 MaxMemPerNode=UNLIMITED
PartitionName=gpu AllowGroups=ALL Default=NO MaxTime=04:00:00 MaxCPUsPerNode=16 Nodes=g1 State=UP MaxMemPerNode=100000
PartitionName=old Default=NO MaxTime=UNLIMITED Nodes=o1 State=DOWN
"""
NODES = """\
NodeName=c1 Arch=x86_64 CPUAlloc=0 CPUTot=2 Gres=(null) OS=Linux 6.1.0 #1 SMP RealMemory=22899 State=IDLE Partitions=cpu
NodeName=c2 Arch=x86_64 CPUAlloc=0 CPUTot=2 Gres=(null) RealMemory=8000 State=DOWN+DRAIN Partitions=cpu
NodeName=g1 CPUTot=32 Gres=gpu:a100:4(S:0-1),shard:8 RealMemory=256000 State=MIXED Partitions=gpu
NodeName=o1 CPUTot=8 Gres=gpu:2 RealMemory=64000 State=IDLE Partitions=old
"""


@pytest.fixture
def partitions():
    return parse_partitions(PARTITIONS, NODES)


ROOT = Path(__file__).resolve().parents[1]


def test_partition_limits_are_read(partitions):
    cpu, gpu, old = partitions["cpu"], partitions["gpu"], partitions["old"]
    assert cpu.default and cpu.up and cpu.max_minutes == 24 * 60 and cpu.max_cpus is None
    assert [(n.cpus, n.mem_mb, n.gpus, n.usable) for n in cpu.nodes] == [(2, 22899, 0, True), (2, 8000, 0, False)]
    assert gpu.max_minutes == 240 and gpu.max_cpus == 16 and gpu.max_mem_mb == 100000 and gpu.nodes[0].gpus == 4
    assert not old.up
    assert "largest node 2 CPUs, 22899 MB, 0 GPUs, time limit 1440 min" in cpu.describe()


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("1-00:00:00", 1440), ("04:00:00", 240), ("30", 30), ("10:30", 11), ("UNLIMITED", None), ("INFINITE", None)],
)
def test_time_limits(text, minutes):
    assert parse_minutes(text) == minutes


def test_gpus_in_gres():
    assert [gres_gpus(g) for g in ("gpu:2", "gpu:a100:4(S:0-1),shard:8", "(null)", "", "gpu")] == [2, 4, 0, 0, 1]


def test_requests_follow_the_executor_plugins_translation():
    assert request("rule r", None, {"mem_mb": 4000, "runtime": 60, "gres": "gpu:2"}, 1) == Request(
        "rule r", None, None, 1, 4000, 2, 60
    )
    assert request(
        "rule r", "m", {"cpus_per_task": 4, "mem_mb_per_cpu": 1000, "gpu": 1, "slurm_partition": "gpu"}, 1
    ) == Request("rule r", "m", "gpu", 4, 4000, 1, None)
    assert request("rule r", None, {"mem_mb": "<TBD>", "runtime": "<TBD>"}, 2) == Request(
        "rule r", None, None, 2, 0, 0, None
    )


def test_jobs_that_fit_pass(partitions):
    assert (
        misfits(
            [
                request("rule a", None, {"mem_mb": 20000, "runtime": 60}, 2),
                request("rule s", "m", {"mem_mb": 90000, "runtime": 200, "gpu": 4, "slurm_partition": "gpu"}, 8),
            ],
            partitions,
        )
        == []
    )


def test_a_group_asking_more_cpus_than_a_node_has_fails_in_one_line(partitions):
    """The case of the analysis group: three CPUs on a partition of 2-CPU nodes."""
    group = request("group analysis (plot_map, plot_pca)", None, {"mem_mb": 12000, "runtime": 300}, 3)
    [line] = misfits([group], partitions)
    assert line == (
        "group analysis (plot_map, plot_pca) asks for 3 CPUs, 12000 MB, 0 GPUs, 300 min on partition "
        "cpu: its largest node has 2 CPUs, 22899 MB, 0 GPUs"
    )


@pytest.mark.parametrize(
    ("resources", "why"),
    [
        ({"mem_mb": 4000, "runtime": 300, "gpu": 1, "slurm_partition": "gpu"}, "its time limit is 240 min"),
        ({"mem_mb": 120000, "runtime": 60, "gpu": 1, "slurm_partition": "gpu"}, "it allows 100000 MB per node"),
        (
            {"mem_mb": 4000, "runtime": 60, "gpu": 8, "slurm_partition": "gpu"},
            "its largest node has 32 CPUs, 256000 MB, 4 GPUs",
        ),
        ({"mem_mb": 4000, "gpu": 1}, "its largest node has 2 CPUs, 22899 MB, 0 GPUs"),  # GPUs on the CPU partition
        ({"mem_mb": 4000, "slurm_partition": "old"}, "the partition is DOWN"),
        ({"mem_mb": 4000, "slurm_partition": "gpuq"}, "partition 'gpuq' does not exist (partitions: cpu, gpu, old)"),
    ],
)
def test_each_limit_is_named(partitions, resources, why):
    [line] = misfits([request("rule score_model", "org/big", resources, 1)], partitions)
    assert line.startswith("rule score_model (model org/big) asks for ") and line.endswith(why)


def test_memory_only_a_down_node_has_does_not_fit(partitions):
    partitions["cpu"].nodes[1] = partitions["cpu"].nodes[1].__class__("c2", 64, 500000, 0, usable=False)
    [line] = misfits([request("rule a", None, {"mem_mb": 30000}, 1)], partitions)
    assert line.endswith("its largest node has 2 CPUs, 22899 MB, 0 GPUs")


def test_status_command_is_decided():
    config = "Configuration data as of 2026-12-01T14:13:23\nMinJobAge               = 600 sec\nOverTimeLimit = 0\n"
    assert parse_min_job_age(config) == 600
    assert choose_status_command(True, None) == ("sacct", None)  # slurmdbd answers
    assert choose_status_command(False, 600) == ("squeue", None)  # the test cluster: no slurmdbd
    command, warning = choose_status_command(False, 150)
    assert command == "squeue" and "MinJobAge=150s" in warning
    assert choose_status_command(None, None) == ("", None)  # no SLURM client: nothing to decide


@pytest.mark.parametrize(
    ("accounting", "age", "hint"),
    [(False, 60, "slurm-init-seconds-before-status-checks"), (False, None, "LMMAP_SLURM_STATUS_COMMAND=squeue")],
)
def test_no_way_to_follow_jobs_stops_with_what_to_set(accounting, age, hint):
    with pytest.raises(ClusterError, match=hint) as err:
        choose_status_command(accounting, age)
    assert "\n" not in str(err.value)


def queue(*rows):
    return parse_queue("\n".join(rows))


def test_watchdog_stops_a_run_waiting_for_jobs_slurm_has_finished():
    dog = Watchdog("sacct", stall_seconds=30)
    awaited = {"23": "group texts (prepare_texts; 1 jobs)"}
    assert dog.observe(0, awaited, queue("23|RUNNING|None|debug")) is None
    assert dog.observe(10, awaited, queue("23|COMPLETED|None|debug")) is None  # a change: the clock restarts
    assert dog.observe(35, awaited, queue("23|COMPLETED|None|debug")) is None
    stop = dog.observe(41, awaited, queue("23|COMPLETED|None|debug"))
    assert "SLURM jobs 23 (group texts (prepare_texts; 1 jobs): COMPLETED)" in stop and "'sacct'" in stop


def test_watchdog_leaves_running_and_local_work_alone():
    dog = Watchdog("squeue", stall_seconds=30)
    assert dog.observe(0, {"5": "rule a"}, queue("5|RUNNING|None|debug")) is None
    assert dog.observe(100, {"5": "rule a"}, queue("5|RUNNING|None|debug")) is None  # a long job
    assert dog.observe(200, {}, queue("5|COMPLETED|None|debug")) is None  # Snakemake saw it; local jobs run


def test_watchdog_stops_a_job_pending_for_a_hopeless_reason(partitions):
    dog = Watchdog("squeue", stall_seconds=600, partitions=partitions)
    awaited = {"7": "group analysis", "8": "rule b"}
    pending = queue("7|PENDING|PartitionConfig|cpu", "8|PENDING|Resources|cpu")
    assert dog.observe(0, awaited, pending) is None  # seen once: it may pass
    stop = dog.observe(10, awaited, pending)
    assert stop.startswith("SLURM job 7 (group analysis) is pending with reason PartitionConfig")


@pytest.mark.parametrize(
    ("reason", "partition", "others", "hopeless"),
    [
        ("Resources", "cpu", "", False),
        ("Priority", "cpu", "", False),
        ("QOSMaxCpuPerJobLimit", "cpu", "", True),
        ("ReqNodeNotAvail, UnavailableNodes:o1", "cpu", "", False),  # the partition has a usable node
        ("PartitionDown", "old", "", True),
        ("AssocMaxJobsLimit", "cpu", "", True),  # nothing of the user's runs: no slot will free up
        ("AssocMaxJobsLimit", "cpu", "9|RUNNING|None|cpu", False),
    ],
)
def test_which_pending_reasons_are_hopeless(partitions, reason, partition, others, hopeless):
    dog = Watchdog("squeue", stall_seconds=600, partitions=partitions)
    rows = [f"7|PENDING|{reason}|{partition}"] + ([others] if others else [])
    results = [dog.observe(t, {"7": "rule a"}, queue(*rows)) for t in (0, 10)]
    assert (results[1] is not None) == hopeless


def test_cluster_check_builds_the_planned_run_on_the_slurm_executor():
    from lmmap.commands.cluster import PROFILE, snakemake_command

    cmd = snakemake_command(["--", "--configfile", "my.yaml"])
    assert cmd[-4:] == ["--configfile", "my.yaml", "--executor", "slurm"]
    assert cmd[cmd.index("--profile") + 1] == str(PROFILE) and (PROFILE / "config.yaml").is_file()
    assert snakemake_command(["--profile", "slurm"]).count("--profile") == 1  # the user's profile is kept
    with pytest.raises(ClusterError, match="leave out -n"):
        snakemake_command(["-n"])


def test_a_run_deaf_to_the_watchdogs_interrupt_is_ended_anyway(tmp_path):
    """Snakemake does not always act on SIGINT while its executor waits for job states: after a grace
    period the watchdog cancels the run's jobs itself and ends the process with status 1."""
    script = tmp_path / "deaf.py"
    script.write_text(
        textwrap.dedent(f"""
        import logging, signal, sys, time, types
        sys.path.insert(0, {str(ROOT / "src")!r})
        from lmmap import slurm_run
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # deaf, as a stuck executor is
        slurm_run.GRACE_SECONDS, slurm_run.WATCH_SECONDS = 0.2, 0.05
        slurm_run.read_queue = lambda: {{}}
        slurm_run._cancel = lambda ids: print("cancelled", ids, flush=True)
        watchdog = types.SimpleNamespace(status_command=None, observe=lambda *args: "stalled")
        submissions = types.SimpleNamespace(slurm_ids={{"a": "81"}})
        workflow = types.SimpleNamespace(executor_settings=types.SimpleNamespace(status_command="sacct"),
                                         scheduler=types.SimpleNamespace(running=[]))
        logging.basicConfig(stream=sys.stdout)
        slurm_run._watch(workflow, watchdog, submissions, logging.getLogger("test"))
        time.sleep(5)
        print("still running")
        """)
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cancelled ['81']" in done.stdout and "still running" not in done.stdout
    assert "did not stop on the interrupt" in done.stdout + done.stderr
