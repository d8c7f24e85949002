"""Wording and names shared by the readers, the CLI and the app."""

from __future__ import annotations

import re

# Below this many held-out pairs a percentage says more about chance than about the model (the app's
# small-sample rule: menus, curves, the Evaluate tab and the model card all follow it).
MIN_HELD_OUT_PAIRS = 10


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 pair', '2 pairs', '0 pairs': a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def header_key(name: str) -> str:
    """A column or field name as aliases are written: any case, spaces and hyphens as underscores, a scale
    after the name read past ("Rating (0-10)" and "Score [1-5]" are "rating" and "score")."""
    name = re.sub(r"\s*[(\[][^)\]]*[)\]]\s*$", "", name.strip()) or name
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def not_text_at(text: str) -> int | None:
    """Where `text` stops being text that can be written or tokenised: the first lone UTF-16 surrogate
    (a JSON escape "\\ud800" without its pair, or a byte that is not UTF-8 in a command-line argument);
    None when there is none. One C-speed encode, no Python loop."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_is_text(text, what: str) -> None:
    """`text` is a string with no lone surrogate, or InputError names `what` and the character."""
    from rm_demo.errors import InputError

    if not isinstance(text, str):
        raise InputError(f"the {what} is not text ({type(text).__name__})", fix="send a string")
    at = not_text_at(text)
    if at is not None:
        raise InputError(
            f"the {what} holds U+{ord(text[at]):04X} at character {at + 1:,}, half of a UTF-16 pair: not text",
            fix="send UTF-8 text (a byte that is not UTF-8, or a JSON escape \\ud800 without its pair, makes this)",
        )


# A lone surrogate as a JSON escape: a high one not followed by a low one, or a low one not after a high one.
_HIGH, _LOW = r"\\u[dD][89abAB][0-9a-fA-F]{2}", r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
LONE_SURROGATE_ESCAPE = re.compile(rf"{_HIGH}(?!{_LOW})|(?<!{_HIGH}){_LOW}")


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion `correct`/`n`: honest at small n and near 0 or 1,
    where the plain p ± 1.96·sqrt(p(1-p)/n) runs past the ends."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_phrase(accuracy: float, n: int, short: bool = False) -> str:
    """An accuracy as every screen and the console give it: the exact figure, its n and 95% interval.
    short: "69.2% (53-82%, n=39)", else "69.2% of 39 pairs (95% interval 53.9-81.3%)"."""
    low, high = wilson_interval(round(accuracy * n), n)
    if short:
        return f"{accuracy:.1%} ({100 * low:.0f}-{100 * high:.0f}%, n={n})"
    return f"{accuracy:.1%} of {counted(n, 'pair')} (95% interval {100 * low:.1f}-{100 * high:.1f}%)"


def ceiling_phrase(raters: dict | None) -> str:
    """The raters' ceiling in words, said beside a model's accuracy."""
    if not raters:
        return ""
    return (
        f"Raters agree with the pairs' preference in {raters['agreeing']:.0%} of their "
        f"{counted(raters['judgments'], 'judgment')} on {raters['pairs']} of these {raters['of_pairs']} pairs: "
        "about as high as a model can be expected to score on them."
    )
