# shellcheck shell=bash
# shellcheck disable=SC2034  # settings are used by the scripts that source this file
# Helpers shared by the dev clusters' scripts (dev/slurm, dev/sge). Sourced by their lib.sh, not
# run. The sourcing lib.sh sets DEV_TAG first: the prefix of every message ("slurm-dev", "sge-dev").

: "${DEV_TAG:?set DEV_TAG before sourcing dev/lib/common.sh}"

# The checkout these scripts belong to (state directories default to <checkout>/.state/).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# state_dir KIND SETTING: a cluster's state directory, absolute: SETTING when set (a
# PWLAB_*_STATE variable), else <checkout>/.state/KIND.
state_dir() { realpath -m "${2:-$REPO_ROOT/.state/$1}"; }

# exit codes: 77 = this machine cannot run the cluster (skip), 1 = failed to start / unhealthy
EXIT_UNSUPPORTED=77

# Daemons and jobs get this PATH, not the caller's (a venv or a user's ~/bin must not leak in).
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH="$SYS_PATH:$PATH"

log()  { printf '[%s] %s\n' "$DEV_TAG" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "$DEV_TAG" "$*" >&2; exit 1; }
unsupported() { printf '[%s] UNSUPPORTED: %s\n' "$DEV_TAG" "$*" >&2; exit "$EXIT_UNSUPPORTED"; }

# report_errors: with `set -E`, name the script, line and command of whatever fails, so a failed
# start says where instead of exiting silently.
report_errors() {
  # shellcheck disable=SC2016  # expanded when the trap fires, not now
  trap 'printf "[%s] ERROR: %s failed at line %s: %s\n" "$DEV_TAG" "${BASH_SOURCE[0]##*/}" "$LINENO" "$BASH_COMMAND" >&2' ERR
}

# require_linux_root WHY: exit 77 unless this is Linux and we are root (WHY says what needs root).
require_linux_root() {
  [[ "$(uname -s)" == Linux ]] || unsupported "needs Linux (found $(uname -s))"
  [[ "$(id -u)" == 0 ]] || unsupported "needs root ($1); run: sudo $0"
}

# require_port VAR...: each named variable holds a TCP port number (1-65535).
require_port() {
  local v
  for v in "$@"; do
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || ((${!v} < 1 || ${!v} > 65535)); then die "$v=${!v} is not a valid port number"; fi
  done
}

# require_user_name NAME SETTING: NAME is a plain non-root user name (it becomes a system user).
require_user_name() {
  [[ "$1" =~ ^[a-z_][a-z0-9_-]{0,30}$ && "$1" != root ]] || die "$2='$1' is not a valid non-root user name"
}

# with_lock FILE: serialize concurrent up.sh/down.sh (and apt) runs on fd 9, held until exit.
with_lock() {
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  flock -w 600 9 || die "another up.sh/down.sh holds $1"
}

