"""Running cells through IPython's InteractiveShell as a notebook would (the magics tests)."""

from __future__ import annotations

from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output


def run(ip: InteractiveShell, cell: str) -> tuple[Any, CapturedIO]:
    """Run a cell as a notebook would; return (result, captured output)."""
    with capture_output() as captured:
        result = ip.run_cell(cell)
    return result, captured


def one_line_error(result: Any, captured: CapturedIO) -> str:
    """The cell failed with one UsageError line and no traceback."""
    assert result.error_in_exec is not None
    assert "Traceback" not in captured.stderr + captured.stdout
    lines = [line for line in captured.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, captured.stderr
    assert lines[0].startswith("UsageError: ")
    return lines[0]
