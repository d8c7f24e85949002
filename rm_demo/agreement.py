"""How much raters agree: Krippendorff's alpha (the `krippendorff` package), and for preferences the
share of repeated judgments that agree.

A reward model learns the raters' judgments; where raters agree no better than chance, no model can
be expected to do better than chance either. Alpha corrects agreement for chance, takes any number of
raters and missing ratings, and has a usual reading (Krippendorff 2004): >= 0.8 reliable, >= 0.667
tentative, below that not to be relied on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RELIABLE_ALPHA = 0.8
TENTATIVE_ALPHA = 0.667
# At or below this, raters agree little more than chance would.
NEAR_CHANCE_ALPHA = 0.2


# Fewer items judged more than once than this, and alpha says little either way: read "too few to tell".
MIN_AGREEMENT_UNITS = 10


def reading(alpha: float | None, units: int = MIN_AGREEMENT_UNITS) -> str:
    if alpha is None:
        return "undefined"
    if units < MIN_AGREEMENT_UNITS:
        return f"too few items to tell (at least {MIN_AGREEMENT_UNITS} needed)"
    if alpha >= RELIABLE_ALPHA:
        return "reliable"
    if alpha >= TENTATIVE_ALPHA:
        return "tentative"
    return "unreliable"


def warning(alpha: float | None, units: int = MIN_AGREEMENT_UNITS) -> str | None:
    """Plain words when the labels are too noisy to expect much from a model trained on them (not said from a
    handful of items: two answers rated twice give an alpha of -0.5 or 1 by chance)."""
    if alpha is None or alpha >= TENTATIVE_ALPHA or units < MIN_AGREEMENT_UNITS:
        return None
    if alpha <= NEAR_CHANCE_ALPHA:
        return (
            f"Raters agree little more than chance would (Krippendorff's alpha {alpha:.2f}): a reward model "
            "trained on these labels cannot be expected to do much better than chance."
        )
    return (
        f"Raters agree only weakly (Krippendorff's alpha {alpha:.2f}, below the usual 0.667): expect a noisy "
        "model, and read its accuracy with care."
    )


def agreement(units, values, level: str = "interval", pairwise: bool = False) -> dict | None:
    """Agreement among judgments of the same units (an answer's scores, or one pair's preferences).

    `units`: what was judged, one entry per judgment; `values`: the judgment (a score; for
    preferences +1, -1 or 0 for a tie, oriented the same way within a unit). Only units judged at
    least twice count. None when no unit was.
    """
    frame = pd.DataFrame({"unit": np.asarray(units), "value": np.asarray(values, dtype=np.float64)}).dropna()
    repeated = frame["unit"].map(frame["unit"].value_counts()) >= 2
    frame = frame[repeated]
    if frame.empty:
        return None
    counts = pd.crosstab(frame["unit"], frame["value"])
    alpha = None
    if counts.shape[1] >= 2:  # one value everywhere: agreement is perfect but alpha is undefined
        import krippendorff

        alpha = float(
            krippendorff.alpha(
                value_counts=counts.to_numpy(dtype=np.float64),
                value_domain=counts.columns.to_numpy(dtype=np.float64),
                level_of_measurement=level,
            )
        )
    result = {
        "alpha": alpha,
        "level": level,
        "units": int(counts.shape[0]),
        "judgments": int(len(frame)),
        "reading": reading(alpha, int(counts.shape[0])),
        "warning": warning(alpha, int(counts.shape[0])),
    }
    if pairwise:
        result["share_agreeing"] = share_agreeing(frame["unit"].to_numpy(), np.sign(frame["value"].to_numpy()))
    return result


def share_agreeing(units, values) -> float:
    """Of every two judgments of the same unit, the share that say the same thing."""
    frame = pd.DataFrame({"unit": units, "value": values})
    same = frame.groupby(["unit", "value"]).size()
    total = frame.groupby("unit").size()
    agreeing = float((same * (same - 1) / 2).sum())
    pairs = float((total * (total - 1) / 2).sum())
    return agreeing / pairs if pairs else float("nan")


def describe(result: dict | None) -> str | None:
    """One line for the report: alpha, its reading, and what it was computed on."""
    if result is None:
        return None
    alpha = "undefined (every judgment is the same)" if result["alpha"] is None else f"{result['alpha']:.3f}"
    line = (
        f"Rater agreement: Krippendorff's alpha ({result['level']}) {alpha}, {result['reading']}; "
        f"{result['judgments']} judgments of {result['units']} items judged more than once"
    )
    if "share_agreeing" in result:
        line += f"; {result['share_agreeing']:.0%} of repeated judgments agree"
    return line + "."
