"""The skill tree as a picture: a sunburst of skills and their subskills, coloured by accuracy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataloop.schema import SkillTree

INNER, MIDDLE, OUTER = 0.3, 0.65, 1.0
"""Radii of the sunburst: the skill ring runs from INNER to MIDDLE, the subskill ring to OUTER."""
MIN_SHARE = 0.05
"""The least share of its skill's wedge a subskill gets (when the skill has at most ten), so one
without validation items still shows."""


@dataclass(frozen=True)
class Wedge:
    """One wedge of the skill-tree sunburst."""

    skill: str
    name: str
    """The skill's name on the skill ring, the subskill's on the outer ring."""
    accuracy: float | None
    """Validation accuracy; None for a subskill without validation items (drawn grey)."""
    start: float
    """Angle in degrees, counter-clockwise, 0 = east; the first skill starts at the top (90)."""
    end: float
    inner: float
    """Radius where the wedge starts; a skill without subskills spans both rings."""
    outer: float


def sunburst(tree: SkillTree) -> list[Wedge]:
    """The wedges of ``tree``: the skills share the circle equally; a subskill takes the share
    of its skill's wedge that its validation items are of the skill's, so the part no subskill
    covers stays empty (when subskills overlap, they share the whole wedge by items)."""
    wedges: list[Wedge] = []
    span = 360 / max(1, len(tree.skills))
    for i, node in enumerate(tree.skills):
        start = 90 + i * span
        outer = MIDDLE if node.subskills else OUTER
        wedges.append(Wedge(node.name, node.name, node.accuracy, start, start + span, INNER, outer))
        shares = subskill_shares([sub.items for sub in node.subskills], node.items)
        for sub, share in zip(node.subskills, shares, strict=True):
            end = start + share * span
            accuracy = sub.accuracy if sub.items else None
            wedges.append(Wedge(node.name, sub.name, accuracy, start, end, MIDDLE, OUTER))
            start = end
    return wedges


def subskill_shares(items: list[int], skill_items: int = 0) -> list[float]:
    """Fractions of a skill's wedge its subskills take in the sunburst: ``items`` out of
    ``skill_items`` (out of their sum when that is larger: overlapping subskills, or an unknown
    skill count), each at least a floor so a subskill without items still shows, scaled down if
    the floors push the sum past 1; equal shares of the whole wedge when every count is 0."""
    if not items:
        return []
    total = sum(items)
    if not total:
        return [1 / len(items)] * len(items)
    whole, floor = max(skill_items, total), min(MIN_SHARE, 0.5 / len(items))
    shares = [max(floor, n / whole) for n in items]
    return [share / max(1.0, sum(shares)) for share in shares]


FIGURE, AXES = (7.5, 6.6), (0.01, 0.02, 0.8, 0.9)
"""Size of the tree picture in inches, and where the sunburst sits in it (left, bottom, w, h)."""
FONT = 7
"""Label size in points."""
GREY = "#c8c8c8"


def plot_tree(tree: SkillTree, title: str, path: Path) -> Path:
    """The skill tree as a sunburst: skills inside, subskills around them, coloured by
    validation accuracy on one fixed scale (0 to 1) with its colorbar, grey where a subskill has
    no validation items."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize, to_rgba
    from matplotlib.patches import Wedge as WedgePatch

    cmap, norm = colormaps["RdYlBu"], Normalize(0.0, 1.0)
    fig = plt.figure(figsize=FIGURE, dpi=110)
    ax = fig.add_axes(AXES)
    limit = OUTER * 1.03
    # Points per data unit: the data is square, so the axes' shorter side sets the scale.
    scale = min(FIGURE[0] * AXES[2], FIGURE[1] * AXES[3]) * 72 / (2 * limit)
    for w in sunburst(tree):
        colour = to_rgba(GREY if w.accuracy is None else cmap(norm(w.accuracy)))
        patch = WedgePatch((0, 0), w.outer, w.start, w.end, width=w.outer - w.inner)
        patch.set(facecolor=colour, edgecolor="white", linewidth=1.2)
        ax.add_patch(patch)
        _label(ax, w, colour, scale)
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal")
    ax.axis("off")
    ax.set_title(title)
    bar = fig.colorbar(ScalarMappable(norm, cmap), cax=fig.add_axes((0.84, 0.2, 0.03, 0.6)))
    bar.set_label("validation accuracy (grey: no validation items)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _label(ax: Any, w: Wedge, colour: tuple[float, float, float, float], scale: float) -> None:
    """Name and accuracy along the wedge's radius, the name cut to the ring's depth with an
    ellipsis; on one line where the wedge is too narrow for two, none where it is too narrow
    for one (the node table lists every node)."""
    middle, radius = math.radians((w.start + w.end) / 2), (w.inner + w.outer) / 2
    lines = min(2, int(radius * math.radians(w.end - w.start) * scale / (FONT * 1.3)))
    if lines == 0:
        return
    accuracy = "no items" if w.accuracy is None else f"{w.accuracy:.0%}"
    chars = int((w.outer - w.inner) * scale * 0.9 / (FONT * 0.6))  # a character ~0.6 em
    if lines == 1:
        chars -= len(accuracy) + 1
    name = w.name if len(w.name) <= chars else w.name[: max(1, chars - 1)] + "…"
    angle = math.degrees(middle) % 360
    red, green, blue, _ = colour
    ax.text(
        radius * math.cos(middle),
        radius * math.sin(middle),
        f"{name}\n{accuracy}" if lines == 2 else f"{name} {accuracy}",
        rotation=angle + 180 if 90 < angle < 270 else angle,  # never upside down
        rotation_mode="anchor",
        ha="center",
        va="center",
        multialignment="center",
        fontsize=FONT,
        color="white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.45 else "black",
    )
