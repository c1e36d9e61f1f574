"""What every widget shares: how it shows in a notebook, and how an error looks."""

from __future__ import annotations

from typing import Any

ERROR_STYLE = "color: var(--jp-error-color1, #d32f2f); font-size: var(--jp-ui-font-size0, 11px)"


class Displayable:
    """A wrapper that shows as its ipywidgets box (composition keeps the typing strict)."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        self.widget.close()
