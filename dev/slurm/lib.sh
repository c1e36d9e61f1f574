# shellcheck shell=bash
# shellcheck disable=SC2034  # settings are used by the scripts that source this file
# Shared settings and helpers for dev/slurm/{up,down,check}.sh. Sourced, not run.
#
# Every path the cluster uses lives under ONE state directory ($PWLAB_SLURM_STATE, default
# <repo>/.state/slurm). Every daemon is started by these scripts in the foreground (-D/-F), detached
# with setsid, and its PID recorded in <state>/pids/<name>.pid; it is stopped by that PID only.

SLURM_DEV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEV_TAG=slurm-dev
# shellcheck source=../lib/common.sh
source "$SLURM_DEV_DIR/../lib/common.sh"
STATE="$(state_dir slurm "${PWLAB_SLURM_STATE:-}")"

# ---- settings (env overridable) ---------------------------------------------------------------
CLUSTER_NAME="${PWLAB_SLURM_CLUSTER:-pwlab}"
CTLD_PORT="${PWLAB_SLURM_CTLD_PORT:-16817}"
SLURMD_PORT="${PWLAB_SLURM_SLURMD_PORT:-16818}"   # n0; n1..n3 use the next three ports
REST_PORT="${PWLAB_SLURM_REST_PORT:-16830}"
DBD_PORT="${PWLAB_SLURM_DBD_PORT:-16831}"         # slurmdbd (MariaDB itself: unix socket only)
SSH_PORT="${PWLAB_SLURM_SSH_PORT:-2222}"
TEST_USER="${PWLAB_SLURM_USER:-pwlab}"
START_TIMEOUT="${PWLAB_SLURM_TIMEOUT:-90}"
NODE_HOSTNAMES="${PWLAB_SLURM_NODE_HOSTNAMES:-1}"  # 1: each slurmd in its own UTS namespace
SSH_SETENV="${PWLAB_SLURM_SSH_SETENV:-1}"          # 1: sshd sets SLURM_CONF for sessions
SMOKE="${PWLAB_SLURM_SMOKE:-1}"                    # 1: run srun smoke jobs after a (re)start

MAIN_NODE=n0
EXTRA_NODES=(n1 n2 n3)
ALL_NODES=("$MAIN_NODE" "${EXTRA_NODES[@]}")

CONF="$STATE/etc/slurm.conf"
MUNGE_DIR="$STATE/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket"
MUNGE_KEY="$MUNGE_DIR/munge.key"
JWT_KEY="$STATE/etc/jwt_hs256.key"
LOG="$STATE/log"
PIDS="$STATE/pids"
SSH_DIR="$STATE/ssh"
CLIENT_KEY="$SSH_DIR/id_ed25519"
KNOWN_HOSTS="$SSH_DIR/known_hosts"
JOBCOMP="$LOG/jobcomp.txt"
DB_DIR="$STATE/mariadb"                             # MariaDB: datadir, socket, pid (no TCP port)
DB_DATA="$DB_DIR/data"
DB_SOCKET="$DB_DIR/mariadb.sock"
DB_NAME=slurm_acct_db
# Accounting set up with sacctmgr at every (re)start (see up.sh "accounting").
ACCOUNTS=(lab physics chem)                         # lab: the users' default account
QOS_GRANTED=(normal high)                           # the users may use these (default normal)
QOS_RESTRICTED=restricted                           # exists, but no user may use it
# Limits that make jobs wait for real (reason codes for the guidance tests); the users may use both.
QOS_ONE_JOB=onejob                                  # MaxJobsPerUser=1 -> QOSMaxJobsPerUserLimit
ACCOUNT_TINY=tiny                                   # GrpTRES=cpu=2 -> AssocGrpCpuLimit
SCRATCH="$STATE/scratch"

# Daemon names this tooling manages, in start order; the expected executable of each.
daemon_names() {
  echo munged mariadb slurmdbd slurmctld
  local n; for n in "${ALL_NODES[@]}"; do echo "slurmd-$n"; done
  echo slurmrestd sshd
}
daemon_exe() {
  case "$1" in
    munged) echo munged ;; mariadb) echo mariadbd ;; slurmdbd) echo slurmdbd ;;
    slurmctld) echo slurmctld ;; slurmd-*) echo slurmd ;;
    slurmrestd) echo slurmrestd ;; sshd) echo sshd ;; *) return 1 ;;
  esac
}

# pid_of NAME -> prints the recorded PID if that process is alive AND runs the expected
# executable (guards against PID reuse); returns 1 otherwise.
pid_of() {
  local name="$1" f="$PIDS/$1.pid" pid exe want
  [[ -r "$f" ]] || return 1
  pid="$(tr -dc 0-9 <"$f")"
  [[ -n "$pid" ]] && alive "$pid" || return 1
  want="$(daemon_exe "$name")" || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  exe="${exe% (deleted)}"
  # Debian installs slurmd/slurmctld as alternatives (slurmd -> slurmd-wlm): accept either name
  local real; real="$(readlink -f "$(command -v "$want" 2>/dev/null || echo "/nonexistent/$want")")"
  [[ "$(basename "$exe")" == "$want" || "$exe" == "$real" ]] || return 1
  echo "$pid"
}

# Environment for everything that talks to this cluster.
slurm_env() { env -i PATH="$SYS_PATH" LANG=C.UTF-8 HOME=/root SLURM_CONF="$CONF" "$@"; }

# Stop one managed daemon by its recorded PID: TERM, wait, then KILL.
stop_daemon() {
  local name="$1" pid children=""
  if [[ -r "$PIDS/$name.pid" ]] && ! pid_of "$name" >/dev/null; then
    pid="$(tr -dc 0-9 <"$PIDS/$name.pid")"
    if [[ -n "$pid" ]] && alive "$pid"; then
      log "warning: pid $pid recorded for $name runs $(readlink "/proc/$pid/exe" 2>/dev/null || echo '?'), not $name: left alone"
    fi
  fi
  if pid="$(pid_of "$name")"; then
    [[ "$name" == sshd ]] && children="$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -s ' \n' ' ' || true)"
    terminate_pid "$pid" "$name" 10
    # per-connection sshd processes outlive the listener: end the ones it had forked
    local c
    for c in $children; do
      [[ "$(exe_name "$c")" == sshd ]] && kill -TERM "$c" 2>/dev/null || true
    done
    log "stopped $name (pid $pid)"
  fi
  rm -f "$PIDS/$name.pid"
}

# PIDs of job step daemons / job processes of THIS cluster (found by SLURM_CONF=<our conf> in
# their environment), excluding this script's own ancestors.
our_job_pids() {
  local ancestors pid exe env d
  ancestors="$(own_ancestors)"
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    [[ "$ancestors" == *" $pid "* ]] && continue
    env="$( { tr '\0' '\n' <"$d/environ"; } 2>/dev/null)" || continue
    grep -qxF "SLURM_CONF=$CONF" <<<"$env" || continue
    exe="$(exe_name "$pid")"
    if [[ "$exe" == slurmstepd* ]] || grep -q '^SLURM_JOB_ID=' <<<"$env"; then echo "$pid"; fi
  done
}
