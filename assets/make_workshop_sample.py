"""The recipe for assets/workshop_feedback.csv: a workshop's spreadsheet built from public data.

Source: Anthropic HH-RLHF, harmless-base test split (MIT licence: assets/LICENSE-hh-rlhf.txt). HH has
preferences, not scores, so each pair becomes rated rows by the scheme of bench/scored_set.py:

* question: what the person asked, from conversations of a single question and answer (a later
  turn, such as "Nevermind, thanks", means nothing on a sheet without the turns before it);
* the preferred answer scores 5 or 4, the other 3 or 2 (even odds, seeded);
* for half the questions one more row: another conversation's answer, off topic, scored 1.

Then, for a room of people: only short answers (at most 40 words), no question or answer with a word
from `AVOID` (harmless-base is a red-teaming set: many prompts ask for harm), at most `QUESTIONS`
questions drawn with a fixed seed. `hh_line` is the pair's line in the source file, so every row
can be traced back; the app reads it as an extra column (shown as ignored, usable as a slice).

    python assets/make_workshop_sample.py ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

QUESTIONS = 300
MAX_WORDS = 40
SEED = 7
OFF_TOPIC_SHARE = 1.0
AVOID = re.compile(
    r"\b(kill\w*|murder\w*|suicid\w*|bomb\w*|gun\w*|weapon\w*|drug\w*|cocaine|heroin|meth|steal\w*|rob\w*|"
    r"rape\w*|sex\w*|porn\w*|nude\w*|naked|racis\w*|nazi\w*|hitler|slur\w*|fuck\w*|shit\w*|bitch\w*|cunt\w*|"
    r"dick\w*|ass|asshole\w*|nigg\w*|fag\w*|retard\w*|poison\w*|hurt\w*|torture\w*|abuse\w*|terror\w*|"
    r"blood\w*|dead|die|dying|kidnap\w*|hack\w*|prostitut\w*|crime\w*|criminal\w*|illegal\w*|cheat\w*|"
    r"stupid|idiot\w*|ugly|fat|hate\w*|jews?|muslim\w*|black|white|gay\w*|lesbian\w*|orgasm\w*|clit\w*|cum|"
    r"puss\w*|penis\w*|vagina\w*|breast\w*|genital\w*|boob\w*|butt\w*|fart\w*|crap\w*|damn\w*|insult\w*|"
    r"punch\w*|fight\w*|beat\w*|shoot\w*|stab\w*|knife|knives|genocide|violen\w*|harm\w*|prison\w*|jail\w*|"
    r"police|cop|cops|lie|lying|revenge|prank\w*|spy\w*|alcohol\w*|drunk\w*|beer|wine|weed|marijuana|smok\w*|"
    r"virus\w*|scam\w*|fraud\w*|bully\w*|trump|biden|politic\w*|religio\w*|god|church|pee\w*|piss\w*|fec\w*|poop\w*|"
    r"abortion\w*|acid\w*|prejudic\w*|bdsm|watersports|fetish\w*|kinky|erotic\w*|cuss\w*|swear\w*)\b",
    re.IGNORECASE,
)
OUT = Path(__file__).resolve().parent / "workshop_feedback.csv"


def split_shared_prompt(chosen: str, rejected: str) -> tuple[str, str, str]:
    """HH stores two whole transcripts; they share everything up to the final answer."""
    cut = chosen.rfind("\n\nAssistant:") + len("\n\nAssistant:")
    return chosen[:cut], chosen[cut:], rejected[cut:] if rejected[:cut] == chosen[:cut] else ""


def last_human_turn(prompt: str) -> str:
    turn = prompt.rsplit("Human:", 1)[-1] if "Human:" in prompt else ""
    return " ".join(turn.removesuffix("Assistant:").split())


def usable(text: str) -> bool:
    return 0 < len(text.split()) <= MAX_WORDS and not AVOID.search(text)


def build(source: Path) -> pd.DataFrame:
    triples = []
    for line_number, line in enumerate(gzip.open(source, "rt", encoding="utf-8"), start=1):
        record = json.loads(line)
        prompt, chosen, rejected = split_shared_prompt(record["chosen"], record["rejected"])
        question, chosen, rejected = last_human_turn(prompt), " ".join(chosen.split()), " ".join(rejected.split())
        if (
            prompt.count("Human:") == 1
            and usable(question)
            and usable(chosen)
            and usable(rejected)
            and chosen != rejected
        ):
            triples.append((line_number, question, chosen, rejected))
    rng = np.random.default_rng(SEED)
    by_question = {t[1]: t for t in triples}  # one pair per question text
    picked = [by_question[q] for q in rng.permutation(sorted(by_question))[:QUESTIONS]]
    others = [t[2] for t in triples]
    rows = []
    for line_number, question, preferred, other in picked:
        rows.append((question, preferred, int(rng.choice([4, 5])), line_number))
        rows.append((question, other, int(rng.choice([2, 3])), line_number))
        if rng.random() < OFF_TOPIC_SHARE:
            off_topic = others[int(rng.integers(len(others)))]
            if off_topic not in (preferred, other):
                rows.append((question, off_topic, 1, line_number))
    frame = pd.DataFrame(rows, columns=["question", "answer", "feedback", "hh_line"])
    return frame.sample(frac=1.0, random_state=SEED).reset_index(drop=True)


if __name__ == "__main__":
    sample = build(Path(sys.argv[1]))
    sample.to_csv(OUT, index=False)
    print(f"{sample['question'].nunique()} questions, {len(sample)} rows -> {OUT}")
