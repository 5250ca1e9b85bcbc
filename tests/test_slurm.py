"""The workflow on a live SLURM scheduler: the single-node test cluster of tests/slurm/ (CI starts
it with tests/slurm/ci-setup.sh; as root this module starts it itself when the packages are there).

The run uses the user's profile, profiles/slurm, configured only through the site variables of
profiles/slurm/site.env at their documented defaults but for the partition and `--gres` GPU requests
(profiles/test-slurm adds nothing but faster polling): every job goes through sbatch, job groups fit
the 2-CPU node, the scoring jobs ask for and receive a (fake) GPU, the status command is decided
without slurmdbd, and the matrix equals that of a local run. Runs that cannot progress (polling with
sacct without slurmdbd, a job that can never start) stop within a minute, saying why.
Skipped, saying why, where the SLURM daemons cannot run.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SLURM_DIR = ROOT / "tests" / "slurm"
PROFILES = ("--profile", str(ROOT / "profiles" / "slurm"), "--profile", str(ROOT / "profiles" / "test-slurm"))
pytestmark = pytest.mark.slurm

SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
# texts -> scores -> matrix -> the analysis group (coordinates, t-SNE, figures): four rounds of sbatch
TARGETS = ("results/matrix/loglik.npz", "results/coords/coordinates.npz")
FIGURES = ("results/figures/map_type.png", "results/figures/pca_variance.png", "results/figures/kl_heatmap.png")
# a job of its own, or a group job (small models may be packed: group score_small)
EXECUTED = re.compile(r"^(localrule|rule|\[.*\] Group job) (\w+)", re.MULTILINE)


def _run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kwargs)


def _cluster_problem() -> str | None:
    """Why the test cluster is unusable, or None when it runs with fake GPUs."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed"
    if shutil.which("sinfo") is None:
        return "SLURM is not installed (as root: tests/slurm/install.sh)"
    if _run(["sinfo", "-h", "-o", "%T"]).returncode != 0:
        if os.geteuid() != 0:
            return "no SLURM controller answers, and starting one needs root (tests/slurm/start-cluster.sh)"
        start = _run(["bash", str(SLURM_DIR / "start-cluster.sh")])
        if start.returncode != 0:
            return f"the test cluster did not start: {start.stderr.strip()[-500:]}"
    node = _run(["scontrol", "show", "node"]).stdout
    if "Gres=gpu:" not in node:
        return "the SLURM cluster has no gpu GRES (start it with tests/slurm/start-cluster.sh)"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    problem = _cluster_problem()
    if problem:
        pytest.skip(f"no SLURM test cluster: {problem}")


def _job_fields(jobid: str) -> dict:
    """`scontrol show job -d` as a dict (finished jobs stay visible for MinJobAge = 600 s)."""
    out = _run(["scontrol", "show", "job", "-d", jobid]).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


@pytest.mark.parametrize("gpu_request", ["--gres=gpu:1", "--gpus=1"])  # LMMAP_SLURM_GPU_REQUEST gres, gpus
def test_a_batch_job_receives_a_fake_gpu(slurm_cluster, tmp_path, gpu_request):
    out = tmp_path / "job.out"
    submit = _run(
        ["sbatch", "--parsable", gpu_request, "-o", str(out), "--wrap", "echo gpu=${CUDA_VISIBLE_DEVICES:-none}"],
        cwd=tmp_path,
    )
    assert submit.returncode == 0, submit.stderr
    jobid = submit.stdout.strip().split(";")[0]
    for _ in range(120):
        if _job_fields(jobid).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.5)
    fields = _job_fields(jobid)
    assert fields["JobState"] == "COMPLETED", fields
    assert fields["JOB_GRES"] == "gpu:1"
    assert re.fullmatch(r"gpu=\d+\n", out.read_text())


