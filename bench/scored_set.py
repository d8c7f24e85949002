"""A scored feedback set built from public data: HH-RLHF pairs turned into rated answers.

HH-RLHF has preferences, not scores. To exercise what a workshop's spreadsheet holds (several
answers per question on a 1-5 scale, best-worst pairs with score gaps of 1 to 4), each HH pair
becomes rated rows by this scheme, with a fixed seed:

* question: the last thing the person said before the two answers (earlier turns left out, as in
  a sheet of one question per row);
* the preferred answer: score 5 or 4 (even odds);
* the other answer: score 3 or 2 (even odds);
* for half the questions, one more answer: the last answer of another conversation, which does
  not answer this question at all, scored 1.

Only pairs whose two answers are short (1 to `max_words` words) are used, like the answers people
rate in a workshop. Best-worst then pairs the preferred answer with the off-topic one when there is
one (gap 3 or 4: an easy pair) and with the other HH answer otherwise (gap 1 to 3: as hard as HH).
So a gap here says something true about the pair, which is when a margin in the loss could help.

    python bench/scored_set.py OUT.csv     # writes the whole set (question,answer,feedback)
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rm_demo.feedback import split_shared_prompt

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"


def last_human_turn(prompt: str) -> str:
    turn = prompt.rsplit("Human:", 1)[-1] if "Human:" in prompt else ""
    return turn.removesuffix("Assistant:").strip()


def build_scored_set(path: Path = DATA, max_words: int = 60, seed: int = 0) -> pd.DataFrame:
    """Rows (question, answer, feedback, kind), kind in preferred/other/off_topic; rows shuffled."""
    rng = np.random.default_rng(seed)
    triples = []
    for line in gzip.open(path, "rt", encoding="utf-8"):
        record = json.loads(line)
        prompt, chosen, rejected = split_shared_prompt(record["chosen"], record["rejected"])
        chosen, rejected = chosen.strip(), rejected.strip()
        question = last_human_turn(prompt)
        if question and all(0 < len(a.split()) <= max_words for a in (chosen, rejected)) and chosen != rejected:
            triples.append((question, chosen, rejected))
    rows = []
    answers = [t[1] for t in triples] + [t[2] for t in triples]
    for i, (question, preferred, other) in enumerate(triples):
        rows.append((question, preferred, int(rng.choice([4, 5])), "preferred"))
        rows.append((question, other, int(rng.choice([2, 3])), "other"))
        if rng.random() < 0.5:
            j = int(rng.integers(len(answers)))
            while j % len(triples) == i:  # not one of this question's own answers
                j = int(rng.integers(len(answers)))
            rows.append((question, answers[j], 1, "off_topic"))
    frame = pd.DataFrame(rows, columns=["question", "answer", "feedback", "kind"])
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def split_questions(frame: pd.DataFrame, held_out: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train rows, held-out rows): a seeded share of the questions, all of their answers."""
    questions = frame["question"].drop_duplicates().to_numpy()
    rng = np.random.default_rng(seed)
    held = set(rng.choice(questions, size=round(len(questions) * held_out), replace=False).tolist())
    mask = frame["question"].isin(held)
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


if __name__ == "__main__":
    scored = build_scored_set()
    scored.drop(columns="kind").to_csv(sys.argv[1], index=False)
    print(f"{scored['question'].nunique()} questions, {len(scored)} rows -> {sys.argv[1]}")
