# shellcheck shell=bash
# shellcheck disable=SC2034  # settings are used by the scripts that source this file
# Shared settings and helpers for dev/sge/{up,down,check}.sh. Sourced, not run.
#
# Unlike the Slurm test cluster, Grid Engine is installed machine-wide by Debian's packages:
# SGE_ROOT=/var/lib/gridengine (cell "default": bootstrap, act_qmaster, host_aliases, accounting)
# and /var/spool/gridengine (qmaster spool, berkeleydb, execd spool). So there is ONE Grid Engine
# cluster per machine, whichever checkout started it. Our own state dir ($PWLAB_SGE_STATE,
# default <repo>/.state/sge) holds only cluster.json, env.sh, logs and the scratch dir.
# The daemons daemonize themselves and write their own pid files; they are stopped by that PID
# (after checking that it still runs sge_qmaster/sge_execd), never by name.

SGE_DEV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEV_TAG=sge-dev
# shellcheck source=../lib/common.sh
source "$SGE_DEV_DIR/../lib/common.sh"
STATE="$(state_dir sge "${PWLAB_SGE_STATE:-}")"

# ---- settings (env overridable) ---------------------------------------------------------------
TEST_USER="${PWLAB_SGE_USER:-${PWLAB_SLURM_USER:-pwlab}}"
QMASTER_PORT="${PWLAB_SGE_QMASTER_PORT:-6444}"
EXECD_PORT="${PWLAB_SGE_EXECD_PORT:-6445}"
SLOTS="${PWLAB_SGE_SLOTS:-4}"
H_RT="${PWLAB_SGE_H_RT:-01:00:00}"            # queue hard run-time limit (INFINITY: none)
ROOT_SUBMIT="${PWLAB_SGE_ROOT_SUBMIT:-1}"      # 1: min_uid/min_gid 0, so root may submit too
START_TIMEOUT="${PWLAB_SGE_TIMEOUT:-60}"
SMOKE="${PWLAB_SGE_SMOKE:-1}"                  # 1: submit a smoke job (as the test user) after a (re)start
SLURM_STATE_DIR="$(state_dir slurm "${PWLAB_SLURM_STATE:-}")"  # for the shared sshd

QUEUE=all.q
PE=smp
PE_SLOTS=999

# fixed by Debian's packages (default-bootstrap points at /var/spool/gridengine)
SGE_ROOT=/var/lib/gridengine
SGE_CELL=default
SPOOL=/var/spool/gridengine
COMMON="$SGE_ROOT/$SGE_CELL/common"
QMASTER_SPOOL="$SPOOL/qmaster"
QMASTER_PIDFILE="$QMASTER_SPOOL/qmaster.pid"
EXECD_SPOOL="$SPOOL/execd"
ACCOUNTING="$COMMON/accounting"
SGE_LIBEXEC=/usr/lib/gridengine
ADMIN_USER=sgeadmin
CONFIG_STAMP="$COMMON/pwlab-dev-config.sha256"  # hash of the configuration up.sh applied last
USERS_FILE="$SPOOL/pwlab-dev-users"              # state dirs that use this machine's cluster
GLOBAL_LOCK="${PWLAB_SGE_LOCK:-/run/lock/pwlab-sge-dev.lock}"

LOG="$STATE/log"
SCRATCH="$STATE/scratch"

# The host name Grid Engine uses for this machine (resolved, aliased via host_aliases).
MASTER_HOST="$(hostname 2>/dev/null || true)"
# sge_execd names its spool dir after the host name it resolves for itself *before* applying
# host_aliases (here: "localhost", not "vm"), so its pid file is looked up in every host dir.
EXECD_PIDFILE_GLOB="$EXECD_SPOOL/*/execd.pid"
execd_pidfiles() { local f; for f in "$EXECD_SPOOL"/*/execd.pid; do [[ -e "$f" ]] && echo "$f"; done; return 0; }
execd_host_spool() { # the spool dir of the running execd (or the newest one)
  local f pid
  for f in $(execd_pidfiles); do
    pid="$(head -n1 "$f" | tr -dc 0-9)"
    if [[ -n "$pid" ]] && alive "$pid" && [[ "$(exe_name "$pid")" == sge_execd ]]; then dirname "$f"; return 0; fi
  done
  # shellcheck disable=SC2012
  f="$(ls -td "$EXECD_SPOOL"/*/ 2>/dev/null | head -n 1 || true)"
  f="${f%/}"; echo "${f:-$EXECD_SPOOL/$MASTER_HOST}"
}

