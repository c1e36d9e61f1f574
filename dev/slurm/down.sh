#!/usr/bin/env bash
# Stop the development Slurm cluster started by up.sh: every daemon (MariaDB and slurmdbd too) by
# its recorded PID.
#
#   dev/slurm/down.sh            # stop; keep the state dir (keys, job state, logs)
#   dev/slurm/down.sh --purge    # stop and delete the state dir
#
# Running jobs are cancelled first; step daemons / job processes of THIS cluster that outlive
# their slurmd (found by SLURM_CONF=<this cluster's slurm.conf> in their environment) are ended too.
set -Eeuo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
report_errors

purge=0; lock=1
for a in "$@"; do
  case "$a" in
    --purge) purge=1 ;;
    --no-lock) lock=0 ;;   # internal: called by up.sh, which holds the lock
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) die "unknown argument: $a (use --purge)" ;;
  esac
done
[[ "$(id -u)" == 0 ]] || unsupported "needs root (the daemons run as root/slurm/munge)"
if [[ ! -d "$STATE" ]]; then log "nothing to stop: $STATE does not exist"; exit 0; fi
((lock == 0)) || with_lock "$STATE/.lock"

# 1. cancel jobs while the controller still runs, so their steps end cleanly
if pid_of slurmctld >/dev/null && pid_of munged >/dev/null && [[ -r "$CONF" ]]; then
  jobs="$(slurm_env timeout 15 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)"
  if [[ -n "${jobs// /}" ]]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    slurm_env timeout 15 scancel $jobs >/dev/null 2>&1 || true
    for ((i = 0; i < 100; i++)); do
      [[ -z "$(slurm_env timeout 5 squeue -h -o %A -t R,CG,S 2>/dev/null || true)" ]] && break
      sleep 0.1
    done
  fi
fi

# 2. daemons, by PID
for name in sshd slurmrestd slurmctld $(printf 'slurmd-%s ' "${ALL_NODES[@]}") slurmdbd mariadb munged; do
  stop_daemon "$name"
done

# 3. leftovers of this cluster's jobs (slurmstepd keeps running when slurmd stops)
end_leftover_jobs "job processes of this cluster"
rm -f "$STATE"/run/*.pid "$MUNGE_DIR/munged.pid" "$DB_DIR/mariadbd.pid" 2>/dev/null || true

if ((purge)); then
  # only a directory that up.sh made (it has etc/slurm.conf or pids/), never / or the repo itself
  [[ -e "$STATE/etc/slurm.conf" || -d "$STATE/pids" ]] || die "refusing to delete $STATE: it does not look like a cluster state dir"
  purge_state_dir
fi
log "cluster stopped"
