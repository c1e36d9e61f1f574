#!/usr/bin/env bash
# Start (or confirm running) the single-machine development Slurm cluster. Idempotent.
#
#   dev/slurm/up.sh            # installs packages if missing (root, Debian/apt), starts, waits, smoke-tests
#
# Output: <state>/cluster.json (machine-readable) and <state>/env.sh (source it in a shell).
# Exit codes: 0 up and healthy; 77 this machine cannot run it (not root / no apt and no Slurm);
#             1 failed to start (the message names the log file to read).
# See dev/slurm/README.md for the settings (PWLAB_SLURM_* env vars).
set -Eeuo pipefail
umask 022
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
report_errors

T0=$SECONDS
KEEP_ON_FAILURE="${PWLAB_SLURM_KEEP_ON_FAILURE:-0}"

# ---- preflight ---------------------------------------------------------------------------------
require_linux_root "it installs packages, runs slurmd as root and adds a test user"
require_port CTLD_PORT SLURMD_PORT REST_PORT SSH_PORT DBD_PORT
require_user_name "$TEST_USER" PWLAB_SLURM_USER

with_lock "$STATE/.lock"   # serialize concurrent up.sh/down.sh (and apt) runs

# ---- packages ----------------------------------------------------------------------------------
PKGS=(slurm-wlm slurmctld slurmd slurm-client slurmrestd slurm-wlm-basic-plugins slurm-wlm-jwt-plugin
      slurmdbd mariadb-server munge openssh-server curl jq)
need_cmds=(munged munge unmunge slurmctld slurmd slurmrestd slurmdbd sbatch srun squeue sinfo scontrol sacct sacctmgr
           mariadbd mariadb-install-db mariadb /usr/sbin/sshd ssh ssh-keygen curl setpriv flock jq)
install_packages "Slurm 22.05" "install Debian 12's slurm-wlm 22.05, slurmrestd, munge, openssh-server or use a Debian 12 machine" \
  "${PKGS[@]}" -- "${need_cmds[@]}"
