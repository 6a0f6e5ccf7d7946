"""The benchmark's figures: learning curve (protocol a), source held out (b), risk-coverage curves (c)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.bench.accuracy import REFERENCE


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)  # Agg without touching pyplot's global backend
    return figure


def _style(name: str) -> dict[str, Any]:
    return {"color": "black", "linestyle": "--"} if name == REFERENCE else {}


def plot_learning_curve(draws: Mapping[str, Mapping[str, Any]], target: float, path: Path) -> Path:
    """Accuracy and macro-F1 (mean ± sd over draws) against training documents per class, one line per candidate."""
    figure = _figure(10, 4)
    axes = figure.subplots(1, 2)
    sizes = sorted(int(size) for size in draws)
    names = list(dict.fromkeys(name for cell in draws.values() for name in cell))
    for name in names:
        xs = [s for s in sizes if draws[str(s)].get(name, {}).get("status") == "ok"]
        if not xs:
            continue
        for axis, metric in zip(axes, ("accuracy", "macro_f1"), strict=True):
            means = [draws[str(x)][name][f"{metric}_mean"] for x in xs]
            sds = [draws[str(x)][name][f"{metric}_sd"] or 0.0 for x in xs]
            axis.errorbar(xs, means, yerr=sds, marker="o", capsize=3, label=name, **_style(name))
    for axis, metric in zip(axes, ("accuracy", "macro-F1"), strict=True):
        axis.set_xlabel("training documents per class")
        axis.set_ylabel(f"{metric} on the other documents")
        axis.axhline(target, color="grey", linestyle=":", linewidth=1)
        axis.set_xticks(sizes)
        axis.set_ylim(top=1.0)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_sources(sources: Mapping[str, Any], target: float, path: Path) -> Path:
    """Accuracy per held-out source, one group of bars per source, one bar per candidate."""
    names = [name for name, cell in sources.items() if cell.get("status") == "ok"]
    keys = sorted({key for name in names for key in sources[name]["per_source"]})
    figure = _figure(max(8.0, 0.6 * len(keys) + 3), 6.0)
    axis = figure.subplots(1, 1)
    width = 0.8 / max(1, len(names))
    for j, name in enumerate(names):
        values = [sources[name]["per_source"].get(key, 0.0) for key in keys]
        label = f"{name} (pooled {sources[name]['accuracy']:.3f})"
        axis.bar([i + j * width for i in range(len(keys))], values, width=width, label=label)
    axis.axhline(target, color="grey", linestyle=":", linewidth=1)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(keys))], labels=keys, rotation=60, ha="right")
    axis.set_ylabel("accuracy on the held-out source")
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_risk_coverage(
    panels: Mapping[str, Mapping[str, Any]], target_accuracy: float, min_share: float, path: Path
) -> Path:
    """Risk-coverage curves, one panel per protocol; a cross marks the shipped review rule's point.

    Args:
        panels: panel title -> {candidate: selective summary (see ``selective_summary``)}.
        target_accuracy: accuracy target of unflagged answers (dotted horizontal line at its risk).
        min_share: the unflagged share target (dotted vertical line).
        path: the PNG to write.
    """
    figure = _figure(5 * max(1, len(panels)), 4.2)
    axes = figure.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for axis, (title, cells) in zip(axes, panels.items(), strict=False):
        for name, selective in cells.items():
            curve = selective["curve"]
            (line,) = axis.step(curve["coverage"], curve["risk"], where="post", label=name, **_style(name))
            if selective["unflagged_accuracy"] is not None:
                axis.plot(
                    selective["unflagged_share"],
                    1 - selective["unflagged_accuracy"],
                    marker="X",
                    markersize=8,
                    color=line.get_color(),
                )
        axis.axhline(1 - target_accuracy, color="grey", linestyle=":", linewidth=1)
        axis.axvline(min_share, color="grey", linestyle=":", linewidth=1)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("coverage (share answered, most confident first)")
        axis.set_ylabel("risk (share of answered that are wrong)")
        axis.set_xlim(0, 1.02)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, title="X: shipped needs_review rule", title_fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    return path
