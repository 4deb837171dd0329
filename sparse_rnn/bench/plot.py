"""A PNG of speedup against ``nn.LSTM`` versus sparsity: one line per provider and shape."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sparse_rnn.bench.providers import NN_LSTM
from sparse_rnn.bench.sweep import Row


class PlottingUnavailable(RuntimeError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`PlottingUnavailable` now, rather than after a long sweep, if it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise PlottingUnavailable(
            "--plot needs matplotlib: `pip install matplotlib` or `pip install sparse_rnn[plot]`"
        ) from error


def plot_speedup(rows: Sequence[Row], path: Path, title: str) -> None:
    """Write the plot of the measured rows to ``path``; other rows are left out."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    measured = [r for r in rows if r.speedup_vs_nn_lstm is not None and r.provider != NN_LSTM]
    # Name a shape by the dimensions that vary in this run; hidden size always.
    varying = [
        dim for dim in ("batch", "seq", "layers") if len({getattr(r, dim) for r in rows}) > 1
    ]
    lines: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for row in measured:
        shape = ", ".join([f"H={row.hidden}"] + [f"{d}={getattr(row, d)}" for d in varying])
        lines[row.provider, shape].append((row.sparsity, row.speedup_vs_nn_lstm))

    # One colour per provider, one line style and marker per shape.
    providers = sorted({provider for provider, _ in lines})
    shapes = sorted({shape for _, shape in lines})
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "x"]
    figure, axes = plt.subplots(figsize=(11, 5))
    for (provider, shape), points in sorted(lines.items()):
        points.sort()
        index = shapes.index(shape)
        axes.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            color=f"C{providers.index(provider)}",
            linestyle=styles[index % len(styles)],
            marker=markers[index % len(markers)],
            label=f"{provider}, {shape}",
        )
    axes.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xlabel("block sparsity")
    axes.set_ylabel(f"speedup vs {NN_LSTM} (higher is faster)")
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    axes.yaxis.set_minor_formatter(FuncFormatter(_label_twos_and_fives))
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _label_twos_and_fives(value: float, _position: int) -> str:
    """Minor tick labels of a log axis: 0.2x, 0.5x, 2x, 5x and so on, the others blank."""
    leading_digit = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}x" if leading_digit in (2, 5) else ""