SLURM_VERSION="$(slurmctld -V 2>/dev/null | awk '{print $2}')"
PLUGIN_DIR=""
for d in /usr/lib/x86_64-linux-gnu/slurm-wlm /usr/lib/*/slurm-wlm /usr/lib/slurm /usr/lib64/slurm /usr/local/lib/slurm; do
  [[ -e "$d/auth_jwt.so" ]] && { PLUGIN_DIR="$d"; break; }
done
[[ -n "$PLUGIN_DIR" ]] || die "Slurm's auth/jwt plugin (auth_jwt.so) not found; install slurm-wlm-jwt-plugin"
if [[ -n "${PWLAB_SLURM_REST_PLUGINS:-}" ]]; then
  REST_PLUGINS="$PWLAB_SLURM_REST_PLUGINS"
else
  # the openapi/vX plugins (not the openapi/dbvX ones: those need slurmdbd)
  # shellcheck disable=SC2012  # plugin file names are plain (openapi_v0.0.38.so)
  REST_PLUGINS="$(cd "$PLUGIN_DIR" && ls openapi_v*.so 2>/dev/null | sed -e 's/\.so$//' -e 's/^openapi_/openapi\//' -e 's/_/./g' | sort -rV | paste -sd, -)"
  [[ -n "$REST_PLUGINS" ]] || REST_PLUGINS="openapi/v0.0.38,openapi/v0.0.37,openapi/v0.0.36"
fi

# ---- users -------------------------------------------------------------------------------------
getent passwd munge >/dev/null || die "user 'munge' missing (the munge package creates it)"
getent passwd mysql >/dev/null || die "user 'mysql' missing (the mariadb-server package creates it)"
if ! getent passwd slurm >/dev/null; then
  log "creating system user slurm"
  useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin slurm
fi
if ! getent passwd "$TEST_USER" >/dev/null; then
  log "creating test user $TEST_USER (ssh login user for the cluster)"
  useradd --create-home --user-group --shell /bin/bash "$TEST_USER"
fi
# sshd without PAM refuses accounts whose password field starts with '!' (locked); '*' = no password
[[ "$(getent shadow "$TEST_USER" | cut -d: -f2)" == '*' ]] || usermod -p '*' "$TEST_USER"
TEST_HOME="$(getent passwd "$TEST_USER" | cut -d: -f6)"
[[ -d "$TEST_HOME" ]] || { mkdir -p "$TEST_HOME"; chown "$TEST_USER:" "$TEST_HOME"; }

# ---- state directory: dirs, keys, fake devices --------------------------------------------------
mkdir -p "$STATE"/{etc,ctld,spool,log,run,pids,fakedev} "$MUNGE_DIR" "$SSH_DIR" "$SCRATCH" "$DB_DIR/tmp"
for n in "${ALL_NODES[@]}"; do mkdir -p "$STATE/spool/$n"; done
chmod 755 "$STATE" "$STATE/etc"
chown slurm:slurm "$STATE/ctld" "$LOG" "$STATE/run"
chmod 1777 "$SCRATCH"
chown munge:munge "$MUNGE_DIR"; chmod 755 "$MUNGE_DIR"
chown mysql:mysql "$DB_DIR" "$DB_DIR/tmp"; chmod 755 "$DB_DIR"; chmod 700 "$DB_DIR/tmp"   # socket: 0777
if [[ ! -d "$DB_DATA/mysql" ]]; then
  log "initializing the MariaDB data directory $DB_DATA"
  rm -rf "$DB_DATA"
  mariadb-install-db --no-defaults --datadir="$DB_DATA" --user=mysql --auth-root-authentication-method=socket \
    --skip-test-db >"$LOG/mariadb-install-db.out" 2>&1 \
    || { tail -n 25 "$LOG/mariadb-install-db.out" >&2; die "mariadb-install-db failed (log: $LOG/mariadb-install-db.out)"; }
fi
chmod 700 "$PIDS"
if [[ ! -s "$MUNGE_KEY" ]]; then
  log "generating munge key"
  (umask 077; head -c 1024 /dev/urandom >"$MUNGE_KEY.tmp") && mv "$MUNGE_KEY.tmp" "$MUNGE_KEY"
fi
chown munge:munge "$MUNGE_KEY"; chmod 400 "$MUNGE_KEY"
if [[ ! -s "$JWT_KEY" ]]; then
  log "generating JWT key"
  (umask 077; head -c 32 /dev/urandom >"$JWT_KEY.tmp") && mv "$JWT_KEY.tmp" "$JWT_KEY"
fi
chown slurm:slurm "$JWT_KEY"; chmod 600 "$JWT_KEY"
for i in 0 1; do
  f="$STATE/fakedev/gpu$i"
  if [[ ! -c "$f" ]]; then rm -f "$f"; mknod -m 666 "$f" c 1 3; fi   # same device as /dev/null
done
if [[ ! -s "$SSH_DIR/ssh_host_ed25519_key" ]]; then
  log "generating sshd host key"
  ssh-keygen -q -t ed25519 -N '' -C "pwlab-slurm-dev-host" -f "$SSH_DIR/ssh_host_ed25519_key"
fi
if [[ ! -s "$CLIENT_KEY" ]]; then
  log "generating client key pair for $TEST_USER"
  ssh-keygen -q -t ed25519 -N '' -C "$TEST_USER@pwlab-slurm-dev" -f "$CLIENT_KEY"
fi
chmod 600 "$SSH_DIR/ssh_host_ed25519_key" "$CLIENT_KEY"
install -m 644 "$CLIENT_KEY.pub" "$SSH_DIR/authorized_keys"
{
  hostkey="$(cut -d' ' -f1,2 "$SSH_DIR/ssh_host_ed25519_key.pub")"
  if [[ "$SSH_PORT" == 22 ]]; then
    echo "127.0.0.1 $hostkey"; echo "localhost $hostkey"
  else
    echo "[127.0.0.1]:$SSH_PORT $hostkey"; echo "[localhost]:$SSH_PORT $hostkey"
  fi
} >"$KNOWN_HOSTS.tmp" && mv "$KNOWN_HOSTS.tmp" "$KNOWN_HOSTS" && chmod 644 "$KNOWN_HOSTS"
touch "$JOBCOMP"; chown slurm:slurm "$JOBCOMP"

# ---- configuration (rendered fresh, compared with what the running cluster uses) ---------------
CTLD_HOST="$(hostname -s)"
if [[ "$NODE_HOSTNAMES" == 1 ]] && ! unshare --uts true 2>/dev/null; then
  log "warning: cannot create UTS namespaces here; all nodes will report the host's hostname"
  NODE_HOSTNAMES=0
fi
node_host() { if [[ "$NODE_HOSTNAMES" == 1 ]]; then echo "$1"; else echo "$CTLD_HOST"; fi; }
node_port() { local i; for i in "${!ALL_NODES[@]}"; do if [[ "${ALL_NODES[$i]}" == "$1" ]]; then echo $((SLURMD_PORT + i)); fi; done; }

NEW="$STATE/etc/.new"; rm -rf "$NEW"; mkdir -p "$NEW"
cat >"$NEW/slurm.conf" <<CONF
# Generated by dev/slurm/up.sh -- edits are overwritten. Development/test cluster on one machine.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$CTLD_HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
PluginDir=$PLUGIN_DIR
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageEnforce=associations,limits,qos
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=2
MinJobAge=${PWLAB_SLURM_MIN_JOB_AGE:-300}
KillWait=5
InactiveLimit=0
GresTypes=gpu
NodeName=$MAIN_NODE NodeHostname=$(node_host "$MAIN_NODE") NodeAddr=127.0.0.1 Port=$(node_port "$MAIN_NODE") Sockets=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=8000 Gres=gpu:tesla:2 State=UNKNOWN
$(for n in "${EXTRA_NODES[@]}"; do
  echo "NodeName=$n NodeHostname=$(node_host "$n") NodeAddr=127.0.0.1 Port=$(node_port "$n") Sockets=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=2000 State=UNKNOWN"
done)
PartitionName=debug Nodes=$MAIN_NODE Default=YES MaxTime=30 DefaultTime=10 State=UP
PartitionName=gpu Nodes=$MAIN_NODE MaxTime=60 DefaultTime=10 State=UP
PartitionName=multi Nodes=$(IFS=,; echo "${EXTRA_NODES[*]}") MaxTime=60 DefaultTime=10 State=UP DenyAccounts=guest
PartitionName=proj Nodes=$(IFS=,; echo "${EXTRA_NODES[*]}") MaxTime=20 DefaultTime=10 State=UP AllowAccounts=physics,chem AllowQos=normal,high
CONF
cat >"$NEW/slurmdbd.conf" <<CONF
# Generated by dev/slurm/up.sh -- edits are overwritten. MariaDB over its unix socket only
# (slurmdbd is started with MYSQL_UNIX_PORT=$DB_SOCKET; StorageUser authenticates by unix_socket).
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$CTLD_HOST
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=slurm
PluginDir=$PLUGIN_DIR
LogFile=$LOG/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StorageLoc=$DB_NAME
CONF
cat >"$NEW/gres.conf" <<CONF
# Generated by dev/slurm/up.sh. Fake GPUs: character devices 1:3 (like /dev/null).
AutoDetect=off
NodeName=$MAIN_NODE Name=gpu Type=tesla File=$STATE/fakedev/gpu[0-1]
CONF
cat >"$NEW/sshd_config" <<CONF
# Generated by dev/slurm/up.sh: the cluster's "login node" on loopback.
ListenAddress 127.0.0.1:$SSH_PORT
HostKey $SSH_DIR/ssh_host_ed25519_key
PidFile $STATE/run/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
AllowUsers $TEST_USER
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
AcceptEnv LANG LC_*
MaxSessions 100
MaxStartups 100:30:200
AllowTcpForwarding yes
Subsystem sftp internal-sftp
$([[ "$SSH_SETENV" == 1 ]] && echo "SetEnv SLURM_CONF=$CONF")
CONF
# MariaDB: no option files, no TCP port; the InnoDB sizes are what slurmdbd checks for (at least
# half of its recommendations; memory is touched only as the tiny database needs it)
MARIADB_ARGS=(--no-defaults --user=mysql --datadir="$DB_DATA" --socket="$DB_SOCKET" --pid-file="$DB_DIR/mariadbd.pid"
  --log-error="$LOG/mariadb.log" --tmpdir="$DB_DIR/tmp" --skip-networking --skip-name-resolve
  --innodb-buffer-pool-size=512M --innodb-log-file-size=64M --innodb-lock-wait-timeout=900 --performance-schema=OFF)
cat >"$NEW/launch.env" <<CONF
REST_PORT=$REST_PORT
REST_PLUGINS=$REST_PLUGINS
NODE_HOSTNAMES=$NODE_HOSTNAMES
MARIADB_ARGS=${MARIADB_ARGS[*]}
CONF

changed=0
for f in slurm.conf slurmdbd.conf gres.conf sshd_config launch.env; do
  cmp -s "$NEW/$f" "$STATE/etc/$f" || changed=1
done

# ---- already running? ---------------------------------------------------------------------------
write_outputs() {
  local token_cmd="SLURM_CONF=$CONF scontrol token username=$TEST_USER lifespan=3600"
  cat >"$STATE/env.sh.tmp" <<ENV
# Generated by dev/slurm/up.sh. Source it:  . $STATE/env.sh
export SLURM_CONF='$CONF'
export PWLAB_SLURM_STATE='$STATE'
export PWLAB_SLURM_CLUSTER='$CLUSTER_NAME'
export PWLAB_SLURM_CTLD_PORT='$CTLD_PORT'
export PWLAB_SLURM_SLURMD_PORT='$SLURMD_PORT'
export PWLAB_SLURM_REST_PORT='$REST_PORT'
export PWLAB_SLURM_DBD_PORT='$DBD_PORT'
export PWLAB_SLURM_REST_URL='http://127.0.0.1:$REST_PORT'
export PWLAB_SLURM_REST_API='$REST_API'
export PWLAB_SLURM_SSH_HOST='127.0.0.1'
export PWLAB_SLURM_SSH_PORT='$SSH_PORT'
export PWLAB_SLURM_USER='$TEST_USER'
export PWLAB_SLURM_SSH_KEY='$CLIENT_KEY'
export PWLAB_SLURM_KNOWN_HOSTS='$KNOWN_HOSTS'
export PWLAB_SLURM_JOBCOMP='$JOBCOMP'
export PWLAB_SLURM_SCRATCH='$SCRATCH'
# pwlab_slurm_token [user] [lifespan_s]: print a JWT for slurmrestd (run as root or SlurmUser)
pwlab_slurm_token() { scontrol token "username=\${1:-$TEST_USER}" "lifespan=\${2:-3600}" | sed -n 's/^SLURM_JWT=//p'; }
# pwlab_slurm_ssh [cmd...]: run a command on the login node as $TEST_USER
pwlab_slurm_ssh() { ssh -i '$CLIENT_KEY' -p '$SSH_PORT' -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='$KNOWN_HOSTS' '$TEST_USER@127.0.0.1' "\$@"; }
ENV
  mv "$STATE/env.sh.tmp" "$STATE/env.sh"
  local node_ports=() n
  for n in "${ALL_NODES[@]}"; do node_ports+=("$n=$(node_port "$n")"); done
  # shellcheck disable=SC2016  # $names are jq variables
  write_json "$STATE/cluster.json" \
    --arg name "$CLUSTER_NAME" --arg version "$SLURM_VERSION" --arg state "$STATE" --arg conf "$CONF" \
    --arg ctld_host "$CTLD_HOST" --argjson ctld_port "$CTLD_PORT" \
    --arg user "$TEST_USER" --arg home "$TEST_HOME" --arg scratch "$SCRATCH" \
    --arg main_node "$MAIN_NODE" --argjson extra_nodes "$(json_strings "${EXTRA_NODES[@]}")" \
    --argjson node_ports "$(json_strings "${node_ports[@]}")" \
    --argjson node_hostnames "$(json_bool "$NODE_HOSTNAMES")" --arg jobcomp "$JOBCOMP" \
    --argjson dbd_port "$DBD_PORT" --argjson accounts "$(json_strings "${ACCOUNTS[@]}" "$ACCOUNT_TINY")" \
    --argjson qos "$(json_strings "${QOS_GRANTED[@]}" "$QOS_ONE_JOB")" --arg default_qos "${QOS_GRANTED[0]}" \
    --arg restricted_qos "$QOS_RESTRICTED" --arg qos_one_job "$QOS_ONE_JOB" --arg account_tiny "$ACCOUNT_TINY" \
    --arg db_socket "$DB_SOCKET" --arg munge_socket "$MUNGE_SOCKET" \
    --argjson rest_port "$REST_PORT" --arg rest_api "$REST_API" \
    --argjson rest_versions "$(read -ra v <<<"$REST_VERSIONS"; json_strings "${v[@]}")" \
    --argjson ssh_port "$SSH_PORT" --arg key "$CLIENT_KEY" --arg known_hosts "$KNOWN_HOSTS" \
    --arg host_key "$SSH_DIR/ssh_host_ed25519_key.pub" --argjson ssh_setenv "$(json_bool "$SSH_SETENV")" \
    --arg log "$LOG" --arg munge_log "$MUNGE_DIR/munged.log" --arg pids "$PIDS" --arg token_cmd "$token_cmd" \
    --arg default_account "${ACCOUNTS[0]}" '
    ($node_ports | map(split("=") | {(.[0]): (.[1] | tonumber)}) | add) as $port
    | {
      name: $name, kind: "slurm", slurm_version: $version, state_dir: $state, slurm_conf: $conf,
      env: {SLURM_CONF: $conf},
      controller: {host: $ctld_host, address: "127.0.0.1", port: $ctld_port},
      user: $user, user_home: $home, scratch_dir: $scratch,
      default_partition: "debug",
      partitions: {
        debug: {nodes: [$main_node], default: true, max_time_minutes: 30},
        gpu: {nodes: [$main_node], default: false, max_time_minutes: 60, gres: "gpu:tesla:2"},
        multi: {nodes: $extra_nodes, default: false, max_time_minutes: 60, deny_accounts: ["guest"]},
        proj: {nodes: $extra_nodes, default: false, max_time_minutes: 20, accounts: ["physics", "chem"],
               qos: ["normal", "high"]}
      },
      nodes: (
        {($main_node): {cpus: 8, memory_mb: 8000, gpus: 2, gpu_type: "tesla", port: $port[$main_node]}}
        + ($extra_nodes | map({(.): {cpus: 2, memory_mb: 2000, gpus: 0, port: $port[.]}}) | add)
      ),
      node_hostnames: $node_hostnames,
      jobcomp_file: $jobcomp,
      history_command: ["sacct", "-P"],
      jobcomp_history_command: ["sacct", "-c", "-P"],
      accounting: {
        storage: "slurmdbd", dbd_port: $dbd_port, enforce: ["associations", "limits", "qos"],
        accounts: $accounts, default_account: $default_account, users: [$user, "root"],
        qos: $qos, default_qos: $default_qos, restricted_qos: [$restricted_qos],
        limited_qos: {($qos_one_job): {max_jobs_per_user: 1}},
        limited_accounts: {($account_tiny): {grp_cpus: 2}},
        db_socket: $db_socket
      },
      munge_socket: $munge_socket,
      rest: {
        url: "http://127.0.0.1:\($rest_port)", host: "127.0.0.1", port: $rest_port,
        api_version: $rest_api, api_versions: $rest_versions, auth: "jwt",
        user_header: "X-SLURM-USER-NAME", token_header: "X-SLURM-USER-TOKEN",
        token_command: ["scontrol", "token", "username=\($user)", "lifespan=3600"],
        token_command_env: {SLURM_CONF: $conf}, token_output_prefix: "SLURM_JWT="
      },
      ssh: {
        host: "127.0.0.1", port: $ssh_port, username: $user, key_file: $key,
        public_key_file: "\($key).pub", known_hosts: $known_hosts, host_public_key_file: $host_key,
        sets_slurm_conf: $ssh_setenv, sftp: true
      },
      logs: {
        dir: $log, slurmctld: "\($log)/slurmctld.log", slurmd: "\($log)/slurmd-%n.log",
        slurmrestd: "\($log)/slurmrestd.out", sshd: "\($log)/sshd.log",
        slurmdbd: "\($log)/slurmdbd.log", mariadb: "\($log)/mariadb.log", munged: $munge_log
      },
      pids_dir: $pids,
      token_example: $token_cmd
    }'
  chmod 644 "$STATE/env.sh" "$STATE/cluster.json"
}

rest_versions() { # prints served /slurm/vX versions (highest first) using a fresh token
  local tok
  tok="$(slurm_env scontrol token username="$TEST_USER" lifespan=120 2>/dev/null | sed -n 's/^SLURM_JWT=//p')" || return 1
  [[ -n "$tok" ]] || return 1
  curl -sf --max-time 10 -H "X-SLURM-USER-NAME: $TEST_USER" -H "X-SLURM-USER-TOKEN: $tok" \
    "http://127.0.0.1:$REST_PORT/openapi/v3" | sed 's#\\/#/#g' | grep -o '"/slurm/v[0-9.]*/ping' | sed 's#"/slurm/##; s#/ping##' | sort -rVu
}

