"""Scoring: exact fp32 by default; bf16 (where the CPU has it natively) for batch scoring, within rounding."""

import numpy as np
import pytest

from rm_demo.models import cpu_has_native_bf16
from rm_demo.score import Scorer

PROMPTS = ["How do I water a cactus?"] * 4
ANSWERS = ["Sparingly, when the soil is dry.", "Every hour.", "Never water it at all, cacti live on air.", "Weekly."]


def test_the_default_scorer_is_fp32_and_repeatable():
    scorer = Scorer("default", device="cpu")
    assert scorer.choice.precision == "fp32"
    assert np.array_equal(scorer.score(PROMPTS, ANSWERS), scorer.score(PROMPTS, ANSWERS))


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_bf16_scores_within_rounding_of_fp32():
    exact = Scorer("default", device="cpu").score(PROMPTS, ANSWERS)
    fast = Scorer("default", device="cpu", precision="auto")
    assert fast.choice.precision == "bf16"
    assert np.abs(fast.score(PROMPTS, ANSWERS) - exact).max() < 0.05
