"""What a job and a scheduler command inherit from the server, and whom the server acts for."""

from __future__ import annotations

import os
import pwd

from parallelworks_lab.environment import clean_environ
from parallelworks_lab.identity import unix_user

# What a real `sbatch` job on the dev cluster sees (captured from `env` in a job), trimmed.
ENCLOSING_JOB = {
    "SLURM_JOB_ID": "41",
    "SLURM_JOBID": "41",
    "SLURM_NTASKS": "4",
    "SLURM_NPROCS": "4",
    "SLURM_CPUS_ON_NODE": "4",
    "SLURM_MEM_PER_CPU": "100",
    "SLURM_JOB_NODELIST": "node1",
    "SLURM_SUBMIT_DIR": "/home/alice",
    "SLURMD_NODENAME": "node1",
    "SLURM_CONF": "/etc/slurm/slurm.conf",
}


def test_a_server_inside_a_slurm_job_passes_none_of_that_jobs_variables_on():
    base = {"PATH": "/usr/bin", "HOME": "/home/alice", "JUPYTERHUB_API_TOKEN": "t"}
    env = clean_environ({"SLURM_TIME_FORMAT": "standard"}, {**base, **ENCLOSING_JOB})
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/alice",
        # Where the configuration is stays, and what the cluster's config sets is kept.
        "SLURM_CONF": "/etc/slurm/slurm.conf",
        "SLURM_TIME_FORMAT": "standard",
    }


def test_outside_a_job_the_users_own_slurm_settings_are_kept():
    mine = {"PATH": "/usr/bin", "SLURM_CLUSTERS": "north", "SLURM_CONF": "/opt/slurm.conf"}
    assert clean_environ(None, mine) == mine


def test_the_server_acts_for_its_unix_account_not_for_the_name_in_the_environment(monkeypatch):
    monkeypatch.setenv("USER", "somebody-else")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert unix_user() == pwd.getpwuid(os.geteuid()).pw_name != "somebody-else"
