#!/usr/bin/env bash
# Start (or confirm running) the single-machine development Son of Grid Engine cluster. Idempotent.
#
#   dev/sge/up.sh        # installs Debian's gridengine packages if missing (root), configures, starts, smoke-tests
#
# Output: <state>/cluster.json (machine-readable; its path is the only stdout line) and <state>/env.sh.
# Exit codes: 0 up and healthy; 77 this machine cannot run it (not root / not Linux / no apt and no
#             Grid Engine / host name does not resolve); 1 failed (the message names the step and
#             shows the tail of the relevant log).
# See dev/sge/README.md for the settings (PWLAB_SGE_* env vars).
set -Eeuo pipefail
umask 022
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
report_errors

T0=$SECONDS
KEEP_ON_FAILURE="${PWLAB_SGE_KEEP_ON_FAILURE:-0}"

# ---- preflight ---------------------------------------------------------------------------------
require_linux_root "it installs packages, runs sge_qmaster/sge_execd and adds a test user"
require_port QMASTER_PORT EXECD_PORT
[[ "$SLOTS" =~ ^[1-9][0-9]{0,4}$ ]] || die "PWLAB_SGE_SLOTS=$SLOTS is not a valid number of slots"
require_user_name "$TEST_USER" PWLAB_SGE_USER
[[ "$H_RT" == INFINITY || "$H_RT" =~ ^[0-9]+(:[0-9]+){0,2}$ ]] || die "PWLAB_SGE_H_RT='$H_RT' is not INFINITY or [[h:]m:]s"
[[ -n "$MASTER_HOST" ]] || unsupported "hostname is empty"
HOST_IP="$( { getent ahostsv4 "$MASTER_HOST" 2>/dev/null || true; } | awk 'NR == 1 {print $1}')"
[[ -n "$HOST_IP" ]] || unsupported "host name '$MASTER_HOST' does not resolve (getent ahostsv4); Grid Engine needs it in /etc/hosts or DNS"
REVERSE_NAME="$( { getent hosts "$HOST_IP" 2>/dev/null || true; } | awk 'NR == 1 {print $2}')"

with_lock "$GLOBAL_LOCK"   # serialize concurrent up.sh/down.sh (and apt) runs of every checkout on this machine
mkdir -p "$STATE" "$LOG" "$SCRATCH"
chmod 755 "$STATE" "$LOG"
chmod 1777 "$SCRATCH"

# ---- packages ----------------------------------------------------------------------------------
PKGS=(gridengine-common gridengine-client gridengine-master gridengine-exec jq)
need_cmds=(/usr/sbin/sge_qmaster /usr/sbin/sge_execd /usr/bin/qconf /usr/bin/qsub /usr/bin/qstat /usr/bin/qacct
           /usr/bin/qdel /usr/bin/qhold /usr/bin/qrls /usr/bin/qhost runuser flock ss setsid jq)
# Answer the packages' debconf questions: configure a cluster (cell "default", this host as master).
before_install() {
  local p
  for p in gridengine-common gridengine-master; do
    printf '%s shared/gridengineconfig boolean true\n%s shared/gridenginecell string %s\n%s shared/gridenginemaster string %s\n' \
      "$p" "$p" "$SGE_CELL" "$p" "$MASTER_HOST"
  done | debconf-set-selections
}
install_packages "Son of Grid Engine 8.1.9" "use Debian 12 (gridengine-master/-exec/-client 8.1.9)" \
  "${PKGS[@]}" -- "${need_cmds[@]}"
getent passwd "$ADMIN_USER" >/dev/null || die "user '$ADMIN_USER' missing (gridengine-common creates it)"
SGE_VERSION="$(dpkg-query -W -f='${Version}' gridengine-master 2>/dev/null | sed 's/+.*//; s/-[^-]*$//' || true)"
[[ -n "$SGE_VERSION" ]] || SGE_VERSION=unknown