# Environment for everything that talks to this cluster (the /usr/bin/q* wrappers would find
# SGE_ROOT/SGE_CELL in /etc/default/gridengine; we pass them anyway, as a non-Debian site needs).
# set_sge_vars: (re)make sge_vars from the current ports (down.sh and check.sh take the running
# cluster's ports from its env.sh).
sge_vars=()
set_sge_vars() {
  sge_vars=(SGE_ROOT="$SGE_ROOT" SGE_CELL="$SGE_CELL" SGE_QMASTER_PORT="$QMASTER_PORT" SGE_EXECD_PORT="$EXECD_PORT")
}
set_sge_vars
sge_env() { env -i PATH="$SYS_PATH" LANG=C.UTF-8 HOME=/root USER=root LOGNAME=root "${sge_vars[@]}" "$@"; }
# as_user CMD...: run a command as the test user with the same environment
as_user() {
  local home; home="$(getent passwd "$TEST_USER" | cut -d: -f6)"
  runuser -u "$TEST_USER" -- env -i PATH="$SYS_PATH" LANG=C.UTF-8 HOME="${home:-/}" USER="$TEST_USER" \
    LOGNAME="$TEST_USER" "${sge_vars[@]}" "$@"
}

# daemon_pid qmaster|execd -> prints the PID from the daemon's own pid file if that process is
# alive AND runs the expected executable (guards against PID reuse); returns 1 otherwise.
daemon_pid() {
  local f files want pid exe
  case "$1" in
    qmaster) files="$QMASTER_PIDFILE"; want=sge_qmaster ;;
    execd) files="$(execd_pidfiles)"; want=sge_execd ;;
    *) return 1 ;;
  esac
  for f in $files; do
    [[ -r "$f" ]] || continue
    pid="$(head -n1 "$f" | tr -dc 0-9)"
    if [[ -z "$pid" ]] || ! alive "$pid"; then continue; fi
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    exe="${exe% (deleted)}"
    [[ "$(basename "$exe")" == "$want" ]] || continue
    echo "$pid"; return 0
  done
  return 1
}

# stop_daemon qmaster|execd: SIGTERM by PID, wait, SIGKILL after $2 seconds (default 20)
stop_daemon() {
  local name="$1" pid
  pid="$(daemon_pid "$name")" || return 0
  terminate_pid "$pid" "sge_$name" "${2:-20}"
  log "stopped sge_$name (pid $pid)"
}

# PIDs of shepherds and job processes of this machine's Grid Engine (shepherds run in
# <execd spool>/<host>/active_jobs/<job>; jobs carry SGE_JOB_SPOOL_DIR=<that dir>), excluding
# this script's own ancestors.
our_job_pids() {
  local ancestors pid f
  ancestors="$(own_ancestors)"
  {
    { find /proc -mindepth 2 -maxdepth 2 -name exe -lname '*/sge_shepherd' 2>/dev/null || true; } | while IFS= read -r f; do
      pid="$(cut -d/ -f3 <<<"$f")"
      [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$EXECD_SPOOL/"* ]] && echo "$pid"
    done
    { grep -lsaz -- "^SGE_JOB_SPOOL_DIR=$EXECD_SPOOL/" /proc/[0-9]*/environ 2>/dev/null || true; } | cut -d/ -f3
  } | sort -un | while IFS= read -r pid; do
    [[ "$ancestors" == *" $pid "* ]] || echo "$pid"
  done
  return 0
}

# registry of state dirs using this machine's cluster (so one checkout's down.sh does not stop
# the cluster another checkout still uses)
users_add() { mkdir -p "$SPOOL"; { cat "$USERS_FILE" 2>/dev/null; echo "$STATE"; } | awk 'NF && !s[$0]++' >"$USERS_FILE.tmp" && mv "$USERS_FILE.tmp" "$USERS_FILE"; }
users_remove() { [[ -f "$USERS_FILE" ]] || return 0; grep -vxF "$STATE" "$USERS_FILE" >"$USERS_FILE.tmp" || true; mv "$USERS_FILE.tmp" "$USERS_FILE"; }
# other state dirs that still have a cluster.json
users_others() {
  local s
  [[ -f "$USERS_FILE" ]] || return 0
  while IFS= read -r s; do
    [[ -n "$s" && "$s" != "$STATE" && -f "$s/cluster.json" ]] && echo "$s"
  done <"$USERS_FILE"
  return 0
}

# qi_state: the state letters of the queue instance QUEUE@MASTER_HOST ("" = ok), or "missing"
qi_state() {
  local out
  out="$(sge_env timeout 15 qstat -f -q "$QUEUE@$MASTER_HOST" -u '*' 2>/dev/null)" || { echo missing; return 0; }
  awk -v qi="$QUEUE@$MASTER_HOST" '$1 == qi { found = 1; st = (NF >= 6 ? $6 : ""); print st; exit } END { if (!found) print "missing" }' <<<"$out"
}
