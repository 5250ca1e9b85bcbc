# On a SLURM run (profiles/slurm), before anything is submitted: decide how job states are polled and
# check that every planned job fits a node of its partition; then watch the run for jobs that can never
# start or whose end the executor cannot see (src/lmmap/slurm_run.py; site variables in
# profiles/slurm/site.env). Other executors run no hook.

from lmmap import slurm_run


onstart:
    if slurm_run.on_slurm(workflow):
        slurm_run.onstart(workflow)