def site_variables(**overrides: str) -> dict[str, str]:
    """The environment of a user who set up profiles/slurm/site.env for the test cluster: the documented
    defaults (no LMMAP_ variable of the caller's), the partition and --gres GPU requests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMMAP_")}
    partition = _run(["sinfo", "-h", "-o", "%P"]).stdout.split()[0].rstrip("*")
    return env | {"LMMAP_SLURM_PARTITION": partition, "LMMAP_SLURM_GPU_REQUEST": "gres", **overrides}


def _snakemake(workdir: Path, *args: str, timeout: int, env: dict | None = None, ok: bool = True) -> str:
    """Run the workflow in `workdir`; on timeout stop it with SIGINT, so it cancels its SLURM jobs.
    `ok`: whether it must succeed (else it must fail)."""
    env = dict(
        env or os.environ, OMP_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(ROOT / "config/test/config.yaml"),
        str(workdir / "config.yaml"),
        *args,
    ]
    with subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            log, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                log, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:  # deaf to the interrupt: a test must never hang
                proc.kill()
                log, _ = proc.communicate()
            pytest.fail(f"snakemake ran over {timeout} s:\n{log[-5000:]}")
    assert (proc.returncode == 0) == ok, f"{' '.join(cmd)}\nexit status {proc.returncode}\n{log[-8000:]}"
    return log


def _workdir(base: Path) -> Path:
    """A working directory mapping three tiny saved models from a sheet (no downloads)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import save_tiny_model

    rows = ["model_id\tsource\tfamily\ttype\tsize\tcreated"]
    for i, style in enumerate(["gpt2", "llama", "gpt2"]):
        save_tiny_model(base / "models" / f"m{i}", style=style, seed=i)
        # declared 1B: resources as for a real small model (one GPU, group score_small); scored on the CPU
        rows.append(f"org/tiny-{i}\tmodels/m{i}\tfam{i % 2}\t{style}\t1B\t2024-0{i + 1}-01")
    (base / "models.tsv").write_text("\n".join(rows) + "\n")
    (base / "config.yaml").write_text(  # on top of config/test/config.yaml: a sheet instead of the zoo
        "models: models.tsv\nzoo: {enabled: false}\nscoring: {device: auto}\ntexts: {source: demo, n: 12, seed: 1, max_bytes: 1024,"
        " min_bytes: 256}\nmap: {perplexity: 30, max_iter: 250, seed: 42, hues: [type], annotate: false}\n"
    )
    return base


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The same workflow run locally and through SLURM; returns their directories and the SLURM log."""
    local = _workdir(tmp_path_factory.mktemp("local"))
    cluster = tmp_path_factory.mktemp("slurm")
    shutil.copytree(local, cluster, dirs_exist_ok=True)
    _snakemake(local, "--cores", "2", *TARGETS, timeout=600)
    started = time.time()
    # packs of two small models (LMMAP_SLURM_PACK): the three models make two scoring jobs
    log = _snakemake(cluster, *PROFILES, *TARGETS, *FIGURES, timeout=600, env=site_variables(LMMAP_SLURM_PACK="2"))
    print(f"workflow through SLURM: {time.time() - started:.0f} s")
    return local, cluster, log


@pytest.mark.slow
def test_every_job_goes_through_sbatch(runs):
    _, cluster, log = runs
    remote = [name for kind, name in EXECUTED.findall(log) if kind != "localrule"]
    submitted = SUBMITTED.findall(log)
    assert remote and len(submitted) == len(remote), log[-5000:]
    states = {jobid: _job_fields(jobid).get("JobState") for _, jobid, _ in submitted}
    assert set(states.values()) == {"COMPLETED"}, states
    for _, _, slurm_log in submitted:  # the profile keeps every job's SLURM log
        assert Path(slurm_log).is_file() and str(cluster) in slurm_log


@pytest.mark.slow
def test_scoring_jobs_request_and_receive_a_gpu(runs):
    _, _, log = runs
    score_jobs = [jobid for _, jobid, path in SUBMITTED.findall(log) if "score_model" in path]
    assert len(score_jobs) == 2  # a pack of two models, and one alone
    for jobid in score_jobs:
        fields = _job_fields(jobid)
        assert fields.get("TresPerNode") == "gres:gpu:1", fields  # asked for
        assert fields.get("JOB_GRES") == "gpu:1", fields  # and allocated


@pytest.mark.slow
def test_groups_ask_for_one_member_at_a_time(runs):
    """Members of a group job run one after the other: one member's CPUs and memory, the summed runtime
    (the analysis group once asked for 3 CPUs on this 2-CPU node and stayed pending for ever)."""
    _, _, log = runs
    jobs = [(Path(path).parent.name, _job_fields(jobid)) for _, jobid, path in SUBMITTED.findall(log)]
    [analysis] = [f for name, f in jobs if name.startswith("group_analysis")]
    assert (analysis["NumCPUs"], analysis["MinMemoryNode"], analysis["TimeLimit"]) == ("1", "4000M", "05:00:00")
    packs = sorted(
        (f["NumCPUs"], f["MinMemoryNode"], f["TimeLimit"]) for name, f in jobs if name.startswith("group_score_small")
    )
    one, two = packs  # the pack of two: one model's memory, twice its time
    assert one[:2] == two[:2] and 2 * _minutes(one[2]) == _minutes(two[2]), packs


def _minutes(limit: str) -> int:
    hours, minutes, _ = limit.split(":")
    return int(hours) * 60 + int(minutes)


@pytest.mark.slow
def test_outputs_equal_a_local_run(runs):
    local, cluster, _ = runs
    with np.load(local / "results/matrix/loglik.npz") as a, np.load(cluster / "results/matrix/loglik.npz") as b:
        assert a["L"].shape == (3, 12)
        for key in ("model_ids", "text_ids", "text_set_sha256"):
            np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a["L"], b["L"])
    with (
        np.load(local / "results/coords/coordinates.npz") as a,
        np.load(cluster / "results/coords/coordinates.npz") as b,
    ):
        np.testing.assert_allclose(a["Q"], b["Q"], rtol=0, atol=1e-12)


def _fresh_workdir(tmp_path: Path) -> Path:
    return _workdir(tmp_path / "work")


TEXTS = "results/texts/texts.jsonl"  # one job (group texts) on the cluster


def test_polling_with_sacct_without_slurmdbd_stops_within_a_minute(slurm_cluster, tmp_path):
    """The executor's default without slurmdbd: sacct sees no job, so the run would wait forever."""
    if shutil.which("sacct") is None:
        pytest.skip("no sacct client: the executor would poll with squeue anyway")
    env = site_variables(LMMAP_SLURM_STATUS_COMMAND="sacct", LMMAP_SLURM_STALL_SECONDS="20")
    started = time.time()
    log = _snakemake(_fresh_workdir(tmp_path), *PROFILES, TEXTS, timeout=240, env=env, ok=False)
    elapsed = time.time() - started
    print(f"forced sacct: stopped after {elapsed:.0f} s")
    assert re.search(
        r"lmmap watchdog: stopping the run: no job of this run has changed state for \d+ s and the "
        r"queue holds none of them: SLURM jobs \d+ \(group texts .*: COMPLETED\); the executor polls "
        r"with 'sacct'",
        log,
    ), log[-5000:]
    assert elapsed < 120


