#!/usr/bin/env bash
# shellcheck disable=SC2016  # job scripts and -o paths are expanded by the job, not here
# Regenerate the Grid Engine output samples in this folder from the running dev cluster (root):
#   dev/sge/up.sh && dev/sge/samples/regen.sh
# Jobs are submitted as the test user (pwlab) and named sample-*; every sample is taken when the
# state it shows has been reached. Job numbers, times and host names are whatever the cluster gives.
# Other users' / other tests' jobs of pwlab that run at the same time would show up in the
# qstat -xml -u pwlab samples: run it on an otherwise idle cluster.
set -Eeuo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "$here/../lib.sh"
[[ "$(id -u)" == 0 ]] || unsupported "needs root (submits as the test user with runuser)"
bash "$here/../check.sh" --quiet --no-ssh || die "the cluster is not up: run dev/sge/up.sh"

work="$SCRATCH/samples.$$"; mkdir -p "$work"; chown "$TEST_USER:" "$work"
U() { (cd "$work" && as_user "$@"); }
sub() { U qsub -terse -S /bin/bash -cwd -j y "$@"; }    # script on stdin
state_of() { U qstat -u "$TEST_USER" | awk -v j="$1" '$1 == j {print $5; exit}'; }
wait_state() { # jobid state
  local i
  for ((i = 0; i < 150; i++)); do [[ "$(state_of "$1")" == "$2" ]] && return 0; sleep 0.2; done
  die "job $1 did not reach state $2 (now: '$(state_of "$1")')"
}
wait_gone() { local i; for ((i = 0; i < 300; i++)); do [[ -z "$(state_of "$1")" ]] && return 0; sleep 0.2; done; die "job $1 still listed"; }
wait_acct() { local i; for ((i = 0; i < 150; i++)); do U qacct -j "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; die "job $1 not in qacct"; }
xml() { U qstat -xml -u "$TEST_USER" >"$here/$1"; }
active=$(U qstat -u "$TEST_USER" | awk 'NR > 2' | wc -l)
((active == 0)) || log "warning: $TEST_USER already has $active job(s); they will appear in the samples"

# Eqw: -o into a folder that does not exist
e=$(printf 'echo never\n' | sub -N sample-eqw -o /nonexistent/folder/out.txt)
wait_state "$e" Eqw
xml qstat-eqw.xml
U qstat -xml -j "$e" >"$here/qstat-j-eqw.xml"
U qstat -j "$e" >"$here/qstat-j-eqw.txt"
U qdel "$e" >/dev/null

# running (1 slot) and running in a pe (2 slots)
r=$(printf 'echo "NSLOTS=$NSLOTS"; sleep 20\n' | sub -N sample-run -o run.out)
p=$(printf 'echo "NSLOTS=$NSLOTS"; sleep 20\n' | sub -N sample-pe2 -pe smp 2 -o pe2.out)
wait_state "$r" r; wait_state "$p" r
xml qstat-running.xml
U qstat -xml -j "$p" >"$here/qstat-j-running-pe.xml"

# pending: 4 slots in all.q, 3 taken -> a 2-slot pe job cannot start (scheduling info says why)
q=$(printf 'echo later\n' | sub -N sample-pending -pe smp 2 -o pending.out)
sleep 2.5
[[ "$(state_of "$q")" == qw ]] || die "job $q is '$(state_of "$q")', not qw"
xml qstat-pending.xml
U qstat -xml -j "$q" >"$here/qstat-j-pending.xml"
U qstat -j "$q" >"$here/qstat-j-pending.txt"

# held: user hold (-h), dependency (-hold_jid), and a qhold'ed pending job
h=$(printf 'echo held\n' | sub -N sample-held -h -o held.out)
d=$(printf 'echo after\n' | sub -N sample-dep -hold_jid "$r" -o dep.out)
U qhold "$q" >/dev/null
wait_state "$h" hqw; wait_state "$d" hqw; wait_state "$q" hqw
xml qstat-held.xml
U qstat -xml -j "$d" >"$here/qstat-j-held-dep.xml"
U qrls "$q" >/dev/null

# suspended: qmod -sj on the running 1-slot job
U qmod -sj "$r" >/dev/null
wait_state "$r" s
xml qstat-suspended.xml
U qmod -usj "$r" >/dev/null
wait_state "$r" r
U qdel "$h" "$q" >/dev/null

# array 1-4 with at most 1 task at a time (-tc 1): one task running, the rest pending (range)
a=$(printf 'echo "task $SGE_TASK_ID"; sleep 4\n' | sub -N sample-array -t 1-4 -tc 1 -o 'array.$TASK_ID.out')
aid="${a%%.*}"
for ((i = 0; i < 150; i++)); do
  U qstat -u "$TEST_USER" | awk -v j="$aid" '$1 == j && $5 == "r"' | grep -q . && break; sleep 0.2
done
xml qstat-array.xml
printf '%s\n' "$a" >"$here/qsub-terse-array.txt"

# qacct: success, exit 3, deleted while running, a pe job, an array
x=$(printf 'exit 3\n' | sub -N sample-exit3 -o exit3.out)
U qdel "$r" >/dev/null   # running -> failed 100, exit_status 137
wait_gone "$x"; wait_gone "$r"; wait_gone "$p"; wait_gone "$d"; wait_gone "$aid"
for j in "$x" "$r" "$p" "$d" "$aid"; do wait_acct "$j"; done
sleep 2   # the last task's record
U qacct -j "$d" >"$here/qacct-ok.txt"
U qacct -j "$x" >"$here/qacct-exit3.txt"
U qacct -j "$r" >"$here/qacct-deleted-running.txt"
U qacct -j "$p" >"$here/qacct-pe.txt"
U qacct -j "$aid" >"$here/qacct-array.txt"
U qacct -j 999999 >"$here/qacct-unknown.txt" 2>&1 || true
rm -rf "$work"
log "samples written to $here"
