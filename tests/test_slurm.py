"""The workflow on a live SLURM scheduler: the single-node test cluster of tests/slurm/ (CI starts
it with tests/slurm/ci-setup.sh; as root this module starts it itself when the packages are there).

Every job goes through sbatch with the executor plugin and profiles/test-slurm, the scoring jobs
ask for and receive a (fake) GPU, and the matrix equals that of a local run.
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
PROFILE = ROOT / "profiles" / "test-slurm"
pytestmark = pytest.mark.slurm

SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
# texts -> scores -> matrix -> coordinates: five levels, each one round of sbatch and polling
TARGETS = ("results/matrix/loglik.npz", "results/coords/coordinates.npz")
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


def test_a_batch_job_receives_a_fake_gpu(slurm_cluster, tmp_path):
    out = tmp_path / "job.out"
    submit = _run(["sbatch", "--parsable", "--gres=gpu:1", "-o", str(out), "--wrap",
                   "echo gpu=${CUDA_VISIBLE_DEVICES:-none}"], cwd=tmp_path)
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


def _snakemake(workdir: Path, *args: str, timeout: int) -> str:
    """Run the workflow in `workdir`; on timeout stop it with SIGINT, so it cancels its SLURM jobs."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(ROOT / "config/test/config.yaml"), str(workdir / "config.yaml"), *args]
    with subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        try:
            log, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            log, _ = proc.communicate(timeout=60)
            pytest.fail(f"snakemake ran over {timeout} s:\n{log[-5000:]}")
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{log[-8000:]}"
    return log


def _workdir(base: Path) -> Path:
    """A working directory mapping three tiny saved models from a sheet (no downloads)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import save_tiny_model

    rows = ["model_id\tsource\tfamily\ttype\tsize\tcreated"]
    for i, style in enumerate(["gpt2", "llama", "gpt2"]):
        save_tiny_model(base / "models" / f"m{i}", style=style, seed=i)
        rows.append(f"org/tiny-{i}\tmodels/m{i}\tfam{i % 2}\t{style}\t1M\t2024-0{i + 1}-01")
    (base / "models.tsv").write_text("\n".join(rows) + "\n")
    (base / "config.yaml").write_text(  # on top of config/test/config.yaml: a sheet instead of the zoo
        "models: models.tsv\nzoo: {enabled: false}\ntexts: {source: demo, n: 12, seed: 1, max_bytes: 1024,"
        " min_bytes: 256}\nmap: {perplexity: 30, max_iter: 250, seed: 42, hues: [type], annotate: false}\n")
    return base


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """The same workflow run locally and through SLURM; returns their directories and the SLURM log."""
    local = _workdir(tmp_path_factory.mktemp("local"))
    cluster = tmp_path_factory.mktemp("slurm")
    shutil.copytree(local, cluster, dirs_exist_ok=True)
    _snakemake(local, "--cores", "2", *TARGETS, timeout=600)
    started = time.time()
    log = _snakemake(cluster, "--profile", str(PROFILE), *TARGETS, timeout=900)
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
    assert len(score_jobs) == 3
    for jobid in score_jobs:
        fields = _job_fields(jobid)
        assert fields.get("TresPerNode") == "gres:gpu:1", fields  # asked for
        assert fields.get("JOB_GRES") == "gpu:1", fields  # and allocated


@pytest.mark.slow
def test_outputs_equal_a_local_run(runs):
    local, cluster, _ = runs
    with np.load(local / "results/matrix/loglik.npz") as a, np.load(cluster / "results/matrix/loglik.npz") as b:
        assert a["L"].shape == (3, 12)
        for key in ("model_ids", "text_ids", "text_set_sha256"):
            np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a["L"], b["L"])
    with np.load(local / "results/coords/coordinates.npz") as a, \
            np.load(cluster / "results/coords/coordinates.npz") as b:
        np.testing.assert_allclose(a["Q"], b["Q"], rtol=0, atol=1e-12)