# ---- the cell: what the packages' postinst scripts do on a first install, redone if missing
# (packages installed with "configure automatically" off, or a spool someone deleted) --------------
for d in "$SGE_ROOT" "$SGE_ROOT/$SGE_CELL" "$COMMON"; do
  mkdir -p "$d"; chmod 755 "$d"; chown "$ADMIN_USER:$ADMIN_USER" "$d"
done
[[ -s "$COMMON/bootstrap" ]] || install -m 0644 -o "$ADMIN_USER" -g "$ADMIN_USER" /usr/share/gridengine/default-bootstrap "$COMMON/bootstrap"
for d in "$QMASTER_SPOOL" "$QMASTER_SPOOL/job_scripts" "$SPOOL/spooldb" "$EXECD_SPOOL"; do
  mkdir -p "$d"; chmod 755 "$d"; chown "$ADMIN_USER:$ADMIN_USER" "$d"
done
if [[ ! -e "$SPOOL/spooldb/sge" ]]; then
  log "initializing the Grid Engine cluster spool ($SPOOL/spooldb)"
  runuser -u "$ADMIN_USER" -- /usr/share/gridengine/scripts/init_cluster "$SGE_ROOT" "$SGE_CELL" "$SPOOL/spooldb" "$ADMIN_USER" >"$LOG/init_cluster.log" 2>&1 \
    || { tail -n 25 "$LOG/init_cluster.log" >&2; die "step 'init cluster': /usr/share/gridengine/scripts/init_cluster failed (log: $LOG/init_cluster.log)"; }
fi

# Host name resolution: the host name resolves to an address whose reverse name may be another
# name (here: 127.0.0.1 -> localhost); the qmaster then rejects its clients ("client IP resolved
# to host name localhost"). host_aliases maps that name back. act_qmaster names the master host.
NEED_RESTART=0
write_sge_file() { # path content: rewrite only when different; flags a daemon restart
  local f="$1" content="$2"
  if [[ ! -f "$f" || "$(cat "$f")" != "$content" ]]; then
    printf '%s\n' "$content" >"$f.tmp" && chown "$ADMIN_USER:$ADMIN_USER" "$f.tmp" && chmod 644 "$f.tmp" && mv "$f.tmp" "$f"
    NEED_RESTART=1
  fi
}
if [[ -n "$REVERSE_NAME" && "$REVERSE_NAME" != "$MASTER_HOST" ]]; then
  write_sge_file "$COMMON/host_aliases" "$MASTER_HOST $REVERSE_NAME"
elif [[ -f "$COMMON/host_aliases" ]]; then
  rm -f "$COMMON/host_aliases"; NEED_RESTART=1
fi
write_sge_file "$COMMON/act_qmaster" "$MASTER_HOST"

# ---- test user -----------------------------------------------------------------------------------
if ! getent passwd "$TEST_USER" >/dev/null; then
  log "creating test user $TEST_USER"
  useradd --create-home --user-group --shell /bin/bash "$TEST_USER"
fi
# sshd without PAM refuses accounts whose password field starts with '!' (locked); '*' = no password
[[ "$(getent shadow "$TEST_USER" | cut -d: -f2)" == '*' ]] || usermod -p '*' "$TEST_USER"
TEST_UID="$(id -u "$TEST_USER")"; TEST_GID="$(id -g "$TEST_USER")"
TEST_HOME="$(getent passwd "$TEST_USER" | cut -d: -f6)"
[[ -d "$TEST_HOME" ]] || { mkdir -p "$TEST_HOME"; chown "$TEST_USER:" "$TEST_HOME"; }
if [[ "$ROOT_SUBMIT" != 1 ]] && ((TEST_UID < 1000 || TEST_GID < 1000)); then
  die "test user $TEST_USER has uid $TEST_UID / gid $TEST_GID < 1000 (Grid Engine's min_uid/min_gid); use another PWLAB_SGE_USER or PWLAB_SGE_ROOT_SUBMIT=1"
