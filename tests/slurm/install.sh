#!/usr/bin/env bash
# Install the Debian packages of a single-node SLURM test cluster (munge, slurmctld, slurmd,
# slurm-client) unless they are already there.
#   install.sh          install what is missing (root, apt-get; no recommends; services not started)
#   install.sh --check  only report whether everything is installed (exit 1 if not)
set -euo pipefail

PACKAGES="slurmctld slurmd slurm-client munge"
BINARIES="munged munge unmunge slurmctld slurmd sinfo sbatch squeue scontrol scancel"

log() { echo "[slurm-install] $*" >&2; }

missing_binaries() {
  local b missing=""
  for b in $BINARIES; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing="$missing $b"
  done
  echo "${missing# }"
}

missing=$(missing_binaries)
if [ -z "$missing" ]; then log "installed: $BINARIES"; exit 0; fi
if [ "${1:-}" = --check ]; then log "missing: $missing"; exit 1; fi

[ "$(id -u)" = 0 ] || { log "missing ($missing) and not root: cannot apt-get install"; exit 1; }
command -v apt-get >/dev/null || { log "missing ($missing) and no apt-get on this machine"; exit 1; }

# Without systemd the packages' postinst would try to start the daemons: forbid it for the install.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; own_policy=1
fi
trap 'if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi' EXIT

export DEBIAN_FRONTEND=noninteractive
log "apt-get install $PACKAGES"
if ! apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $PACKAGES
fi
missing=$(missing_binaries)
[ -z "$missing" ] || { log "still missing after install: $missing"; exit 1; }
log "installed $PACKAGES"
