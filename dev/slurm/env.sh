# shellcheck shell=bash
# Source me:  . dev/slurm/env.sh
# Exports what reaches the running development cluster (SLURM_CONF, PWLAB_SLURM_REST_URL,
# PWLAB_SLURM_SSH_*, ...) and defines pwlab_slurm_token / pwlab_slurm_ssh, by sourcing the
# <state>/env.sh that up.sh wrote. Machine-readable equivalent: <state>/cluster.json.
_pwlab_repo="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/../.." && pwd)"
_pwlab_state="${PWLAB_SLURM_STATE:-$_pwlab_repo/.state/slurm}"
if [ -r "$_pwlab_state/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$_pwlab_state/env.sh"
  unset _pwlab_repo _pwlab_state
else
  echo "no development cluster state at $_pwlab_state: run dev/slurm/up.sh first" >&2
  unset _pwlab_repo _pwlab_state
  # shellcheck disable=SC2317  # reached when the file is run instead of sourced
  return 1 2>/dev/null || exit 1
fi