if ((changed == 0)) && bash "$SLURM_DEV_DIR/check.sh" --quiet; then
  REST_VERSIONS="$(rest_versions | paste -sd' ' -)"; REST_API="${REST_VERSIONS%% *}"
  write_outputs
  log "already up and healthy (state: $STATE) -- $((SECONDS - T0)) s"
  echo "$STATE/cluster.json"
  exit 0
fi

# ---- (re)start --------------------------------------------------------------------------------
# Configuration changed -> stop everything and start fresh. Otherwise start only the daemons that
# are not running (running jobs survive, e.g. after a test stopped slurmctld on purpose).
running=0
for name in $(daemon_names); do if pid_of "$name" >/dev/null; then running=1; fi; done
if ((running && changed)); then
  log "configuration changed: restarting the cluster"
  bash "$SLURM_DEV_DIR/down.sh" --no-lock
elif ((running)); then
  log "cluster partly down or unhealthy: starting what is missing"
fi
for f in slurm.conf slurmdbd.conf gres.conf sshd_config launch.env; do mv "$NEW/$f" "$STATE/etc/$f"; done
rmdir "$NEW"
chmod 644 "$STATE/etc/slurm.conf" "$STATE/etc/gres.conf" "$STATE/etc/sshd_config"
chown slurm:slurm "$STATE/etc/slurmdbd.conf"; chmod 600 "$STATE/etc/slurmdbd.conf"   # slurmdbd insists

