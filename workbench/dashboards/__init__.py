"""Voila dashboards: portfolio review, risk review, the strategy lab, and the guarded widgets they use.

Each dashboard is a class that builds its widgets and plotly figures in the kernel, so a
notebook only says ``PortfolioReview().show()`` and a test can drive it without a browser
(:mod:`workbench.dashboards.widgets` explains why every input widget is guarded).
Figures are drawn as static plotly outputs inside ``Output`` widgets and re-drawn on a
change: a ``FigureWidget`` ships plotly.js (4.8 MB) through the kernel socket for each
figure, which alone cost more than a second of first paint.
"""

from workbench.dashboards.widgets import (
    GuardedCheckbox,
    GuardedDropdown,
    GuardedFloatText,
    GuardedIntText,
    GuardedSelectMultiple,
    GuardedTab,
    GuardedText,
    GuardedToggleButtons,
    Status,
    guarded,
    show_figure,
)

__all__ = ["GuardedCheckbox", "GuardedDropdown", "GuardedFloatText", "GuardedIntText", "GuardedSelectMultiple",
           "GuardedTab", "GuardedText", "GuardedToggleButtons", "Status", "guarded", "show_figure"]  # fmt: skip

DASHBOARDS = ("portfolio", "risk", "lab")  # the modules, one dashboard each, imported on first use


def __getattr__(name: str):  # noqa: ANN202 - module attribute hook
    if name in DASHBOARDS:
        import importlib

        return importlib.import_module(f"workbench.dashboards.{name}")
    raise AttributeError(f"module 'workbench.dashboards' has no attribute {name!r}")
