#!/bin/bash
# Runs one job of the built-in `local` cluster. Started by the server in its own session
# (process group), so cancel/timeout can signal the whole tree and a server restart leaves it
# running. The exit status goes to a file, written atomically, so a restarted server finds it.
#
# Before running anything the wrapper claims the job: it creates `started` with O_EXCL (bash's
# noclobber) holding its pid. Of two wrappers started for one job (the server killed right after
# forking the first, then restarted) exactly one gets it and runs the job; the other exits 75
# (EX_TEMPFAIL) and writes nothing else. A restarted server adopts the job by this record.
#
# Everything the wrapper creates in the job's folder is private (umask 077, whatever the server's
# umask); the job's script runs with JOB_UMASK (the cluster's output_umask, default 077), like a
# Slurm job runs with the umask it was submitted with.
#
# Usage: local_job.sh JOB_DIR WORKING_DIR STDOUT STDERR [JOB_UMASK]
umask 077
job_dir=$1
working_dir=$2
stdout_path=$3
stderr_path=$4
job_umask=${5:-077}
case $job_umask in
    [0-7][0-7][0-7] | 0[0-7][0-7][0-7]) ;;
    *) job_umask=077 ;;
esac

record() {
    printf '%s\n' "$1" >"$job_dir/exit_code.tmp" && mv -f -- "$job_dir/exit_code.tmp" "$job_dir/exit_code"
}

set -o noclobber
if ! printf '{"pid": %d}\n' "$$" >"$job_dir/started"; then
    exit 75
fi
set +o noclobber

if ! cd -- "$working_dir" 2>>"$stderr_path"; then
    echo "parallelworks-lab: cannot enter working directory $working_dir" >>"$stderr_path"
    record 1
    exit 1
fi
(umask "$job_umask" && exec bash -- "$job_dir/script.sh") </dev/null >>"$stdout_path" 2>>"$stderr_path"
status=$?
# CPU time of everything the script ran and waited for (the efficiency card), before the
# exit status: the server reads usage once it sees the status.
times >"$job_dir/cpu_times" 2>/dev/null
record "$status"