fi

# ---- desired configuration (rendered every run; applied when it differs from the last applied) -----
MIN_ID=1000; [[ "$ROOT_SUBMIT" == 1 ]] && MIN_ID=0
CONF_DIR="$STATE/etc"
NEW="$CONF_DIR/.new"; rm -rf "$NEW"; mkdir -p "$NEW"
cat >"$NEW/exechost" <<EOF
hostname              $MASTER_HOST
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
cat >"$NEW/pe" <<EOF
pe_name               $PE
slots                 $PE_SLOTS
user_lists            NONE
xuser_lists           NONE
start_proc_args       NONE
stop_proc_args        NONE
allocation_rule       \$pe_slots
control_slaves        TRUE
job_is_first_task     TRUE
urgency_slots         min
accounting_summary    FALSE
qsort_args            NONE
EOF
cat >"$NEW/queue" <<EOF
qname                 $QUEUE
hostlist              $MASTER_HOST
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               $PE
rerun                 FALSE
slots                 $SLOTS
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  $H_RT
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
EOF
# edits applied to the cluster's own global / scheduler configuration (which qconf prints in full)
cat >"$NEW/global.edits" <<EOF
min_uid $MIN_ID
min_gid $MIN_ID
administrator_mail none
reporting_params accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00
EOF
cat >"$NEW/sched.edits" <<EOF
schedule_interval 0:0:1
flush_submit_sec 1
flush_finish_sec 1
schedd_job_info true
EOF
cat >"$NEW/launch.env" <<EOF
MASTER_HOST=$MASTER_HOST
QMASTER_PORT=$QMASTER_PORT
EXECD_PORT=$EXECD_PORT
SUBMIT_USER=$TEST_USER
EOF
CONFIG_HASH="$(cd "$NEW" && cat exechost pe queue global.edits sched.edits launch.env | sha256sum | cut -d' ' -f1)"

# ---- outputs ---------------------------------------------------------------------------------------
SSH_JSON=null
SSH_ENV=""
probe_ssh() { # the Slurm test cluster's login sshd, if it runs and lets the test user run qstat
  local env_file="$SLURM_STATE_DIR/env.sh" out
  SSH_JSON=null; SSH_ENV=""
  [[ -r "$env_file" ]] || { log "no Slurm test cluster state at $SLURM_STATE_DIR: no ssh access reported (start dev/slurm/up.sh for it)"; return 0; }
  # read its settings in a subshell (do not let it change ours)
  local settings
  settings="$(bash -c 'source "$1" >/dev/null 2>&1 && printf "%s\n" "$PWLAB_SLURM_SSH_HOST" "$PWLAB_SLURM_SSH_PORT" "$PWLAB_SLURM_USER" "$PWLAB_SLURM_SSH_KEY" "$PWLAB_SLURM_KNOWN_HOSTS" "$PWLAB_SLURM_STATE"' _ "$env_file")" || return 0
  local h p u k kh st; { read -r h; read -r p; read -r u; read -r k; read -r kh; read -r st; } <<<"$settings"
  if [[ "$u" != "$TEST_USER" ]]; then log "the Slurm cluster's ssh user is '$u', not '$TEST_USER': no ssh access reported"; return 0; fi
  [[ -n "$h" && -n "$p" && -r "$k" && -r "$kh" ]] || return 0
  port_in_use "$p" || { log "the Slurm cluster's sshd ($h:$p) is not running: no ssh access reported"; return 0; }
  # plain qstat (the Debian wrappers find SGE_ROOT/SGE_CELL themselves) and with explicit env
  if ! out="$(timeout 20 ssh -i "$k" -p "$p" -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$kh" \
      -o ConnectTimeout=5 "$u@$h" "env SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL SGE_QMASTER_PORT=$QMASTER_PORT qstat -u $TEST_USER >/dev/null && qstat -xml -u $TEST_USER >/dev/null && echo qstat-ok" 2>&1)" \
      || [[ "$out" != *qstat-ok* ]]; then
    log "warning: ssh $u@$h:$p works? 'qstat' over it failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
    return 0
  fi
  # shellcheck disable=SC2016  # $names are jq variables
  SSH_JSON="$(jq -n --arg host "$h" --argjson port "$p" --arg user "$u" --arg key "$k" --arg known_hosts "$kh" \
    --arg slurm_state "$st" --arg sge_root "$SGE_ROOT" --arg sge_cell "$SGE_CELL" --arg qmaster_port "$QMASTER_PORT" '{
      host: $host, port: $port, username: $user, key_file: $key, public_key_file: "\($key).pub",
      known_hosts: $known_hosts, provided_by: "dev/slurm (the Slurm test cluster'"'"'s login sshd)",
      slurm_state_dir: $slurm_state, sets_sge_env: false,
      env_needed: {SGE_ROOT: $sge_root, SGE_CELL: $sge_cell, SGE_QMASTER_PORT: $qmaster_port},
      sftp: true
    }')"
  SSH_ENV="export PWLAB_SGE_SSH_HOST='$h'