# alive PID: the process exists and is not a zombie (an exited daemon whose parent -- init here --
# has not reaped yet; some container inits reap only every few seconds)
alive() { [[ -d "/proc/$1" ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

# exe_name PID: the base name of the executable PID runs ("" when gone)
exe_name() { basename "$(readlink "/proc/$1/exe" 2>/dev/null)"; }

# own_ancestors: " pid pid ... " of this shell and its ancestors, which a sweep of job processes
# must never end (a test may run these scripts from inside a job's environment).
own_ancestors() {
  local ancestors=" " p=$$
  while [[ "$p" -gt 1 ]]; do ancestors+="$p "; p="$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || echo 1)"; done
  printf '%s' "$ancestors"
}

# terminate_pid PID LABEL SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
terminate_pid() {
  local pid="$1" label="$2" t="$3" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$label (pid $pid) ignored SIGTERM for $t s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
}

# end_leftover_jobs WHAT: end the processes our_job_pids (defined by each cluster's lib.sh) lists:
# SIGTERM, a second's grace, then SIGKILL for what is left.
end_leftover_jobs() {
  local left
  left="$(our_job_pids | tr '\n' ' ')"
  [[ -n "${left// /}" ]] || return 0
  log "ending leftover $1: $left"
  # shellcheck disable=SC2086  # a list of PIDs, split on purpose
  kill -TERM $left 2>/dev/null || true
  sleep 1
  left="$(our_job_pids | tr '\n' ' ')"
  # shellcheck disable=SC2086
  [[ -z "${left// /}" ]] || kill -KILL $left 2>/dev/null || true
}

# purge_state_dir: delete $STATE (the caller has checked that up.sh made it), never a system dir
# or the checkout itself.
purge_state_dir() {
  case "$STATE" in /|/root|/home|/tmp|/var|/usr|/etc|"$REPO_ROOT") die "refusing to delete $STATE" ;; esac
  rm -rf "$STATE"
  log "purged $STATE"
}

# print_log_tails FILE...: the last lines of each non-empty log, for a failure message.
print_log_tails() {
  local f
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    printf '[%s] ---- last lines of %s ----\n' "$DEV_TAG" "$f" >&2
    tail -n 25 "$f" >&2
  done
}

# install_packages TESTED_WITH ELSEWHERE PACKAGE... -- COMMAND...: install whichever of these Debian
# packages is missing (without dpkg: whichever command is missing), then check that every command
# exists. TESTED_WITH names what the scripts were tested with (warned about on another Debian
# release); ELSEWHERE is the advice when there is no apt. A function before_install, if the caller
# defines one, runs just before apt-get (debconf answers).
install_packages() {
  local tested="$1" elsewhere="$2" pkgs=() need_cmds=() missing=() p c updated=0
  shift 2
  while (($#)) && [[ "$1" != -- ]]; do pkgs+=("$1"); shift; done
  (($#)) && shift
  need_cmds=("$@")
  if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${pkgs[@]}"; do
      [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" == installed ]] || missing+=("$p")
    done
  else
    for c in "${need_cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  fi
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || unsupported "missing: ${missing[*]}, and this is not a Debian/apt system; $elsewhere"
    grep -qs '^12' /etc/debian_version \
      || log "warning: not Debian 12 ($(cat /etc/debian_version 2>/dev/null || echo unknown)); tested with Debian 12's $tested only"
    log "installing missing packages: ${missing[*]}"
    if declare -F before_install >/dev/null; then before_install; fi
    # Keep maintainer scripts from starting system-wide daemons (sshd on :22, munged, mariadb,
    # sge_qmaster via init scripts, exim4 pulled in by bsd-mailx): the scripts start their own.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    for p in "${missing[@]}"; do
      if ! apt-cache show "$p" >/dev/null 2>&1; then
        log "apt-get update (package lists do not know $p)"
        apt_get update || log "warning: apt-get update reported errors"
        updated=1; break
      fi
    done
    local installed=1
    if ! apt_get install -y --no-install-recommends "${missing[@]}"; then
      installed=0
      if ((updated == 0)); then
        log "install failed; running apt-get update and retrying once"
        apt_get update || log "warning: apt-get update reported errors"
        apt_get install -y --no-install-recommends "${missing[@]}" && installed=1
      fi
    fi
    if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
    ((installed)) || die "step 'install packages': apt-get install ${missing[*]} failed (see above)"
  fi
  for c in "${need_cmds[@]}"; do
    command -v "$c" >/dev/null 2>&1 || die "command '$c' still missing after install"
  done
}

# apt_get ARGS...: apt-get, quiet, waiting for another apt's lock, its output kept off stdout
# (which carries only the path of cluster.json).
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 "$@" >&2; }

# port_in_use PORT: something listens on this TCP port.
port_in_use() { [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; }

# json_bool VALUE: "true" when VALUE is 1, else "false" (for jq --argjson).
json_bool() { if [[ "$1" == 1 ]]; then echo true; else echo false; fi; }

# json_strings WORD...: a JSON array of strings (for jq --argjson).
json_strings() { jq -cn '$ARGS.positional' --args "$@"; }

# write_json FILE JQ-ARGS...: write the JSON that `jq -n JQ-ARGS` builds (values passed with
# --arg/--argjson, so jq does the quoting), atomically: readers never see half a file.
write_json() {
  local file="$1"; shift
  jq -n "$@" >"$file.tmp"
  mv "$file.tmp" "$file"
}
