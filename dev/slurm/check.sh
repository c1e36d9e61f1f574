#!/usr/bin/env bash
# Exit 0 if the development Slurm cluster started by up.sh is up and healthy, 1 otherwise.
#   dev/slurm/check.sh [--quiet]
# Checks: every daemon alive (by recorded PID), munge round trip, scontrol ping, slurmdbd (sacctmgr
# lists this cluster), all nodes
# registered and usable (idle/mixed/allocated, none down/drained/invalid/not responding),
# slurmrestd ping with a JWT, ssh login with strict host key checking.
set -uo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
quiet=0; [[ "${1:-}" == --quiet || "${1:-}" == -q ]] && quiet=1
ok()  { ((quiet)) || printf '[slurm-dev] ok: %s\n' "$*"; }
bad() { ((quiet)) || printf '[slurm-dev] NOT OK: %s\n' "$*" >&2; exit 1; }

[[ -r "$STATE/env.sh" ]] || bad "no $STATE/env.sh: the cluster was never started (run dev/slurm/up.sh)"
# the running cluster's settings (ports, user) win over this shell's defaults
# shellcheck disable=SC1091
source "$STATE/env.sh"
source "$SLURM_DEV_DIR/lib.sh"

for name in $(daemon_names); do
  pid="$(pid_of "$name")" || bad "$name is not running (see $LOG)"
done
ok "daemons running: $(daemon_names | tr '\n' ' ')"
munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1 || bad "munge round trip failed ($MUNGE_DIR/munged.log)"
slurm_env timeout 15 scontrol ping 2>/dev/null | grep -q 'is UP' || bad "slurmctld does not answer (see $LOG/slurmctld.log)"
ok "slurmctld answers"
clusters="$(slurm_env timeout 15 sacctmgr -n -P list cluster format=cluster 2>/dev/null)" \
  || bad "slurmdbd does not answer sacctmgr (see $LOG/slurmdbd.log, $LOG/mariadb.log)"
grep -qxF "$PWLAB_SLURM_CLUSTER" <<<"$clusters" || bad "cluster $PWLAB_SLURM_CLUSTER is not registered in slurmdbd"
ok "slurmdbd answers (cluster $PWLAB_SLURM_CLUSTER registered)"
states="$(slurm_env timeout 15 sinfo -h -N -o '%N %t' 2>/dev/null | sort -u)" || bad "sinfo failed"
for n in "${ALL_NODES[@]}"; do
  st="$(awk -v n="$n" '$1 == n {print $2; exit}' <<<"$states")"
  [[ -n "$st" ]] || bad "node $n missing from sinfo"
  [[ "$st" =~ ^(idle|mix|alloc|comp|resv|plnd)$ ]] || bad "node $n is '$st' (see $LOG/slurmd-$n.log)"
done
ok "nodes: $(tr '\n' ' ' <<<"$states")"
tok="$(slurm_env timeout 15 scontrol token username="$PWLAB_SLURM_USER" lifespan=60 2>/dev/null | sed -n 's/^SLURM_JWT=//p')"
[[ -n "$tok" ]] || bad "scontrol token failed (JWT; see $LOG/slurmctld.log)"
api="${PWLAB_SLURM_REST_API:-v0.0.38}"
curl -sf --max-time 10 -H "X-SLURM-USER-NAME: $PWLAB_SLURM_USER" -H "X-SLURM-USER-TOKEN: $tok" \
  "$PWLAB_SLURM_REST_URL/slurm/$api/ping" >/dev/null || bad "slurmrestd $PWLAB_SLURM_REST_URL/slurm/$api/ping failed (see $LOG/slurmrestd.out)"
ok "slurmrestd $PWLAB_SLURM_REST_URL ($api) answers"
timeout 15 ssh -i "$CLIENT_KEY" -p "$PWLAB_SLURM_SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=yes \
  -o UserKnownHostsFile="$KNOWN_HOSTS" -o ConnectTimeout=5 "$PWLAB_SLURM_USER@127.0.0.1" true 2>/dev/null \
  || bad "ssh $PWLAB_SLURM_USER@127.0.0.1:$PWLAB_SLURM_SSH_PORT failed (see $LOG/sshd.log)"
ok "ssh $PWLAB_SLURM_USER@127.0.0.1:$PWLAB_SLURM_SSH_PORT"
exit 0
