"""Feedback where it lives: the exports of annotation tools, tracing tools and public preference sets.

Each reader turns one source's records into the table the rest of rm_demo reads: rated answers
(`question, answer, score`) or pairs (`question, chosen, rejected`), with a `rater` where the source
names one, a `margin` where it gives a preference strength, a `tie` flag, and the source's record
number (`record`). Nothing is lost quietly: a record that gives no judgment (a cancelled annotation,
a draft response, a score without its trace) becomes a row with its reason in `import_status`, and
the pair accounting counts it like any other dropped row.

Sources are recognised by their keys (`recognise`); `ReadOptions.format` names one to skip the guess.
The field names follow each project's documented export; the README's data section shows one record
of each.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from rm_demo.columns import record_keys
from rm_demo.errors import InputError
from rm_demo.text import counted, header_key

# Drop reasons an import can give before any pairing (pairs.DROP_REASONS words them for the user).
IMPORT_REASONS = ("cancelled", "not_submitted", "no_judgment", "other_field", "no_trace")

# Columns an import adds to keep its books, not to slice by: ids, which score name a row came from.
BOOKKEEPING_COLUMNS = ("trace", "trace_record", "score_name")

QUESTION_KEYS = record_keys("question")  # the plain tables' aliases and a record's own (rm_demo.columns)
ANSWER_KEYS = record_keys("answer")
# A conversation so far (Label Studio's chatbot templates: `data.messages`): its last user turn, in context.
CONVERSATION_KEYS = ("messages", "dialogue", "conversation", "chat")


@dataclass
class Imported:
    """One source read into rm_demo's table, plus what the Data tab and the report say about it."""

    kind: str  # "feedback" or "pairs"
    frame: pd.DataFrame  # row, record, question, answer/score or chosen/rejected, rater, ..., import_status
    records: int
    unit: str  # what one row is: "rating", "judgment"
    notes: list[str] = field(default_factory=list)
    # The source's score scale, when it has a documented one: the default thresholds sit 3/4 up it.
    scale: tuple[float, float] | None = None
    # Several raters' judgments of one row that the row itself sums up (HelpSteer3's individual
    # preferences): (row, value), for agreement only.
    judgments: pd.DataFrame | None = None
    score_choices: list[str] = field(default_factory=list)  # what the score column may name here
    format: str = ""  # the source's name, as the Data tab shows it (import_records sets it from SOURCES)


@dataclass(frozen=True)
class Source:
    key: str
    name: str
    matches: Callable[[list[dict]], bool]
    read: Callable[[list[dict], list[int], str | None, str], Imported]
    flat: bool = False  # its records are flat rows: a CSV of them is recognised too
    whole: bool = False  # `matches` looks at every record itself; else it is asked about a sample, one by one


# ---------------------------------------------------------------------------------------------
# Text out of messages


def content_text(content) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "\n".join(p for p in parts if p)
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or json.dumps(content, ensure_ascii=False))
    return str(content)


