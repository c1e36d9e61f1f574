# shellcheck shell=bash
# Source me:  . dev/sge/env.sh
# Exports what reaches the running development Grid Engine cluster (SGE_ROOT, SGE_CELL,
# SGE_QMASTER_PORT, SGE_EXECD_PORT, PWLAB_SGE_*) and defines pwlab_sge_as_user / pwlab_sge_ssh,
# by sourcing the <state>/env.sh that up.sh wrote. Machine-readable equivalent: <state>/cluster.json.
_pwlab_repo="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/../.." && pwd)"
_pwlab_state="${PWLAB_SGE_STATE:-$_pwlab_repo/.state/sge}"
if [ -r "$_pwlab_state/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$_pwlab_state/env.sh"
  unset _pwlab_repo _pwlab_state
else
  echo "no development Grid Engine state at $_pwlab_state: run dev/sge/up.sh first" >&2
  unset _pwlab_repo _pwlab_state
  # shellcheck disable=SC2317
  return 1 2>/dev/null || exit 1
fi
