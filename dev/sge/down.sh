#!/usr/bin/env bash
# Stop the development Grid Engine cluster started by up.sh: sge_execd and sge_qmaster by their PIDs.
#
#   dev/sge/down.sh            # delete all jobs, stop both daemons; keep the state dir (logs, scratch)
#   dev/sge/down.sh --purge    # ... and delete the state dir
#   dev/sge/down.sh --force    # stop even if another checkout's state dir still uses this cluster
#
# Grid Engine is installed machine-wide (one cluster per machine). Every up.sh registers its state
# dir; down.sh unregisters it and stops the daemons only when no other registered state dir (with
# a cluster.json) remains, or with --force. Installed packages and the cluster configuration
# (/var/lib/gridengine, /var/spool/gridengine) stay; the next up.sh starts the same cluster again.
set -Eeuo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
report_errors

purge=0; force=0
for a in "$@"; do
  case "$a" in
    --purge) purge=1 ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument: $a (use --purge, --force)" ;;
  esac
done
[[ "$(id -u)" == 0 ]] || unsupported "needs root (the daemons run as root/sgeadmin)"
# the running cluster's ports win over this shell's defaults
if [[ -r "$STATE/env.sh" ]]; then
  QMASTER_PORT="$(sed -n "s/^export PWLAB_SGE_QMASTER_PORT='\(.*\)'$/\1/p" "$STATE/env.sh")"; QMASTER_PORT="${QMASTER_PORT:-6444}"
  EXECD_PORT="$(sed -n "s/^export PWLAB_SGE_EXECD_PORT='\(.*\)'$/\1/p" "$STATE/env.sh")"; EXECD_PORT="${EXECD_PORT:-6445}"
  set_sge_vars
fi
with_lock "$GLOBAL_LOCK"

users_remove
others="$(users_others | tr '\n' ' ')"
if [[ -n "${others// /}" ]] && ((force == 0)); then
  log "not stopping: this machine's Grid Engine is still used by $others(their cluster.json exists); use --force to stop it anyway"
else
  # 1. delete jobs while the daemons still run, so their shepherds end them cleanly. Without an
  #    execd, running jobs only get marked for deletion ("dr"); do not force them (qdel -f of a
  #    running job whose execd is down crashed sge_qmaster 8.1.9 here): their processes are ended
  #    below and the next execd start reports them finished.
  if daemon_pid qmaster >/dev/null; then
    jobs="$(sge_env timeout 15 qstat -u '*' 2>/dev/null | awk 'NR > 2 {print $1}' | sort -u | tr '\n' ' ' || true)"
    if [[ -n "${jobs// /}" ]]; then
      log "deleting jobs: $jobs"
      # shellcheck disable=SC2086
      sge_env timeout 15 qdel $jobs >/dev/null 2>&1 || true
      if daemon_pid execd >/dev/null; then
        for ((i = 0; i < 100; i++)); do
          [[ -z "$(sge_env timeout 5 qstat -u '*' 2>/dev/null || true)" ]] && break
          sleep 0.1
        done
        left="$(sge_env timeout 15 qstat -u '*' 2>/dev/null | awk 'NR > 2 {print $1}' | sort -u | tr '\n' ' ' || true)"
        [[ -z "${left// /}" ]] || log "still listed after 10 s: $left (their processes are ended below)"
      else
        log "sge_execd is not running: running jobs stay listed until its next start"
      fi
    fi
  fi
  # 2. daemons, by PID (execd first: it reports to the qmaster on the way down)
  stop_daemon execd 20
  stop_daemon qmaster 30
  # 3. leftovers: shepherds / job processes of this machine's Grid Engine
  end_leftover_jobs "Grid Engine job processes"
  log "cluster stopped"
fi

if ((purge)); then
  if [[ -d "$STATE" ]]; then
    # only a directory that up.sh made (it has cluster.json or etc/queue), never / or the repo itself
    [[ -e "$STATE/cluster.json" || -e "$STATE/etc/queue" || -d "$STATE/log" ]] || die "refusing to delete $STATE: it does not look like a dev/sge state dir"
    purge_state_dir
  fi
fi