export PWLAB_SGE_SSH_PORT='$p'
export PWLAB_SGE_SSH_KEY='$k'
export PWLAB_SGE_KNOWN_HOSTS='$kh'
# pwlab_sge_ssh [cmd...]: run a command on the login node as $TEST_USER, with the SGE environment
pwlab_sge_ssh() { ssh -i '$k' -p '$p' -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='$kh' '$u@$h' \"SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL SGE_QMASTER_PORT=$QMASTER_PORT SGE_EXECD_PORT=$EXECD_PORT; export SGE_ROOT SGE_CELL SGE_QMASTER_PORT SGE_EXECD_PORT; \$*\"; }"
}

h_rt_seconds() {
  [[ "$H_RT" == INFINITY ]] && { echo null; return; }
  local IFS=: parts s=0 x; read -ra parts <<<"$H_RT"
  for x in "${parts[@]}"; do s=$((s * 60 + 10#$x)); done
  echo "$s"
}

write_outputs() {
  local cpus; cpus="$(nproc 2>/dev/null || echo 1)"
  cat >"$STATE/env.sh.tmp" <<ENV
# Generated by dev/sge/up.sh. Source it:  . $STATE/env.sh
export SGE_ROOT='$SGE_ROOT'
export SGE_CELL='$SGE_CELL'
export SGE_QMASTER_PORT='$QMASTER_PORT'
export SGE_EXECD_PORT='$EXECD_PORT'
export PWLAB_SGE_STATE='$STATE'
export PWLAB_SGE_USER='$TEST_USER'
export PWLAB_SGE_QMASTER_PORT='$QMASTER_PORT'
export PWLAB_SGE_EXECD_PORT='$EXECD_PORT'
export PWLAB_SGE_QUEUE='$QUEUE'
export PWLAB_SGE_PE='$PE'
export PWLAB_SGE_SCRATCH='$SCRATCH'
export PWLAB_SGE_MASTER_HOST='$MASTER_HOST'
# pwlab_sge_as_user cmd...: run a command locally as $TEST_USER (root only), e.g. pwlab_sge_as_user qsub -terse ...
pwlab_sge_as_user() { runuser -u '$TEST_USER' -- env SGE_ROOT='$SGE_ROOT' SGE_CELL='$SGE_CELL' SGE_QMASTER_PORT='$QMASTER_PORT' SGE_EXECD_PORT='$EXECD_PORT' HOME='$TEST_HOME' USER='$TEST_USER' LOGNAME='$TEST_USER' "\$@"; }
$SSH_ENV
ENV
  mv "$STATE/env.sh.tmp" "$STATE/env.sh"
  # shellcheck disable=SC2016  # $names are jq variables
  write_json "$STATE/cluster.json" \
    --arg version "$SGE_VERSION" --arg state "$STATE" --arg sge_root "$SGE_ROOT" --arg sge_cell "$SGE_CELL" \
    --arg qmaster_port "$QMASTER_PORT" --arg execd_port "$EXECD_PORT" \
    --arg host "$MASTER_HOST" --arg address "$HOST_IP" --arg user "$TEST_USER" --argjson uid "$TEST_UID" \
    --arg home "$TEST_HOME" --arg scratch "$SCRATCH" --argjson root_submit "$(json_bool "$ROOT_SUBMIT")" \
    --argjson min_uid "$MIN_ID" --arg queue "$QUEUE" --argjson slots "$SLOTS" --arg pe "$PE" \
    --argjson pe_slots "$PE_SLOTS" --arg h_rt "$H_RT" --argjson h_rt_seconds "$(h_rt_seconds)" \
    --argjson cpus "$cpus" --arg accounting "$ACCOUNTING" --argjson ssh "$SSH_JSON" --arg spool "$SPOOL" \
    --arg log "$LOG" --arg qmaster_spool "$QMASTER_SPOOL" --arg execd_spool "$(execd_host_spool)" \
    --arg qmaster_pidfile "$QMASTER_PIDFILE" --arg execd_pidfiles "$EXECD_PIDFILE_GLOB" '{
      name: "pwlab-sge", kind: "sge", sge_version: $version, state_dir: $state,
      sge_root: $sge_root, sge_cell: $sge_cell,
      env: {SGE_ROOT: $sge_root, SGE_CELL: $sge_cell, SGE_QMASTER_PORT: $qmaster_port,
            SGE_EXECD_PORT: $execd_port},
      bin_dir: "/usr/bin",
      qmaster: {host: $host, address: $address, port: ($qmaster_port | tonumber)},
      qmaster_host: $host,
      execd_port: ($execd_port | tonumber),
      user: $user, user_uid: $uid, user_home: $home, scratch_dir: $scratch,
      root_can_submit: $root_submit, min_uid: $min_uid,
      default_queue: $queue, queue_names: [$queue],
      queues: {($queue): {hosts: [$host], slots: $slots, pe_list: [$pe], h_rt: $h_rt,
                          h_rt_seconds: $h_rt_seconds, qtype: "BATCH INTERACTIVE"}},
      pe_names: [$pe],
      pes: {($pe): {slots: $pe_slots, allocation_rule: "$pe_slots", control_slaves: true,
                    queues: [$queue]}},
      slots: $slots,
      hosts: {($host): {slots: $slots, cpus: $cpus}},
      scheduler: {schedule_interval: "0:0:1", flush_submit_sec: 1, flush_finish_sec: 1,
                  schedd_job_info: true, accounting_flush_time: "00:00:01"},
      accounting_file: $accounting,
      history_command: ["qacct", "-j"],
      submit_command: ["qsub", "-terse"],
      ssh: $ssh,
      spool_dir: $spool,
      logs: {dir: $log, qmaster: "\($qmaster_spool)/messages", execd: "\($execd_spool)/messages",
             qmaster_start: "\($log)/qmaster.out", execd_start: "\($log)/execd.out"},
      pid_files: {qmaster: $qmaster_pidfile, execd: $execd_pidfiles}
    }'
  chmod 644 "$STATE/env.sh" "$STATE/cluster.json"
  users_add
}

# ---- already running? -------------------------------------------------------------------------------
if ((NEED_RESTART == 0)) && [[ "$(cat "$CONFIG_STAMP" 2>/dev/null)" == "$CONFIG_HASH" ]] \
   && bash "$SGE_DEV_DIR/check.sh" --quiet --no-ssh; then
  rm -rf "$NEW"
  probe_ssh
  write_outputs
  log "already up and healthy (state: $STATE) -- $((SECONDS - T0)) s"
  echo "$STATE/cluster.json"
  exit 0
fi

# ---- (re)start ---------------------------------------------------------------------------------------
STARTED=()
fail() { # message, log files to show
  local msg="$1"; shift
  printf '[sge-dev] ERROR: %s\n' "$msg" >&2
  print_log_tails "$@"
  printf '[sge-dev] logs: %s/, %s/messages, %s/messages\n' "$LOG" "$QMASTER_SPOOL" "$(execd_host_spool)" >&2
  if [[ "$KEEP_ON_FAILURE" != 1 ]] && ((${#STARTED[@]})); then
    log "stopping what this run started (set PWLAB_SGE_KEEP_ON_FAILURE=1 to keep it for debugging)"
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_daemon "${STARTED[$i]}" >&2 || true; done
  fi
  exit 1
}
# shellcheck disable=SC2012
tmp_messages() { ls -t /tmp/"$1"_messages* 2>/dev/null | head -n 1 || true; }  # where SGE logs before its spool is usable

qmaster_ok() { sge_env timeout 10 qconf -sh >/dev/null 2>&1; }

# A qmaster whose act_qmaster/host_aliases changed must be restarted; a restarted qmaster needs a
# restarted execd (otherwise the queue sits in state "u" for ~20 s).
if ((NEED_RESTART)) && daemon_pid qmaster >/dev/null; then
  log "host name files changed: restarting sge_qmaster and sge_execd"
  stop_daemon execd; stop_daemon qmaster 30
fi
if daemon_pid qmaster >/dev/null && ! qmaster_ok; then
  log "sge_qmaster (pid $(daemon_pid qmaster)) does not answer: restarting it"
  stop_daemon execd; stop_daemon qmaster 30
fi

# the daemon's own log (in its spool dir, once it has one)
qmaster_log() { echo "$QMASTER_SPOOL/messages"; }
execd_log() { echo "$(execd_host_spool)/messages"; }
# start_daemon qmaster|execd PORT PORT_SETTING PID_FILES: start sge_<name> (it daemonizes; the
# parent returns once the daemon is initialized, or failed) and wait for its pid file.
start_daemon() {
  local name="$1" port="$2" setting="$3" pidfiles="$4" deadline
  ! port_in_use "$port" || fail "step 'start sge_$name': port $port is in use by another program (ss -ltnp 'sport = :$port'); choose another with $setting=<port>"
  log "starting sge_$name"
  # shellcheck disable=SC2154  # sge_vars: set by lib.sh (set_sge_vars), which shellcheck misses
  if ! (cd / && exec setsid timeout 120 env -i PATH="$SYS_PATH" LANG=C.UTF-8 HOME=/root "${sge_vars[@]}" \
        "/usr/sbin/sge_$name" </dev/null >>"$LOG/$name.out" 2>&1 9>&-); then
    fail "step 'start sge_$name': it exited with an error" "$LOG/$name.out" "$("${name}_log")" "$(tmp_messages "$name")"
  fi
  deadline=$((SECONDS + START_TIMEOUT))
  until daemon_pid "$name" >/dev/null; do
    ((SECONDS < deadline)) || fail "step 'start sge_$name': no live sge_$name in $pidfiles after ${START_TIMEOUT}s" "$LOG/$name.out" "$("${name}_log")" "$(tmp_messages "$name")"
    sleep 0.1
  done
  STARTED+=("$name")
}

qmaster_started=0
if ! daemon_pid qmaster >/dev/null; then
  if daemon_pid execd >/dev/null; then stop_daemon execd; fi
  rm -f "$QMASTER_PIDFILE" "$QMASTER_SPOOL/lock"
  start_daemon qmaster "$QMASTER_PORT" PWLAB_SGE_QMASTER_PORT "$QMASTER_PIDFILE"
  qmaster_started=1
fi
deadline=$((SECONDS + START_TIMEOUT))
until qmaster_ok; do
  daemon_pid qmaster >/dev/null || fail "step 'wait for sge_qmaster': it exited" "$LOG/qmaster.out" "$QMASTER_SPOOL/messages" "$(tmp_messages qmaster)"
  ((SECONDS < deadline)) || fail "step 'wait for sge_qmaster': 'qconf -sh' did not answer within ${START_TIMEOUT}s" "$QMASTER_SPOOL/messages"
  sleep 0.2
done

# ---- apply the configuration ---------------------------------------------------------------------------
qc() { # qconf ARGS... ; fails the run with qconf's output
  local out
  if ! out="$(sge_env timeout 30 qconf "$@" 2>&1)"; then
    fail "step 'configure': qconf $* failed: $out" "$QMASTER_SPOOL/messages"
  fi
  printf '%s\n' "$out" >>"$LOG/configure.log"
}
# qconf wraps long values onto continuation lines ending in "\\": join them
join_continued() { awk '{ if (sub(/\\$/, "")) { buf = buf $0; next } print buf $0; buf = "" } END { if (buf != "") print buf }'; }
apply_edits() { # file-with-current-config edits-file: replace "key value" lines (keys must exist)
  local conf="$1" edits="$2" key val
  while read -r key val; do
    [[ -n "$key" ]] || continue
    grep -q "^${key}[[:space:]]" "$conf" || fail "step 'configure': '$key' not found in $(basename "$conf") configuration"
    awk -v k="$key" -v v="$val" '$1 == k { printf "%-32s %s\n", k, v; next } { print }' "$conf" >"$conf.tmp" && mv "$conf.tmp" "$conf"
  done <"$edits"
}
: >"$LOG/configure.log"
log "configuring: submit/admin host $MASTER_HOST, exec host, global config, scheduler, pe $PE, queue $QUEUE ($SLOTS slots, h_rt $H_RT)"
adminhosts="$(sge_env qconf -sh 2>/dev/null || true)"
grep -qxF "$MASTER_HOST" <<<"$adminhosts" || qc -ah "$MASTER_HOST"
submithosts="$(sge_env qconf -ss 2>/dev/null || true)"
grep -qxF "$MASTER_HOST" <<<"$submithosts" || qc -as "$MASTER_HOST"
if sge_env qconf -se "$MASTER_HOST" >/dev/null 2>&1; then qc -Me "$NEW/exechost"; else qc -Ae "$NEW/exechost"; fi
gdir="$NEW/g"; mkdir -p "$gdir"
sge_env qconf -sconf global 2>"$LOG/configure.err" | join_continued >"$gdir/global" || fail "step 'configure': qconf -sconf global failed" "$LOG/configure.err"
apply_edits "$gdir/global" "$NEW/global.edits"
qc -Mconf "$gdir/global"          # the file must be named "global"
sge_env qconf -ssconf 2>"$LOG/configure.err" | join_continued >"$NEW/sched_conf" || fail "step 'configure': qconf -ssconf failed" "$LOG/configure.err"
apply_edits "$NEW/sched_conf" "$NEW/sched.edits"
qc -Msconf "$NEW/sched_conf"
if sge_env qconf -sp "$PE" >/dev/null 2>&1; then qc -Mp "$NEW/pe"; else qc -Ap "$NEW/pe"; fi
if sge_env qconf -sq "$QUEUE" >/dev/null 2>&1; then qc -Mq "$NEW/queue"; else qc -Aq "$NEW/queue"; fi
rm -f "$LOG/configure.err"
mkdir -p "$CONF_DIR"
for f in exechost pe queue global.edits sched.edits launch.env; do mv "$NEW/$f" "$CONF_DIR/$f"; done
rm -rf "$NEW"
printf '%s\n' "$CONFIG_HASH" >"$CONFIG_STAMP"

# ---- execd ------------------------------------------------------------------------------------------------
if ((qmaster_started)) && daemon_pid execd >/dev/null; then
  log "restarting sge_execd (the qmaster was restarted)"
  stop_daemon execd
fi
if ! daemon_pid execd >/dev/null; then
  rm -f "$EXECD_SPOOL"/*/execd.pid
  start_daemon execd "$EXECD_PORT" PWLAB_SGE_EXECD_PORT "$EXECD_PIDFILE_GLOB"
fi
# queue instance usable: known, not unknown (u), not in error (E), not disabled (d)
deadline=$((SECONDS + START_TIMEOUT)); cleared=0
while true; do
  st="$(qi_state)"
  if [[ "$st" != missing && "$st" != *u* && "$st" != *E* && "$st" != *d* ]]; then break; fi
  if [[ "$st" == *E* ]] && ((cleared == 0)); then sge_env qmod -c "$QUEUE" >/dev/null 2>&1 || true; cleared=1; fi
  if [[ "$st" == *d* ]] && ((cleared < 2)); then sge_env qmod -e "$QUEUE" >/dev/null 2>&1 || true; cleared=2; fi
  daemon_pid execd >/dev/null || fail "step 'wait for sge_execd': it exited" "$LOG/execd.out" "$(execd_host_spool)/messages" "$(tmp_messages execd)"
  ((SECONDS < deadline)) || fail "step 'wait for sge_execd': queue instance $QUEUE@$MASTER_HOST is '${st}' after ${START_TIMEOUT}s (want no state letters)" "$(execd_host_spool)/messages" "$QMASTER_SPOOL/messages"
  sleep 0.2
done

# ---- smoke test: a job as the test user, through to accounting ---------------------------------------------
active_jobs="$(sge_env qstat -u '*' 2>/dev/null | awk 'NR > 2' | wc -l)"
if [[ "$SMOKE" == 1 ]] && ((active_jobs > 0)); then
  log "skipping the smoke job: $active_jobs job(s) already queued or running"
elif [[ "$SMOKE" == 1 ]]; then
  jid="$(cd "$SCRATCH" && printf '#!/bin/sh\necho smoke-ok\n' | as_user timeout 20 qsub -terse -N pwlab-smoke -q "$QUEUE" -j y -o /dev/null 2>"$LOG/smoke.err")" \
    || fail "step 'smoke job': qsub as $TEST_USER failed: $(cat "$LOG/smoke.err")" "$QMASTER_SPOOL/messages"
  deadline=$((SECONDS + START_TIMEOUT))
  until acct="$(as_user qacct -j "$jid" 2>/dev/null)" && grep -q '^exit_status' <<<"$acct"; do
    ((SECONDS < deadline)) || fail "step 'smoke job': job $jid of $TEST_USER not in qacct after ${START_TIMEOUT}s ($(sge_env qstat -u '*' 2>&1 | tail -n +3 | tr -s ' ' | tr '\n' ';'))" "$(execd_host_spool)/messages" "$QMASTER_SPOOL/messages"
    sleep 0.2
  done
  es="$(awk '$1 == "exit_status" {print $2}' <<<"$acct")"; fl="$(awk '$1 == "failed" {print $2}' <<<"$acct")"
  [[ "$es" == 0 && "$fl" == 0 ]] || fail "step 'smoke job': job $jid ended with failed=$fl exit_status=$es" "$(execd_host_spool)/messages"
  rm -f "$LOG/smoke.err"
fi

probe_ssh
write_outputs
log "cluster up in $((SECONDS - T0)) s: Son of Grid Engine $SGE_VERSION, queue $QUEUE@$MASTER_HOST ($SLOTS slots, pe $PE, h_rt $H_RT), qmaster port $QMASTER_PORT$([[ "$SSH_JSON" != null ]] && echo ", ssh via the Slurm test cluster's sshd")"
log "use it:  . $STATE/env.sh   (or read $STATE/cluster.json)"
echo "$STATE/cluster.json"