def test_a_job_that_cannot_fit_fails_before_submission(slurm_cluster, tmp_path):
    """A group asking for 3 CPUs on the 2-CPU node: the pre-flight check names it; nothing is submitted."""
    started = time.time()
    log = _snakemake(
        _fresh_workdir(tmp_path),
        *PROFILES,
        TEXTS,
        "--set-threads",
        "prepare_texts=3",
        timeout=120,
        env=site_variables(),
        ok=False,
    )
    assert re.search(
        r"lmmap pre-flight: cannot run: group texts \(build_demo_corpus, prepare_texts; 2 jobs\) asks "
        r"for 3 CPUs, 4000 MB, 0 GPUs, 120 min on partition \w+: its largest node has 2 CPUs",
        log,
    ), log[-5000:]
    assert "has been submitted" not in log
    assert time.time() - started < 60


def test_cluster_check_names_the_job_that_cannot_fit(slurm_cluster, tmp_path):
    workdir = _fresh_workdir(tmp_path)
    check = [
        sys.executable,
        "-m",
        "lmmap",
        "cluster-check",
        "--",
        "-s",
        str(ROOT / "Snakefile"),
        TEXTS,
        "--configfile",
        str(ROOT / "config/test/config.yaml"),
        str(workdir / "config.yaml"),
    ]
    env = site_variables(PYTHONPATH=str(ROOT / "src"))
    ok = subprocess.run(check, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "lmmap pre-flight: ok: 1 job(s) fit their partitions" in ok.stdout, ok
    assert "job states polled with: squeue" in ok.stdout  # no slurmdbd here
    bad = subprocess.run(
        [*check, "--set-threads", "prepare_texts=3"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1 and "cannot run: group texts" in bad.stdout, bad
    assert not list((workdir / "logs").glob("slurm/**/*.log"))  # nothing was submitted


def test_a_job_pending_for_ever_is_reported_within_a_minute(slurm_cluster, tmp_path):
    """The same job with the pre-flight check off: SLURM keeps it pending (PartitionConfig); the run stops."""
    started = time.time()
    log = _snakemake(
        _fresh_workdir(tmp_path),
        *PROFILES,
        TEXTS,
        "--set-threads",
        "prepare_texts=3",
        timeout=180,
        env=site_variables(LMMAP_SLURM_PREFLIGHT="0"),
        ok=False,
    )
    elapsed = time.time() - started
    print(f"pending job: stopped after {elapsed:.0f} s")
    match = re.search(
        r"lmmap watchdog: stopping the run: SLURM job (\d+) \(group texts .*\) is pending with "
        r"reason PartitionConfig",
        log,
    )
    assert match, log[-5000:]
    assert _job_fields(match.group(1)).get("JobState") == "CANCELLED"  # Snakemake cancelled it on the way out
    assert elapsed < 90