to_start=()
for name in $(daemon_names); do if ! pid_of "$name" >/dev/null; then to_start+=("$name"); fi; done
starting() { [[ " ${to_start[*]} " == *" $1 "* ]]; }

# ports free? (only those of daemons about to start)
port_of() {
  case "$1" in
    slurmctld) echo "CTLD_PORT $CTLD_PORT" ;; slurmrestd) echo "REST_PORT $REST_PORT" ;;
    slurmdbd) echo "DBD_PORT $DBD_PORT" ;;
    sshd) echo "SSH_PORT $SSH_PORT" ;; slurmd-*) echo "SLURMD_PORT $(node_port "${1#slurmd-}")" ;;
  esac
}
for name in "${to_start[@]}"; do
  read -r var p < <(port_of "$name") || continue
  if port_in_use "$p"; then
    die "port $p (for $name) is already in use by another program; choose other ports with PWLAB_SLURM_$var=<port> (ss -ltnp 'sport = :$p' shows who holds it)"
  fi
done

STARTED=()
fail() { # message, log files to show
  local msg="$1"; shift
  printf '[slurm-dev] ERROR: %s\n' "$msg" >&2
  print_log_tails "$@"
  printf '[slurm-dev] all logs: %s/ and %s\n' "$LOG" "$MUNGE_DIR/munged.log" >&2
  if [[ "$KEEP_ON_FAILURE" != 1 ]]; then
    log "stopping what this run started (set PWLAB_SLURM_KEEP_ON_FAILURE=1 to keep it for debugging)"
    if ((${#STARTED[@]} == $(daemon_names | wc -l))); then
      bash "$SLURM_DEV_DIR/down.sh" --no-lock >&2 || true
    else
      local i
      for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_daemon "${STARTED[$i]}" >&2 || true; done
    fi
  fi
  exit 1
}

launch() { # name output-file command... : detached (own session), fd 9 (lock) closed, PID recorded
  local name="$1" out="$2"; shift 2
  ( exec setsid "$@" </dev/null >>"$out" 2>&1 9>&- ) &
  echo $! >"$PIDS/$name.pid"
  STARTED+=("$name")
}

wait_until() { # description timeout "daemon names to watch" command... ; on failure shows $WAIT_LOGS
  local desc="$1" t="$2" names="$3"; shift 3
  local deadline=$((SECONDS + t)) pid name
  while true; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    for name in $names; do
      pid="$(cat "$PIDS/$name.pid" 2>/dev/null || true)"
      if [[ -z "$pid" ]] || ! alive "$pid"; then
        fail "$name exited during startup (while waiting for $desc)" "${WAIT_LOGS[@]}"
      fi
    done
    ((SECONDS < deadline)) || fail "timed out after ${t}s waiting for $desc" "${WAIT_LOGS[@]}"
    sleep 0.1
  done
}

denv=(env -i PATH="$SYS_PATH" LANG=C.UTF-8 SLURM_CONF="$CONF")

# munged: own key, socket, pid, log, seed -- all in the state dir
WAIT_LOGS=("$MUNGE_DIR/munged.log" "$LOG/munged.out")
if starting munged; then
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  launch munged "$LOG/munged.out" "${denv[@]}" setpriv --reuid=munge --regid=munge --clear-groups \
    munged -F --key-file="$MUNGE_KEY" --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_DIR/munged.pid" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
fi
munge_ok() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }
wait_until "munged to answer on $MUNGE_SOCKET" 20 munged munge_ok

# MariaDB for slurmdbd: datadir, socket, pid and log in the state dir; no TCP port (--skip-networking)
WAIT_LOGS=("$LOG/mariadb.log" "$LOG/mariadb.out")
db_sql() { mariadb --no-defaults --socket="$DB_SOCKET" --user=root --batch --skip-column-names -e "$1"; }
if starting mariadb; then
  rm -f "$DB_SOCKET" "$DB_SOCKET.lock"
  launch mariadb "$LOG/mariadb.out" "${denv[@]}" mariadbd "${MARIADB_ARGS[@]}"
fi
wait_until "MariaDB to answer on $DB_SOCKET" 60 mariadb db_sql 'SELECT 1'
# slurmdbd (runs as SlurmUser=slurm) logs in as DB user slurm, authenticated by its unix user
db_sql "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED VIA unix_socket;
        GRANT ALL ON \`$DB_NAME\`.* TO 'slurm'@'localhost';" \
  || fail "could not create MariaDB user slurm" "$LOG/mariadb.log"

# slurmdbd: the accounting daemon (creates its tables on first start)
WAIT_LOGS=("$LOG/slurmdbd.log" "$LOG/slurmdbd.out" "$LOG/mariadb.log")
starting slurmdbd && launch slurmdbd "$LOG/slurmdbd.out" "${denv[@]}" MYSQL_UNIX_PORT="$DB_SOCKET" slurmdbd -D
dbd_ok() { slurm_env timeout 10 sacctmgr -n -P list cluster format=cluster; }
wait_until "slurmdbd to answer sacctmgr on port $DBD_PORT" 60 slurmdbd dbd_ok

# Accounting: cluster, accounts, QOS, users' associations (idempotent; slurmctld needs its cluster
# registered before it starts). Jobs without --account run under the user's default account.
sacctmgr_add() { # sacctmgr -i add ...; "already there" is fine
  local out
  if out="$(slurm_env timeout 20 sacctmgr -i add "$@" 2>&1)"; then return 0; fi
  grep -qiE 'nothing new added|already exist' <<<"$out" && return 0
  fail "sacctmgr add $* failed: $(tr '\n' ' ' <<<"$out")" "$LOG/slurmdbd.log"
}
sacctmgr_add cluster "$CLUSTER_NAME"
sacctmgr_add qos "$(IFS=,; echo "${QOS_GRANTED[*]}"),$QOS_RESTRICTED"
sacctmgr_add qos "$QOS_ONE_JOB" MaxJobsPerUser=1
sacctmgr_add account "$(IFS=,; echo "${ACCOUNTS[*]}")" cluster="$CLUSTER_NAME"
sacctmgr_add account "$ACCOUNT_TINY" cluster="$CLUSTER_NAME" GrpTRES=cpu=2
sacctmgr_add user "$TEST_USER" cluster="$CLUSTER_NAME" defaultaccount="${ACCOUNTS[0]}" account="$(IFS=,; echo "${ACCOUNTS[*]}"),$ACCOUNT_TINY"
sacctmgr_add user root cluster="$CLUSTER_NAME" account="$(IFS=,; echo "${ACCOUNTS[*]}"),$ACCOUNT_TINY"   # root keeps default account root
out="$(slurm_env timeout 20 sacctmgr -i modify user where name="root,$TEST_USER" cluster="$CLUSTER_NAME" \
  set qos="$(IFS=,; echo "${QOS_GRANTED[*]}"),$QOS_ONE_JOB" defaultqos="${QOS_GRANTED[0]}" 2>&1)" \
  || grep -qi 'nothing modified' <<<"$out" \
  || fail "sacctmgr modify user (QOS) failed: $(tr '\n' ' ' <<<"$out")" "$LOG/slurmdbd.log"

# slurmctld (drops to SlurmUser=slurm); recovers jobs and nodes from $STATE/ctld
WAIT_LOGS=("$LOG/slurmctld.log" "$LOG/slurmctld.out")
starting slurmctld && launch slurmctld "$LOG/slurmctld.out" "${denv[@]}" slurmctld -D
ctld_ok() { slurm_env scontrol ping | grep -q 'is UP'; }
wait_until "slurmctld to answer 'scontrol ping' on port $CTLD_PORT" 30 slurmctld ctld_ok

# slurmd per node; with node hostnames each runs in its own UTS namespace (hostname = node name)
for n in "${ALL_NODES[@]}"; do
  starting "slurmd-$n" || continue
  if [[ "$NODE_HOSTNAMES" == 1 ]]; then
    # shellcheck disable=SC2016  # the inner shell expands its own arguments
    launch "slurmd-$n" "$LOG/slurmd-$n.out" "${denv[@]}" unshare --uts -- \
      /bin/sh -c 'hostname "$1" && shift && exec "$@"' sh "$n" slurmd -D -N "$n"
  else
    launch "slurmd-$n" "$LOG/slurmd-$n.out" "${denv[@]}" slurmd -D -N "$n"
  fi
done
WAIT_LOGS=("$LOG/slurmctld.log")
for n in "${ALL_NODES[@]}"; do WAIT_LOGS+=("$LOG/slurmd-$n.log" "$LOG/slurmd-$n.out"); done
resumed=0
nodes_ready() { # every node registered and usable (idle on a fresh cluster; mix/alloc if jobs run)
  local states bad
  states="$(slurm_env sinfo -h -N -o '%N %t' 2>/dev/null | sort -u)" || return 1
  [[ "$(awk '{print $1}' <<<"$states" | sort -u | wc -l)" == "${#ALL_NODES[@]}" ]] || return 1
  bad="$(awk '$2 !~ /^(idle|mix|alloc|comp)$/' <<<"$states")"
  [[ -z "$bad" ]] && return 0
  # nodes left down/drained by an earlier run (not "not responding"): resume them once
  if ((resumed == 0)) && awk '$2 ~ /^(down|drain|drng|fail)$/' <<<"$bad" | grep -q .; then
    awk '$2 ~ /^(down|drain|drng|fail)$/ {print $1}' <<<"$bad" | sort -u | while read -r node; do
      slurm_env scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
    done
    resumed=1
  fi
  return 1
}
wait_until "all nodes (${ALL_NODES[*]}) to register and be idle in sinfo" "$START_TIMEOUT" \
  "slurmctld $(printf 'slurmd-%s ' "${ALL_NODES[@]}")" nodes_ready

# slurmrestd: JWT auth, loopback only, runs as nobody (it refuses root/SlurmUser)
WAIT_LOGS=("$LOG/slurmrestd.out" "$LOG/slurmctld.log")
starting slurmrestd && launch slurmrestd "$LOG/slurmrestd.out" "${denv[@]}" SLURM_JWT=daemon \
  slurmrestd -a rest_auth/jwt -s "$REST_PLUGINS" -u nobody -g nogroup "127.0.0.1:$REST_PORT"
rest_ok() { REST_VERSIONS="$(rest_versions | paste -sd' ' -)"; [[ -n "$REST_VERSIONS" ]]; }
wait_until "slurmrestd on 127.0.0.1:$REST_PORT (GET /openapi/v3 with a JWT)" 30 slurmrestd rest_ok
REST_VERSIONS="$(rest_versions | paste -sd' ' -)"; REST_API="${REST_VERSIONS%% *}"

# sshd: the login node
WAIT_LOGS=("$LOG/sshd.log" "$LOG/sshd.out")
if starting sshd; then
  mkdir -p /run/sshd; chmod 755 /run/sshd   # sshd's compiled-in privilege separation dir
  /usr/sbin/sshd -t -f "$STATE/etc/sshd_config" 2>"$LOG/sshd.out" || fail "sshd rejected its configuration $STATE/etc/sshd_config" "$LOG/sshd.out"
  launch sshd "$LOG/sshd.out" "${denv[@]}" /usr/sbin/sshd -D -f "$STATE/etc/sshd_config" -E "$LOG/sshd.log"
fi
ssh_ok() {
  timeout 10 ssh -i "$CLIENT_KEY" -p "$SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$KNOWN_HOSTS" -o ConnectTimeout=5 "$TEST_USER@127.0.0.1" true
}
wait_until "sshd on 127.0.0.1:$SSH_PORT to accept the client key for $TEST_USER" 20 sshd ssh_ok

write_outputs

# ---- smoke test: a step on each partition ------------------------------------------------------
active_jobs="$(slurm_env squeue -h -o %A 2>/dev/null | wc -l)"
if [[ "$SMOKE" == 1 ]] && ((active_jobs > 0)); then
  log "skipping the smoke jobs: $active_jobs job(s) already queued or running"
elif [[ "$SMOKE" == 1 ]]; then
  WAIT_LOGS=("$LOG/slurmctld.log")
  for n in "${ALL_NODES[@]}"; do WAIT_LOGS+=("$LOG/slurmd-$n.log"); done
  smoke_out="$STATE/run/smoke"
  mkdir -p "$smoke_out"
  slurm_env timeout "$START_TIMEOUT" srun -J pwlab-smoke -p debug -N1 -n1 -t 1 --chdir="$SCRATCH" true >"$smoke_out/debug" 2>&1 & p1=$!
  slurm_env timeout "$START_TIMEOUT" srun -J pwlab-smoke -p multi -N3 -t 1 --chdir="$SCRATCH" true >"$smoke_out/multi" 2>&1 & p2=$!
  # shellcheck disable=SC2016  # the job's shell reads its own environment
  slurm_env timeout "$START_TIMEOUT" srun -J pwlab-smoke -p gpu -N1 --gres=gpu:1 -t 1 --chdir="$SCRATCH" \
    sh -c 'test -n "$CUDA_VISIBLE_DEVICES"' >"$smoke_out/gpu" 2>&1 & p3=$!
  for pair in "debug:$p1" "multi:$p2" "gpu:$p3"; do
    wait "${pair#*:}" || fail "smoke job on partition ${pair%%:*} failed: $(tr '\n' ' ' <"$smoke_out/${pair%%:*}")" "${WAIT_LOGS[@]}"
  done
fi

log "cluster up in $((SECONDS - T0)) s: slurm $SLURM_VERSION, partitions debug/gpu/multi/proj, slurmdbd on 127.0.0.1:$DBD_PORT, REST $REST_API on 127.0.0.1:$REST_PORT, ssh $TEST_USER@127.0.0.1:$SSH_PORT"
log "use it:  . $STATE/env.sh   (or read $STATE/cluster.json)"
echo "$STATE/cluster.json"
