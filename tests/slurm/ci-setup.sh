#!/usr/bin/env bash
# CI: install and start the single-node SLURM test cluster that tests/test_slurm.py runs the
# workflow on. It never fails the build: where the cluster cannot run (not root, no apt-get, no
# package mirror, daemons refusing to start) it says why, and the SLURM tests skip.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "[slurm-ci] $*" >&2; }

if [ "$(id -u)" != 0 ]; then say "not root: no test cluster, the SLURM tests will skip"; exit 0; fi
started=$SECONDS
if ! bash "$here/install.sh" --check 2>/dev/null; then
  if ! command -v apt-get >/dev/null; then say "no apt-get: the SLURM tests will skip"; exit 0; fi
  timeout 300 apt-get update -qq || say "apt-get update failed; trying the install anyway"
  timeout 600 bash "$here/install.sh" || { say "could not install SLURM: the SLURM tests will skip"; exit 0; }
fi
installed=$SECONDS
timeout 120 bash "$here/start-cluster.sh" || { say "could not start SLURM: the SLURM tests will skip"; exit 0; }
say "installed in $((installed - started)) s, started in $((SECONDS - installed)) s"
