"""How rated answers become pairs: the one shape of the pairing settings.

The CLI's flags, a `--config` file's `pairs:` group, the app's Data tab and a run's config.json all are
this dataclass's fields under their own names (`config.PAIR_FLAGS` is its field list, `TrainConfig` takes
its defaults, and `PairOptions.validate` is the one check). Pure Python: the CLI's `--help` imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from rm_demo.errors import InputError

STRATEGIES = ("best-worst", "all-pairs")
AGGREGATIONS = ("mean", "median", "majority")
# The seed's rule, on its 1-to-5 scale: the best answer must be good, the worst must not be.
DEFAULT_CHOSEN_MIN = 4.0
DEFAULT_REJECTED_MAX = 4.0
# all-pairs on one question with n answers makes up to n(n-1)/2 pairs: 18 million for 6,000 answers.
# Above this many, a question's pairs are a uniform sample (seeded), and the report says how many were left.
MAX_PAIRS_PER_QUESTION = 1000


@dataclass(frozen=True)
class PairOptions:
    """How to turn rated answers into pairs. Thresholds of `None` take the strategy's default."""

    strategy: str = "best-worst"
    chosen_min: float | None = None
    rejected_max: float | None = None
    min_margin: float = 1.0
    max_pairs_per_question: int = MAX_PAIRS_PER_QUESTION
    # Several raters of one answer: their scores become one by this rule ...
    aggregate: str = "mean"
    # ... and an answer whose raters' scores lie further apart than this is dropped (None: never).
    max_rater_spread: float | None = None

    def resolved_thresholds(self, scale: tuple[float, float] | None = None) -> tuple[float | None, float | None]:
        """The thresholds in force. `scale`: a source's documented score scale; best-worst's defaults
        then sit where 4 sits on 1-to-5, three quarters of the way up."""
        if self.strategy == "best-worst":
            default = DEFAULT_CHOSEN_MIN if scale is None else scale_threshold(scale)
            return (
                default if self.chosen_min is None else self.chosen_min,
                default if self.rejected_max is None else self.rejected_max,
            )
        return self.chosen_min, self.rejected_max

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(f"unknown strategy {self.strategy!r}", fix=f"use one of {', '.join(STRATEGIES)}")
        if self.aggregate not in AGGREGATIONS:
            raise InputError(
                f"unknown way to combine raters {self.aggregate!r}", fix=f"use one of {', '.join(AGGREGATIONS)}"
            )
        spread = self.max_rater_spread
        if spread is not None and not (spread >= 0 and math.isfinite(spread)):
            raise InputError(
                f"the largest rater spread must be a number >= 0, not {spread}", fix="use e.g. --max-rater-spread 2"
            )
        if not (self.min_margin >= 0 and math.isfinite(self.min_margin)):
            raise InputError(
                f"the minimum margin must be a number >= 0, not {self.min_margin}", fix="use e.g. --min-margin 1"
            )
        if not (isinstance(self.max_pairs_per_question, int) and self.max_pairs_per_question >= 1):
            raise InputError(
                f"the per-question pair cap must be a whole number >= 1, not {self.max_pairs_per_question}",
                fix=f"use e.g. --max-pairs-per-question {MAX_PAIRS_PER_QUESTION}",
            )
        for name in ("chosen_min", "rejected_max"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InputError(
                    f"the {name.replace('_', ' ')} threshold must be a finite number, not {value}",
                    fix=f"use e.g. --{name.replace('_', '-')} 4, or leave it out for the default",
                )

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def default(cls, name: str):
        return cls.__dataclass_fields__[name].default


def scale_threshold(scale: tuple[float, float]) -> float:
    """Where 4 sits on a 1-to-5 scale, on `scale`: three quarters of the way up."""
    threshold = round(scale[0] + 0.75 * (scale[1] - scale[0]), 4)
    return int(threshold) if float(threshold).is_integer() else threshold
