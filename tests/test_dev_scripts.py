"""The dev clusters' scripts (dev/slurm, dev/sge) on a machine where they cannot run.

The cluster fixtures skip when up.sh exits 77 and print its reason, so a script that is not root
must say so and exit 77, not fail half-way through with a missing helper. Run as ``nobody`` when
the tests run as root, so the real scripts with their shared library (dev/lib/common.sh) are
sourced and their preflight reached, without touching the running clusters.
"""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXIT_UNSUPPORTED = 77


def _as_non_root(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "nobody", "--", *argv]
    return argv


@pytest.mark.parametrize(
    "script",
    [
        "dev/slurm/up.sh",
        "dev/slurm/down.sh",
        "dev/sge/up.sh",
        "dev/sge/down.sh",
        "dev/sge/check.sh",
    ],
)
def test_a_dev_script_without_root_says_why_and_exits_77(script: str) -> None:
    result = subprocess.run(
        _as_non_root(["bash", str(REPO / script)]),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_UNSUPPORTED, result.stderr
    assert "UNSUPPORTED:" in result.stderr
    assert "needs root" in result.stderr
    assert "command not found" not in result.stderr
    assert result.stdout == ""