def is_messages(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def render_turns(messages: list[dict]) -> str:
    """Turns as a transcript ("User: ...\n\nAssistant: ..."), the way HH-RLHF writes conversations."""
    return "\n\n".join(f"{str(m.get('role', '')).capitalize()}: {content_text(m.get('content'))}" for m in messages)


def prompt_text(messages) -> str:
    """A prompt: one user message is its text; a longer conversation keeps every turn, as a transcript,
    so the last question is read in its context (it then fills the user turn of a chat template)."""
    if isinstance(messages, str):
        return messages
    if not is_messages(messages):
        return _plain(messages)
    if len(messages) == 1:
        return content_text(messages[0].get("content"))
    return render_turns(messages)


def answer_text(messages) -> str:
    """A completion: the assistant's text (turns kept as a transcript when the user speaks in between)."""
    if isinstance(messages, str):
        return messages
    if not is_messages(messages):
        return _plain(messages)
    if all(m.get("role") == "assistant" for m in messages):
        return "\n\n".join(content_text(m.get("content")) for m in messages)
    return render_turns(messages)


def split_conversations(a: list[dict], b: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """Two conversations that share their opening turns: (shared prompt, rest of a, rest of b)."""
    shared = 0
    while shared < min(len(a), len(b)) and a[shared] == b[shared]:
        shared += 1
    while shared and a[shared - 1].get("role") == "assistant":  # the answers start at an assistant turn
        shared -= 1
    return a[:shared], a[shared:], b[shared:]


def _plain(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)


def _score(value) -> str:
    """A score as text for parse_scores: numbers and booleans as numbers, blanks blank."""
    if isinstance(value, dict):  # {"value": 4} from some exports
        value = value.get("value", value.get("rating", value.get("score")))
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return _plain(value).strip()


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    try:
        return math.isfinite(float(str(value).strip()))
    except ValueError:
        return False


def _text_field(data: dict, keys: tuple[str, ...], avoid: set[str] = frozenset()) -> str | None:
    """The first key of `data` named like one of `keys` (as a file's columns are matched: `header_key`)."""
    by_key = {}
    for k in data:
        by_key.setdefault(header_key(str(k)), k)
    for alias in keys:
        key = by_key.get(alias)
        if key is not None and key not in avoid:
            return key
    return None


def _inputs_text(value) -> str:
    """The question of a trace's input: a string, a message list (the last user turn in context) or a
    mapping with a question-like key."""
    if isinstance(value, str) or is_messages(value):
        return prompt_text(value)
    if isinstance(value, dict):
        if is_messages(value.get("messages")):
            return prompt_text(value["messages"])
        if value.keys() == {"args", "kwargs"}:  # a Python function's call (Langfuse's @observe): its arguments
            args = value["args"] if isinstance(value["args"], list) else [value["args"]]
            kwargs = value["kwargs"] if isinstance(value["kwargs"], dict) else {}
            given = [a for a in args if a not in (None, "", [], {})]
            if len(given) == 1 and not kwargs:
                return _inputs_text(given[0])
            return _inputs_text({**{f"arg{i}": a for i, a in enumerate(given)}, **kwargs})
        key = _text_field(value, QUESTION_KEYS + ("messages",))
        if key is not None:
            return _inputs_text(value[key])
        if len(value) == 1:
            return _inputs_text(next(iter(value.values())))
    return _plain(value)


def _outputs_text(value) -> str:
    if isinstance(value, str) or is_messages(value):
        return answer_text(value)
    if isinstance(value, dict):
        if is_messages(value.get("messages")):
            return answer_text(
                [m for m in value["messages"] if m.get("role") == "assistant"][-1:] or value["messages"]
            )
        key = _text_field(value, ANSWER_KEYS + ("content", "result", "text"))
        if key is not None:
            return _outputs_text(value[key])
        if len(value) == 1:
            return _outputs_text(next(iter(value.values())))
    return _plain(value)


# ---------------------------------------------------------------------------------------------
# Building the table


class _Rows:
    """Collects one row per rating or judgment, numbered in file order."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, record: int, status: str = "", **values) -> None:
        self.rows.append({"record": record, **values, "import_status": status})

    def frame(self, columns: tuple[str, ...]) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows)
        for col in (*columns, "rater", "import_status"):
            if col not in frame:
                frame[col] = ""
        extras = [c for c in frame.columns if c not in ("record", *columns, "rater", "import_status")]
        frame = frame[["record", *columns, "rater", *extras, "import_status"]]
        for col in frame.columns:
            if col == "tie":
                frame[col] = frame[col].map(lambda v: v is True)
            elif col != "record":
                frame[col] = frame[col].map(_plain).astype("str")
        frame.insert(0, "row", range(1, len(frame) + 1))
        return frame


FEEDBACK_COLUMNS = ("question", "answer", "score")
PAIR_COLUMNS = ("question", "chosen", "rejected", "margin", "tie")


def _rater(value) -> str:
    if isinstance(value, dict):  # Label Studio may export the user as an object
        value = value.get("email") or value.get("id") or value.get("username")
    return _plain(value)


# ---------------------------------------------------------------------------------------------
# Label Studio


def _label_studio_matches(records: list[dict]) -> bool:
    first = records[0]
    return isinstance(first.get("data"), dict) and isinstance(first.get("annotations", first.get("completions")), list)


def _choice_field(choice: str, data: dict) -> str | None:
    """A choice that names one of the task's text fields ("Answer 1" -> answer1): a preference."""
    wanted = re.sub(r"[\s_\-]+", "", choice.lower())
    for key in data:
        if re.sub(r"[\s_\-]+", "", str(key).lower()) == wanted:
            return key
    return None


def _annotations(task: dict) -> list[dict]:
    return [a for a in task.get("annotations", task.get("completions")) or [] if isinstance(a, dict)]


def _label_studio_control(records, score_field, source) -> tuple[str | None, Counter, bool]:
    """(the control whose results are read, every judging control, whether it is a preference)."""
    results = [item for task in records for ann in _annotations(task) for item in ann.get("result") or []]
    results = [item for item in results if isinstance(item, dict)]
    controls = Counter(item.get("from_name") for item in results if item.get("type") in JUDGING_TYPES)
    if score_field and score_field not in controls:
        raise InputError(
            f"no rating, choices or pairwise control named {score_field!r} in the annotations",
            source=source,
            fix=f"use one of: {', '.join(map(repr, controls)) or '(none found)'}",
        )
    control = score_field or (controls.most_common(1)[0][0] if controls else None)
    mine = [item for item in results if item.get("from_name") == control]
    # A choice that names one of the task's texts ("Answer 1") is a preference, a number is a rating.
    named = (
        not _is_number(choice) and _choice_field(str(choice), task.get("data") or {})
        for task in records
        for ann in _annotations(task)
        for item in ann.get("result") or []
        if isinstance(item, dict) and item.get("from_name") == control
        for choice in (item.get("value") or {}).get("choices", [])[:1]
    )
    kinds = {item.get("type") for item in mine}
    return control, controls, "pairwise" in kinds or ("choices" in kinds and any(named))


JUDGING_TYPES = ("rating", "choices", "pairwise")


def compared_fields(data: dict, question_key, item: dict, named: list[str] | None, source: str) -> list[str]:
    """The two fields of a task a pairwise result compares, left first: those its `to_name` names, or the
    two the user named (`--answer-col A,B`), or the only two texts beside the question. More candidates
    and nothing that says which: asked, not guessed (the first two were model names in a real export)."""
    if named:
        missing = [f for f in named if f not in data]
        if len(named) != 2 or missing:
            raise InputError(
                f"a pairwise comparison needs two of the task's fields, left first; {', '.join(map(repr, named))} "
                + (f"are not all among them ({', '.join(map(repr, data))})" if missing else "is not two"),
                source=source,
                fix="name them as the answer column, comma-separated: --answer-col answer1,answer2",
            )
        return named
    targets = [t.strip() for t in str(item.get("to_name", "")).split(",") if t.strip()]
    if len([t for t in targets if t in data]) == 2:
        return [t for t in targets if t in data]
    texts = [k for k in data if k != question_key and isinstance(data[k], str)]
    if len(texts) == 2:
        return texts
    raise InputError(
        "Label Studio pairwise: which two fields were compared? "
        + (
            f"The results name {item['to_name']!r}, no field of the task"
            if item.get("to_name")
            else "The export does not say"
        )
        + f", and {len(texts)} text fields besides the question could be the answers: "
        f"{', '.join(map(repr, texts))}",
        source=source,
        fix="name the two compared fields, left first, as the answer column: --answer-col answer1,answer2 in the CLI "
        "(in the app, type answer1,answer2 as the Answer column); the labeling config's Pairwise toName lists them",
    )


def _named_pair(hints: dict) -> list[str] | None:
    given = hints.get("answer_field")
    return [f.strip() for f in str(given).split(",") if f.strip()] if given and "," in str(given) else None


def _label_studio_item(
    rows: _Rows, number: int, data: dict, question_key, item: dict, rater: str, pairwise: bool, compared=None
):
    """One result of the control read: a rating of one text, or a choice between two."""
    question = prompt_text(data.get(question_key, "")) if question_key else ""
    answers = [k for k in data if k != question_key and isinstance(data[k], str)]
    value = item.get("value") or {}
    targets = [t.strip() for t in str(item.get("to_name", "")).split(",") if t.strip()]
    if pairwise:
        left, right = compared if compared else (None, None)
        picked = value.get("selected")
        if picked is None and value.get("choices"):
            key = _choice_field(str(value["choices"][0]), data)
            picked = "left" if key == left else "right" if key == right else None
        if left is None or picked not in ("left", "right"):
            rows.add(number, "no_judgment", question=question, rater=rater)
            return
        chosen, rejected = (left, right) if picked == "left" else (right, left)
        rows.add(number, question=question, chosen=data[chosen], rejected=data[rejected], rater=rater)
        return
    answer_key = next((t for t in targets if t in data and t != question_key), None)
    if answer_key is None:
        answer_key = _text_field(data, ANSWER_KEYS, {question_key}) or (answers[0] if answers else None)
    rows.add(
        number,
        question=question,
        answer=prompt_text(data.get(answer_key, "")) if answer_key else "",
        score=_score(value.get("rating", (value.get("choices") or [None])[0])),
        rater=rater,
    )


def _read_label_studio(records, numbers, score_field, source, **hints) -> Imported:
    control, controls, pairwise = _label_studio_control(records, score_field, source)
    rows, named, compared_seen = _Rows(), _named_pair(hints), set()
    for task, number in zip(records, numbers):
        data = task.get("data") or {}
        question_key = _text_field(data, QUESTION_KEYS + CONVERSATION_KEYS)
        question = prompt_text(data.get(question_key, "")) if question_key else ""
        if not _annotations(task):
            rows.add(number, "no_judgment", question=question)
        for ann in _annotations(task):
            rater = _rater(ann.get("completed_by"))
            results = [i for i in ann.get("result") or [] if isinstance(i, dict)]
            items = [i for i in results if i.get("from_name") == control]
            if ann.get("was_cancelled"):
                rows.add(number, "cancelled", question=question, rater=rater)
            elif not items:
                other = any(i.get("type") in JUDGING_TYPES for i in results)
                rows.add(number, "other_field" if other else "no_judgment", question=question, rater=rater)
            for item in items if not ann.get("was_cancelled") else []:
                compared = compared_fields(data, question_key, item, named, source) if pairwise else None
                if compared:
                    compared_seen.add(tuple(compared))
                _label_studio_item(rows, number, data, question_key, item, rater, pairwise, compared)
    frame = rows.frame(PAIR_COLUMNS if pairwise else FEEDBACK_COLUMNS)
    others = [c for c in controls if c != control]
    notes = [
        f"Judgments from the control {control!r}"
        + (f" (others: {', '.join(map(repr, others))}; choose one as the score column)" if others else "")
        + "; the rater is completed_by."
    ]
    if compared_seen:  # said, so that a wrong pick of fields is seen at once
        notes.append(
            "Compared fields (left, right): " + "; ".join(f"{a!r}, {b!r}" for a, b in sorted(compared_seen)) + "."
        )
    kind = "pairs" if pairwise else "feedback"
    choices = [str(c) for c in controls]
    return Imported(kind, frame, len(records), "annotation", notes, score_choices=choices)


# Label Studio's JSON-MIN and CSV exports: one flat row per annotation, each control's result under its
# name (a CSV holds it as JSON text), the task's data beside it.
LABEL_STUDIO_MIN_KEYS = ("annotator", "annotation_id")
LABEL_STUDIO_MIN_BOOKKEEPING = ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time")


def _label_studio_min_matches(records: list[dict]) -> bool:
    return all(k in records[0] for k in LABEL_STUDIO_MIN_KEYS)


def _min_value(value):
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _min_result(name: str, value) -> dict | None:
    """A flat control value back as a Label Studio result: pairwise, rating or choices."""
    value = _min_value(value)
    if isinstance(value, list) and value and isinstance(value[0], dict) and "selected" in value[0]:
        return {"type": "pairwise", "from_name": name, "to_name": "", "value": value[0]}
    if isinstance(value, dict) and "rating" in value:
        return {"type": "rating", "from_name": name, "to_name": "", "value": value}
    if isinstance(value, dict) and "choices" in value:
        return {"type": "choices", "from_name": name, "to_name": "", "value": value}
    return None


def _read_label_studio_min(records, numbers, score_field, source, **hints) -> Imported:
    tasks = []
    for record in records:
        data, results = {}, []
        for key, value in record.items():
            if key in LABEL_STUDIO_MIN_BOOKKEEPING:
                continue
            result = _min_result(key, value)
            if result is not None:
                results.append(result)
            else:
                data[key] = value
        # A rating or choice exports as a bare value ("rating": 4): read it as the score column names it.
        if score_field and score_field in data and not any(r["from_name"] == score_field for r in results):
            kind = "rating" if _is_number(data[score_field]) else "choices"
            value = data.pop(score_field)
            results.append(
                {
                    "type": kind,
                    "from_name": score_field,
                    "to_name": "",
                    "value": {kind: value if kind == "rating" else [value]},
                }
            )
        annotation = {"completed_by": record.get("annotator"), "result": results}
        tasks.append({"data": data, "annotations": [annotation] if results else []})
    imported = _read_label_studio(tasks, numbers, score_field, source, **hints)
    imported.notes.append("Read from the JSON-MIN/CSV export: one row per annotation.")
    return imported


# ---------------------------------------------------------------------------------------------
# Argilla (records flattened, as `records.to_list(flatten=True)` and `to_datasets()` write them)


def _argilla_questions(record: dict) -> list[str]:
    """Its questions: `Q.responses` keys. A record not annotated yet has them as null (to_list fills every
    record with the keys of all), or, exported before any answer, not at all."""
    return [
        k[: -len(".responses")]
        for k, v in record.items()
        if k.endswith(".responses") and (isinstance(v, list) or (v is None and f"{k}.users" in record))
    ]


def _argilla_nested(record: dict) -> bool:
    """`records.to_json()` / `Dataset.to_disk()`: fields, responses and suggestions nested by name."""
    nested = isinstance(record.get("fields"), dict) and isinstance(record.get("responses"), dict)
    return nested and "suggestions" in record


def _argilla_matches(records: list[dict]) -> bool:
    return bool(_argilla_questions(records[0])) or _argilla_nested(records[0])


def _argilla_flat(record: dict) -> dict:
    """A nested record as `to_list(flatten=True)` writes it."""
    if not _argilla_nested(record):
        return record
    flat = {"id": record.get("id"), "status": record.get("status"), **record["fields"]}
    for question, responses in record["responses"].items():
        answers = [r for r in responses or [] if isinstance(r, dict)]
        flat[f"{question}.responses"] = [r.get("value") for r in answers]
        flat[f"{question}.responses.users"] = [r.get("user_id") for r in answers]
        flat[f"{question}.responses.status"] = [r.get("status") or "submitted" for r in answers]
    return flat


def _ranked(value, fields: dict) -> list[tuple[str, str]] | None:
    """A RankingQuestion's response (`[{"value": "response1", "rank": 1}, ...]`, over the record's fields) as
    rated answers: rank 1 of n scores n, the last 1. None for any other response."""
    if not (isinstance(value, list) and value and all(isinstance(v, dict) and "rank" in v for v in value)):
        return None
    n = len(value)
    return [
        (answer_text(fields.get(str(v.get("value")), "")), _score(n + 1 - v["rank"]) if _is_number(v["rank"]) else "")
        for v in value
    ]


def _read_argilla(records, numbers, score_field, source, **hints) -> Imported:
    records = [_argilla_flat(r) for r in records]
    questions = list(dict.fromkeys(q for r in records for q in _argilla_questions(r)))
    if not questions:
        raise InputError(
            "this Argilla export holds no responses to any question yet",
            source=source,
            fix="export again once records have been annotated (submitted responses)",
        )
    numeric = [
        q
        for q in questions
        if any(
            _is_number(v) or _ranked(v, {}) for r in records for v in (r.get(f"{q}.responses") or []) if v is not None
        )
    ]
    if score_field and score_field not in questions:
        raise InputError(
            f"no Argilla question named {score_field!r}",
            source=source,
            fix=f"use one of: {', '.join(map(repr, questions))}",
        )
    question_name = score_field or (numeric or questions)[0]
    rows, longest = _Rows(), 0
    for record, number in zip(records, numbers):
        fields = {k: v for k, v in record.items() if "." not in k and isinstance(v, (str, list))}
        q_key = _text_field(fields, QUESTION_KEYS)
        a_key = _text_field(fields, ANSWER_KEYS, {q_key})
        question = prompt_text(fields.get(q_key, "")) if q_key else ""
        answer = answer_text(fields.get(a_key, "")) if a_key else ""
        values = record.get(f"{question_name}.responses") or []
        users = record.get(f"{question_name}.responses.users") or []
        statuses = record.get(f"{question_name}.responses.status") or []
        if not values:
            rows.add(number, "no_judgment", question=question, answer=answer)
            continue
        for i, value in enumerate(values):
            status = statuses[i] if i < len(statuses) else "submitted"
            rater = _plain(users[i]) if i < len(users) else ""
            ranking = _ranked(value, fields)
            longest = max(longest, len(ranking or []))
            for ranked_answer, score in ranking or [(answer, _score(value))]:
                rows.add(
                    number,
                    "" if status == "submitted" else "not_submitted",
                    question=question,
                    answer=ranked_answer,
                    score=score,
                    rater=rater,
                )
    notes = [
        f"Scores from the question {question_name!r}"
        + (f" (others: {', '.join(map(repr, questions))})" if len(questions) > 1 else "")
        + "; choose another with the score column."
    ]
    frame = rows.frame(FEEDBACK_COLUMNS)
    if longest:  # a ranking of n answers scores them n (first) to 1 (last)
        notes.append(f"{question_name!r} is a ranking: the first of n answers scores n, the last 1.")
    return Imported(
        "feedback",
        frame,
        len(records),
        "response",
        notes,
        (1.0, float(longest)) if longest > 1 else None,
        score_choices=questions,
    )


# ---------------------------------------------------------------------------------------------
# OpenAI preference fine-tuning (also Together, Fireworks)


def _openai_matches(records: list[dict]) -> bool:
    first = records[0]
    return "preferred_output" in first and "non_preferred_output" in first


def _read_openai(records, numbers, score_field, source, **hints) -> Imported:
    rows = _Rows()
    context = 0
    for record, number in zip(records, numbers):
        messages = (record.get("input") or {}).get("messages") if isinstance(record.get("input"), dict) else None
        if not is_messages(messages) or not record.get("preferred_output") or not record.get("non_preferred_output"):
            rows.add(number, "no_judgment", question=prompt_text(messages) if messages else "")
            continue
        context += len(messages) > 1
        rows.add(
            number,
            question=prompt_text(messages),
            chosen=answer_text(record["preferred_output"]),
            rejected=answer_text(record["non_preferred_output"]),
        )
    notes = (
        [
            f"{context} record(s) hold more than one input message: their prompt is the whole conversation as a "
            "transcript, ending with the last user message."
        ]
        if context
        else []
    )
    return Imported("pairs", rows.frame(PAIR_COLUMNS), len(records), "pair", notes)


# ---------------------------------------------------------------------------------------------
# TRL's preference (conversational) and unpaired preference sets


def _trl_matches(records: list[dict]) -> bool:
    first = records[0]
    return (
        "chosen" in first
        and "rejected" in first
        and (is_messages(first["chosen"]) or is_messages(first.get("prompt")))
    )


def _trl_standard(records: list) -> bool:
    """TRL's standard preference format: prompt, chosen and rejected as plain strings."""
    first = records[0] if records and isinstance(records[0], dict) else {}
    return isinstance(first.get("chosen"), str) and isinstance(first.get("rejected"), str)


def _read_trl(records, numbers, score_field, source, **hints) -> Imported:
    rows = _Rows()
    implicit = False
    for record, number in zip(records, numbers):
        chosen, rejected, prompt = record.get("chosen"), record.get("rejected"), record.get("prompt")
        if prompt is None and is_messages(chosen) and is_messages(rejected):
            implicit = True
            prompt, chosen, rejected = split_conversations(chosen, rejected)
        rows.add(
            number, question=prompt_text(prompt or ""), chosen=answer_text(chosen), rejected=answer_text(rejected)
        )
    notes = (
        ["No prompt field: the prompt is the turns the chosen and rejected conversations share."] if implicit else []
    )
    return Imported("pairs", rows.frame(PAIR_COLUMNS), len(records), "pair", notes)


def _unpaired_matches(records: list[dict]) -> bool:
    """prompt, completion and a boolean label. Every label is looked at: a 1-to-5 score in a column
    named label starts with a 1 or a 0 as often as not."""
    labels = ("true", "false", "1", "0")
    return {"prompt", "completion", "label"} <= set(records[0]) and all(
        isinstance(r, dict) and str(r.get("label")).strip().lower() in labels for r in records
    )


def _read_unpaired(records, numbers, score_field, source, **hints) -> Imported:
    rows = _Rows()
    for record, number in zip(records, numbers):
        label = str(record.get("label")).strip().lower()
        score = "1" if label in ("true", "1") else "0" if label in ("false", "0") else label
        rows.add(
            number,
            question=prompt_text(record.get("prompt")),
            answer=answer_text(record.get("completion")),
            score=score,
        )
    return Imported(
        "feedback",
        rows.frame(FEEDBACK_COLUMNS),
        len(records),
        "completion",
        ["label true is score 1, false is 0: a desirable and an undesirable completion of one prompt make a pair."],
        scale=(0.0, 1.0),
    )


# ---------------------------------------------------------------------------------------------
# UltraFeedback


ULTRAFEEDBACK_ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def _ultrafeedback_matches(records: list[dict]) -> bool:
    first = records[0]
    return "instruction" in first and isinstance(first.get("completions"), list)


def _aspect_rating(annotations, aspect: str):
    found = (annotations or {}).get(aspect)
    if isinstance(found, list):  # some copies keep one entry per annotation
        found = found[0] if found else None
    return found.get("Rating") if isinstance(found, dict) else found


def _mean_aspects(annotations) -> float | None:
    ratings = [_aspect_rating(annotations, a) for a in ULTRAFEEDBACK_ASPECTS]
    numbers = [float(r) for r in ratings if r is not None and _is_number(r)]
    return sum(numbers) / len(numbers) if numbers else None


def _read_ultrafeedback(records, numbers, score_field, source, **hints) -> Imported:
    choice = score_field or "fine-grained_score"
    allowed = ("fine-grained_score", "overall_score", *ULTRAFEEDBACK_ASPECTS)
    if choice not in allowed:
        raise InputError(
            f"UltraFeedback has no score {choice!r}", source=source, fix=f"use one of: {', '.join(allowed)}"
        )
    rows, derived = _Rows(), 0
    for record, number in zip(records, numbers):
        question = prompt_text(record.get("instruction", ""))
        completions = record.get("completions") or []
        if not completions:
            rows.add(number, "no_judgment", question=question)
        for completion in completions:
            score = (
                _aspect_rating(completion.get("annotations"), choice)
                if choice in ULTRAFEEDBACK_ASPECTS
                else completion.get(choice)
            )
            if score is None and choice == "fine-grained_score":  # a copy without it: as UltraFeedback defines it
                score = _mean_aspects(completion.get("annotations"))
                derived += score is not None
            rows.add(
                number,
                question=question,
                answer=answer_text(completion.get("response", "")),
                score=_score(score),
                model=completion.get("model", ""),
            )
    scale = (1.0, 10.0) if choice == "overall_score" else (1.0, 5.0)
    notes = [
        f"Scores from {choice!r} (others: {', '.join(a for a in allowed if a != choice)}; choose with the "
        "score column); `model` is kept for slices."
    ]
    if derived:
        notes.append(
            f"{counted(derived, 'completion')} had no fine-grained_score: it was taken as UltraFeedback defines it, "
            "the mean of its aspects' ratings."
        )
    return Imported(
        "feedback",
        rows.frame(FEEDBACK_COLUMNS),
        len(records),
        "completion",
        notes,
        scale,
        score_choices=list(allowed),
    )


# ---------------------------------------------------------------------------------------------
# HelpSteer2 (attribute scores 0-4 per response) and HelpSteer3 (two responses, a preference -3..+3)


HELPSTEER_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def _helpsteer2_matches(records: list[dict]) -> bool:
    return {"prompt", "response", *HELPSTEER_ATTRIBUTES} <= set(records[0])


def weighted_attributes(spec: str, attributes: tuple[str, ...], source: str) -> dict[str, float]:
    """ "helpfulness" or "0.65*helpfulness + 0.8*correctness - 0.1*verbosity" -> {attribute: weight}."""
    terms = re.findall(r"([+-]?)\s*(?:([0-9]*\.?[0-9]+)\s*\*\s*)?([A-Za-z_]+)", spec.replace(" ", ""))
    weights: dict[str, float] = {}
    rebuilt = ""
    for sign, number, name in terms:
        if name not in attributes:
            raise InputError(
                f"{name!r} is not one of this source's scores",
                source=source,
                fix=f"use one of {', '.join(attributes)}, or a weighted sum such as 0.65*helpfulness+0.8*correctness",
            )
        weights[name] = weights.get(name, 0.0) + (-1 if sign == "-" else 1) * float(number or 1)
        rebuilt += f"{sign}{number}{'*' if number else ''}{name}"
    if not weights or rebuilt.lstrip("+") != spec.replace(" ", "").lstrip("+"):
        raise InputError(
            f"cannot read the score {spec!r}",
            source=source,
            fix=f"name one of {', '.join(attributes)}, or a weighted sum such as 0.65*helpfulness+0.8*correctness",
        )
    return weights


def _read_helpsteer2(records, numbers, score_field, source, **hints) -> Imported:
    spec = score_field or "helpfulness"
    weights = weighted_attributes(spec, HELPSTEER_ATTRIBUTES, source)
    rows = _Rows()
    for record, number in zip(records, numbers):
        values = {a: _score(record.get(a)) for a in HELPSTEER_ATTRIBUTES}
        if len(weights) == 1 and next(iter(weights.values())) == 1:
            score = values[next(iter(weights))]
        elif all(_is_number(values[a]) for a in weights):
            score = f"{sum(w * float(values[a]) for a, w in weights.items()):.6g}"
        else:
            score = next(values[a] for a in weights if not _is_number(values[a]))  # parse_scores names it
        rows.add(
            number,
            question=prompt_text(record.get("prompt")),
            answer=answer_text(record.get("response")),
            score=score,
            **values,
        )
    lo = sum(min(0.0, 4 * w) for w in weights.values())
    hi = sum(max(0.0, 4 * w) for w in weights.values())
    return Imported(
        "feedback",
        rows.frame(FEEDBACK_COLUMNS),
        len(records),
        "response",
        [
            f"Scores from {spec!r} on a {lo:g}-to-{hi:g} scale (choose an attribute or a weighted sum with the "
            "score column); every attribute is kept for slices."
        ],
        (lo, hi),
        score_choices=list(HELPSTEER_ATTRIBUTES),
    )


def _helpsteer3_matches(records: list[dict]) -> bool:
    return {"response1", "response2", "overall_preference"} <= set(records[0])


def _read_helpsteer3(records, numbers, score_field, source, **hints) -> Imported:
    rows = _Rows()
    judgments: list[tuple[int, float]] = []
    for record, number in zip(records, numbers):
        context = record.get("context", record.get("prompt", ""))
        question = prompt_text(context)
        preference = record.get("overall_preference")
        if not _is_number(preference):
            rows.add(number, "no_judgment", question=question)
            continue
        preference = float(preference)
        first, second = answer_text(record.get("response1", "")), answer_text(record.get("response2", ""))
        chosen, rejected = (first, second) if preference <= 0 else (second, first)
        extras = {k: record[k] for k in ("domain", "language") if k in record}
        rows.add(
            number,
            question=question,
            chosen=chosen,
            rejected=rejected,
            margin=abs(preference),
            tie=preference == 0,
            **extras,
        )
        for judgment in record.get("individual_preference") or []:
            value = judgment.get("score") if isinstance(judgment, dict) else judgment
            if _is_number(value):
                judgments.append((len(rows.rows), float(value)))
    frame = rows.frame(PAIR_COLUMNS)
    notes = [
        "overall_preference -3..+3: the sign picks the better response, its size is the pair's margin, 0 is a "
        "tie; individual_preference gives the raters' agreement."
    ]
    return Imported(
        "pairs",
        frame,
        len(records),
        "pair",
        notes,
        judgments=pd.DataFrame(judgments, columns=["row", "value"]) if judgments else None,
    )


# ---------------------------------------------------------------------------------------------
# Chatbot Arena conversations


ARENA_WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")


def _arena_matches(records: list[dict]) -> bool:
    return {"model_a", "model_b", "winner", "conversation_a", "conversation_b"} <= set(records[0])


def _read_arena(records, numbers, score_field, source, **hints) -> Imported:
    rows = _Rows()
    for record, number in zip(records, numbers):
        a, b, winner = record.get("conversation_a"), record.get("conversation_b"), record.get("winner")
        extras = {k: record.get(k, "") for k in ("model_a", "model_b", "language")}
        if not (is_messages(a) and is_messages(b)) or winner not in ARENA_WINNERS:
            rows.add(number, "no_judgment", rater=record.get("judge", ""), **extras)
            continue
        prompt, rest_a, rest_b = split_conversations(a, b)
        chosen, rejected = (rest_b, rest_a) if winner == "model_b" else (rest_a, rest_b)
        rows.add(
            number,
            question=prompt_text(prompt),
            chosen=answer_text(chosen),
            rejected=answer_text(rejected),
            tie=winner.startswith("tie"),
            rater=record.get("judge", ""),
            winner=winner,
            **extras,
        )
    return Imported(
        "pairs",
        rows.frame(PAIR_COLUMNS),
        len(records),
        "battle",
        ["winner tie and tie (bothbad) are ties; the rater is the judge."],
    )


# ---------------------------------------------------------------------------------------------
# Langfuse and LangSmith: scores (feedback) joined to the traces (runs) they rate


@dataclass(frozen=True)
class _Tracing:
    name: str
    is_score: Callable[[dict], bool]
    is_trace: Callable[[dict], bool]
    trace_of: Callable[[dict], object]
    name_of: Callable[[dict], object]
    value_of: Callable[[dict], object]
    author_of: Callable[[dict], object]
    inputs: str
    outputs: str


def _langfuse_is_score(record: dict) -> bool:
    rates = "traceId" in record or "observationId" in record or isinstance(record.get("subject"), dict)
    return rates and "name" in record and ("value" in record or "stringValue" in record)


def _langfuse_target(record: dict):
    """What a score rates: an observation (v3 `subject` of kind observation, v2 `observationId`) or a trace
    (v3 `subject` of kind trace, v2 `traceId`). An observation's id is tried first, then its trace's."""
    subject = record.get("subject") if isinstance(record.get("subject"), dict) else {}
    if subject.get("kind") == "observation":
        return (subject.get("id"), subject.get("traceId"))
    if subject.get("kind") == "trace":
        return (subject.get("id"),)
    if subject:  # a session's or an experiment's score rates no one answer
        return ()
    return tuple(t for t in (record.get("observationId"), record.get("traceId")) if t)


def _langfuse_value(record: dict):
    """The number a score gives. A CATEGORICAL score's value is its category (v3 `value`, v2 `stringValue`):
    a name, not a number, so it reads as no number rather than 0."""
    if record.get("dataType") == "CATEGORICAL":
        return record.get("stringValue", record.get("value"))
    return record.get("value") if record.get("value") is not None else record.get("stringValue")


LANGFUSE = _Tracing(
    "Langfuse scores and traces",
    is_score=_langfuse_is_score,
    # a trace (the traces list) or an observation (GET /api/public/v2/observations, the SDK 5 read path)
    is_trace=lambda r: "id" in r and ("input" in r or "output" in r) and not _langfuse_is_score(r),
    trace_of=_langfuse_target,
    name_of=lambda r: r.get("name"),
    value_of=_langfuse_value,
    # An end user's score has no author: the users are unknown, not one rater (`source` is API or EVAL).
    author_of=lambda r: r.get("authorUserId") or "",
    inputs="input",
    outputs="output",
)
LANGSMITH = _Tracing(
    "LangSmith feedback and runs",
    is_score=lambda r: "run_id" in r and "key" in r,
    is_trace=lambda r: "id" in r and ("inputs" in r or "outputs" in r),
    trace_of=lambda r: (r.get("run_id"),),
    name_of=lambda r: r.get("key"),
    value_of=lambda r: r.get("score") if r.get("score") is not None else r.get("value"),
    author_of=lambda r: (r.get("feedback_source") or {}).get("user_id") or r.get("created_by") or "",
    inputs="inputs",
    outputs="outputs",
)


def _tracing_matches(tool: _Tracing) -> Callable[[list[dict]], bool]:
    def matches(records: list[dict]) -> bool:
        # Every record is looked at (stopping at the first of each kind): an export may list 10,000
        # traces before its first score.
        rows = [r for r in records if isinstance(r, dict)]
        return any(tool.is_score(r) for r in rows) and any(tool.is_trace(r) for r in rows)

    return matches


def _tracing_reader(tool: _Tracing):
    def read(records, numbers, score_field, source, **hints) -> Imported:
        traces = {str(r["id"]): (r, n) for r, n in zip(records, numbers) if tool.is_trace(r)}
        # A trace's own input and output, where the file lists observations: its root observation's.
        roots = {
            str(r["traceId"]): (r, n)
            for r, n in zip(records, numbers)
            if tool.is_trace(r) and r.get("traceId") and not r.get("parentObservationId")
        }
        by_id = {**roots, **traces}

        def target(score: dict):
            found = next((t for t in tool.trace_of(score) if str(t) in by_id), None)
            return (str(found), by_id[str(found)]) if found is not None else (None, None)

        scores = [(r, n) for r, n in zip(records, numbers) if tool.is_score(r)]
        names = Counter(str(tool.name_of(r)) for r, _ in scores if _is_number(tool.value_of(r)))
        if score_field and score_field not in {str(tool.name_of(r)) for r, _ in scores}:
            raise InputError(
                f"no score named {score_field!r}",
                source=source,
                fix=f"use one of: {', '.join(map(repr, sorted({str(tool.name_of(r)) for r, _ in scores})))}",
            )
        chosen = score_field or (names.most_common(1)[0][0] if names else None)
        rows, rated = _Rows(), set()
        for record, number in zip(records, numbers):
            if tool.is_score(record):
                trace_id, trace = target(record)
                author = tool.author_of(record)
                if str(tool.name_of(record)) != chosen:
                    rows.add(number, "other_field", rater=author, score_name=tool.name_of(record))
                elif trace is None:
                    rows.add(number, "no_trace", score=_score(tool.value_of(record)), rater=author, score_name=chosen)
                else:
                    rated.add(str(trace[0]["id"]))
                    rows.add(
                        number,
                        question=_inputs_text(trace[0].get(tool.inputs)),
                        answer=_outputs_text(trace[0].get(tool.outputs)),
                        score=_score(tool.value_of(record)),
                        rater=author,
                        score_name=chosen,
                        trace=trace_id,
                        trace_record=trace[1],
                    )
            elif not tool.is_trace(record):  # a trace is decided below, once every score has been seen
                rows.add(number, "no_judgment")
        for trace_id, (trace, number) in traces.items():
            if trace_id not in rated:
                rows.add(
                    number,
                    "no_judgment",
                    question=_inputs_text(trace.get(tool.inputs)),
                    answer=_outputs_text(trace.get(tool.outputs)),
                    trace=trace_id,
                )
        frame = rows.frame(FEEDBACK_COLUMNS)
        others = [n for n in names if n != chosen]
        notes = [
            f"{len(traces)} traces and {len(scores)} scores; ratings from the score {chosen!r}"
            + (f" (others: {', '.join(map(repr, others))})" if others else "")
            + "; choose another with the score column. A trace rated by no such score is counted as no_judgment "
            "(a trace's own row is `trace_record`)."
        ]
        words = sorted({str(tool.value_of(r)) for r, _ in scores if str(tool.name_of(r)) == chosen} - {"None"})
        if words and not any(_is_number(w) for w in words):
            notes.append(
                f"The score {chosen!r} gives names, not numbers ({', '.join(map(repr, words[:5]))}): a categorical "
                "score cannot rank answers. Choose a numeric score, or map its categories to numbers in the tool."
            )
        every = sorted({str(tool.name_of(r)) for r, _ in scores})
        return Imported("feedback", frame, len(records), "score", notes, score_choices=every)

    return read


# ---------------------------------------------------------------------------------------------
# Recognising a source


SOURCES: tuple[Source, ...] = (
    Source("label-studio", "Label Studio JSON export", _label_studio_matches, _read_label_studio),
    Source(
        "label-studio-min",
        "Label Studio JSON-MIN or CSV export",
        _label_studio_min_matches,
        _read_label_studio_min,
        flat=True,
    ),
    Source("argilla", "Argilla dataset export", _argilla_matches, _read_argilla),
    Source("openai", "OpenAI preference fine-tuning JSONL", _openai_matches, _read_openai),
    Source("ultrafeedback", "UltraFeedback", _ultrafeedback_matches, _read_ultrafeedback),
    Source("helpsteer3", "HelpSteer3 preference", _helpsteer3_matches, _read_helpsteer3),
    Source("helpsteer2", "HelpSteer2", _helpsteer2_matches, _read_helpsteer2, flat=True),
    Source("arena", "Chatbot Arena conversations", _arena_matches, _read_arena),
    Source("langfuse", LANGFUSE.name, _tracing_matches(LANGFUSE), _tracing_reader(LANGFUSE), whole=True),
    Source("langsmith", LANGSMITH.name, _tracing_matches(LANGSMITH), _tracing_reader(LANGSMITH), whole=True),
    Source("trl", "TRL preference set (conversational)", _trl_matches, _read_trl),
    Source(
        "trl-unpaired",
        "TRL unpaired preference set (prompt, completion, label)",
        _unpaired_matches,
        _read_unpaired,
        flat=True,
        whole=True,
    ),
)
# "table": read the columns as they are, recognising no source.
FORMATS = ("auto", "table", *(s.key for s in SOURCES))


# One half of a tracing tool's export: the half each holds, what it lacks, and the SDK call that gives it.
HALVES = (
    (
        "Langfuse scores",
        _langfuse_is_score,
        "the traces they rate (their input and output)",
        "langfuse.api.observations.get_many(fields='core,basic,io'), or the traces list, saved as JSON",
    ),
    (
        "Langfuse traces or observations",
        lambda r: LANGFUSE.is_trace(r) and any(k in r for k in ("traceId", "projectId", "htmlPath")),
        "the scores that rate them",
        "langfuse.api.scores.get_many() (GET /api/public/v3/scores), saved as JSON",
    ),
    (
        "LangSmith feedback",
        LANGSMITH.is_score,
        "the runs it rates (their inputs and outputs)",
        "client.list_runs(...) or POST /runs/query, saved as JSON",
    ),
    (
        "LangSmith runs",
        lambda r: LANGSMITH.is_trace(r) and any(k in r for k in ("run_type", "dotted_order", "trace_id")),
        "the feedback that rates them",
        "client.list_feedback(run_ids=...), saved as JSON",
    ),
)


def half_export(records: list) -> tuple[str, str] | None:
    """(what is missing, how to fix it) for a file that holds one half of a tracing tool's export."""
    seen = sample(records)
    for name, holds, lacks, call in HALVES:
        if seen and sum(1 for r in seen if holds(r)) * 2 > len(seen):
            return (
                f"this is {name} alone ({len(records)} records): pairs need {lacks} too, which this file does "
                "not hold",
                f"export them too ({call}) and give both files: `python -m rm_demo pairs FIRST SECOND` "
                "(traces or runs first), or the Data tab's Scores file box",
            )
    return None


def source_named(key: str) -> Source | None:
    if key in ("auto", "table", "", None):
        return None
    for source in SOURCES:
        if source.key == key:
            return source
    raise InputError(f"unknown format {key!r}", fix=f"use one of: {', '.join(FORMATS)}")


# Records looked at to recognise a source: the first ones and some spread over the file. A record of an
# export need not show its kind (Argilla lists pending records, without responses, first).
RECOGNITION_SAMPLE = 200


def sample(records: list) -> list[dict]:
    head = records[: RECOGNITION_SAMPLE // 2]
    step = max(1, len(records) // (RECOGNITION_SAMPLE // 2))
    return [r for r in head + records[len(head) :: step] if isinstance(r, dict)]


def _matches_sample(source: Source, records: list) -> int:
    """How many sampled records look like `source` (the tracing tools: 1 for a score and a trace anywhere)."""
    if source.whole:
        return int(source.matches(records))
    return sum(1 for record in sample(records) if source.matches([record]))


def recognise(records: list, flat_only: bool = False) -> Source | None:
    """The source most of a sample of the records looks like (tracing exports: a score and a trace anywhere)."""
    if not records or not isinstance(records[0], dict):
        return None
    counts = [(_matches_sample(s, records), -i, s) for i, s in enumerate(SOURCES) if s.flat or not flat_only]
    best = max(counts, default=(0, 0, None), key=lambda c: c[:2])
    return best[2] if best[0] else None


def import_records(
    records: list,
    numbers: list[int],
    fmt: str,
    score_field: str | None,
    source: str,
    flat_only: bool = False,
    answer_field: str | None = None,
) -> Imported | None:
    """Read `records` as the source `fmt` names ("auto": recognise it), or None for a plain table."""
    if fmt == "table":
        return None
    chosen = source_named(fmt) if fmt not in ("auto", "", None) else recognise(records, flat_only)
    if chosen is None:
        half = None if flat_only else half_export(records)
        if half:
            raise InputError(half[0], source=source, fix=half[1])
        return None
    if chosen.key == "trl" and _trl_standard(records):  # TRL's standard (string) format is a plain pairs table
        return None
    if fmt not in ("auto", "", None) and not _matches_sample(chosen, records):
        found = recognise(records, flat_only)
        raise InputError(
            f"this does not look like a {chosen.name} file (none of its first records has that format's keys)"
            + (f"; it looks like {found.key!r} ({found.name})" if found else ""),
            source=source,
            fix=f"pick --format {found.key}" if found else "leave the format on auto, or pick the file's own format",
        )
    bad = next((n for r, n in zip(records, numbers) if not isinstance(r, dict)), None)
    if bad is not None:
        raise InputError(f"record {bad} is not a JSON object", source=source, fix="write one object per record")
    imported = chosen.read(records, numbers, score_field, source, answer_field=answer_field)
    imported.format = chosen.name
    return imported
