"""Which column or field plays which role: one alias table for plain tables and tools' exports alike.

`feedback.map_columns` matches a table's headers against it; the importers look up a record's fields
(Label Studio's `data`, Argilla's fields, a trace's input) in the same lists.
"""

from __future__ import annotations

# Column roles and the names people give them, matched case-insensitively after turning spaces and
# hyphens into underscores. Order matters: the first alias found wins, the others are ignored.
ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "question": ("question", "prompt", "instruction", "query", "input"),
    "answer": ("answer", "response", "completion", "output", "reply", "generation"),
    "score": ("feedback", "score", "rating", "label", "reward", "grade"),
    "chosen": ("chosen", "chosen_response", "preferred"),
    "rejected": ("rejected", "rejected_response", "dispreferred"),
    "chosen_score": ("chosen_score", "score_chosen"),
    "rejected_score": ("rejected_score", "score_rejected"),
    "margin": ("margin",),
    # Optional: who gave the rating (several raters per answer are combined, and their agreement
    # measured), and a pairs file's tie flag.
    "rater": (
        "rater",
        "annotator",
        "labeler",
        "labeller",
        "reviewer",
        "grader",
        "evaluator",
        "assessor",
        "rater_id",
        "annotator_id",
        "reviewer_id",
        "worker_id",
        "judge",
    ),
    "tie": ("tie", "is_tie"),
}
# A tool's record names its fields loosely ("text" is Label Studio's usual field for the prompt). In a plain
# table a "Text" column is as likely the answer, so these names count only inside a tool's record.
IN_RECORDS_ONLY: dict[str, tuple[str, ...]] = {"question": ("text", "context")}


def record_keys(role: str) -> tuple[str, ...]:
    """The field names a tool's record may give `role`, in order: the table's aliases first."""
    return ROLE_ALIASES[role] + IN_RECORDS_ONLY.get(role, ())
