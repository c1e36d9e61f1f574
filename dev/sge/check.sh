#!/usr/bin/env bash
# Exit 0 if the development Grid Engine cluster started by up.sh is up and healthy, 1 otherwise
# (77: not root).
#   dev/sge/check.sh [--quiet] [--no-ssh]
# Checks: sge_qmaster and sge_execd alive (by their pid files), qconf answers, queue instance
# all.q@<host> known and without state letters (u/E/d/a/...), pe smp attached, the test user can
# run qstat (a valid submit host/user), and -- if cluster.json reports ssh access -- qstat over ssh.
set -uo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
quiet=0; ssh_check=1
for a in "$@"; do
  case "$a" in
    -q|--quiet) quiet=1 ;;
    --no-ssh) ssh_check=0 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
ok()  { ((quiet)) || printf '[sge-dev] ok: %s\n' "$*"; }
bad() { ((quiet)) || printf '[sge-dev] NOT OK: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || { printf '[sge-dev] UNSUPPORTED: check.sh needs root (it reads the daemons'"'"' /proc entries and runs qstat as %s)\n' "$TEST_USER" >&2; exit "$EXIT_UNSUPPORTED"; }

# the running cluster's settings (ports, user) win over this shell's defaults
if [[ -r "$STATE/env.sh" ]]; then
  # shellcheck disable=SC1091
  source "$STATE/env.sh"
  TEST_USER="${PWLAB_SGE_USER:-$TEST_USER}"; QMASTER_PORT="${PWLAB_SGE_QMASTER_PORT:-$QMASTER_PORT}"; EXECD_PORT="${PWLAB_SGE_EXECD_PORT:-$EXECD_PORT}"
  set_sge_vars
fi

pid="$(daemon_pid qmaster)" || bad "sge_qmaster is not running (pid file $QMASTER_PIDFILE; log $QMASTER_SPOOL/messages)"
ok "sge_qmaster running (pid $pid)"
pid="$(daemon_pid execd)" || bad "sge_execd is not running (pid file $EXECD_PIDFILE_GLOB; log $(execd_host_spool)/messages)"
ok "sge_execd running (pid $pid)"
sge_env timeout 15 qconf -sh >/dev/null 2>&1 || bad "qconf -sh does not answer (see $QMASTER_SPOOL/messages)"
ok "qmaster answers on port $QMASTER_PORT"
st="$(qi_state)"
[[ "$st" != missing ]] || bad "queue instance $QUEUE@$MASTER_HOST is missing (qstat -f)"
[[ -z "$st" ]] || bad "queue instance $QUEUE@$MASTER_HOST is in state '$st' (qstat -f; see $(execd_host_spool)/messages)"
ok "queue instance $QUEUE@$MASTER_HOST usable"
sge_env timeout 15 qconf -sq "$QUEUE" 2>/dev/null | grep -Eq "^pe_list[[:space:]].*\\b$PE\\b" || bad "parallel environment $PE is not in $QUEUE's pe_list"
ok "pe $PE in $QUEUE"
id "$TEST_USER" >/dev/null 2>&1 || bad "test user $TEST_USER missing"
as_user timeout 15 qstat >/dev/null 2>&1 || bad "qstat as $TEST_USER fails (not a submit host? $(as_user timeout 15 qstat 2>&1 | head -n 2 | tr '\n' ' '))"
ok "qstat as $TEST_USER"
if ((ssh_check)) && [[ -n "${PWLAB_SGE_SSH_PORT:-}" && -n "${PWLAB_SGE_SSH_HOST:-}" ]]; then
  timeout 20 ssh -i "$PWLAB_SGE_SSH_KEY" -p "$PWLAB_SGE_SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$PWLAB_SGE_KNOWN_HOSTS" -o ConnectTimeout=5 "$TEST_USER@$PWLAB_SGE_SSH_HOST" \
    "SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL SGE_QMASTER_PORT=$QMASTER_PORT qstat" >/dev/null 2>&1 \
    || bad "qstat over ssh $TEST_USER@$PWLAB_SGE_SSH_HOST:$PWLAB_SGE_SSH_PORT failed (is the Slurm test cluster's sshd up? dev/slurm/up.sh)"
  ok "qstat over ssh $TEST_USER@$PWLAB_SGE_SSH_HOST:$PWLAB_SGE_SSH_PORT"
fi
exit 0
