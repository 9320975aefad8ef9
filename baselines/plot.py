"""``plot.png``: Avg@k (with standard errors) and Pass@k as grouped bars per app, one colour per agent."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from baselines.metrics import OVERALL_APPS, OVERALL_TASKS, Score, percent


def plot_scores(scores: Sequence[Score], path: Path) -> Path:
    """Draw the summary to ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    agents = list(dict.fromkeys(s.agent for s in scores))
    apps = list(dict.fromkeys(s.app for s in scores if s.app not in (OVERALL_APPS, OVERALL_TASKS)))
    if any(s.app == OVERALL_APPS for s in scores):
        apps.append(OVERALL_APPS)
    table = {(s.agent, s.app): s for s in scores}
    k = scores[0].k if scores else 1
    x = np.arange(len(apps))
    width = 0.8 / max(1, len(agents))
    figure, axes = plt.subplots(2, 1, figsize=(min(14.0, max(6.0, 2 + len(apps) * (0.6 + 0.35 * len(agents)))), 7.5),
                                sharex=True)
    colours = plt.get_cmap("tab10")
    for i, agent in enumerate(agents):
        offset = x - 0.4 + width * (i + 0.5)
        rows = [table.get((agent, app)) for app in apps]
        avg = [percent(r.avg_at_k) if r else 0.0 for r in rows]
        err = [percent(r.avg_at_k_se) if r else 0.0 for r in rows]
        pas = [percent(r.pass_at_k) if r else 0.0 for r in rows]
        axes[0].bar(offset, avg, width, yerr=err, capsize=3, label=agent, color=colours(i % 10))
        axes[1].bar(offset, pas, width, label=agent, color=colours(i % 10))
        for axis, values in ((axes[0], avg), (axes[1], pas)):
            for xi, value in zip(offset, values):
                axis.annotate(f"{value:.0f}", (xi, value), ha="center", va="bottom", fontsize=7,
                              xytext=(0, 2), textcoords="offset points")
    axes[0].set_ylabel(f"Avg@{k} (%)")
    axes[1].set_ylabel(f"Pass@{k} (%)")
    for axis in axes:
        axis.set_ylim(0, 110)
        axis.grid(axis="y", alpha=0.3)
        axis.set_axisbelow(True)
    axes[0].set_title(f"Success per app: Avg@{k} ± standard error (top), Pass@{k} (bottom)")
    axes[1].set_xticks(x, [app.replace(" (", "\n(") for app in apps])
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
