"""Write the exports in this folder with the tools' own Python packages, offline.

Run once by hand (not in CI; the packages are not rm_demo's dependencies):

    python -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install argilla langfuse langsmith label-studio-sdk
    /tmp/fixvenv/bin/python tests/data/formats/real/make_real_exports.py

Each file is what the named package writes for records built here (SOURCES.md says which call wrote
which file, and with which package version). The texts and scores are made up; the shapes are the tools'.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).parent
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
QUESTIONS = {
    "q1": ("How do I boil an egg?", "Simmer it for 9 minutes, then cool it in cold water.", "Boil it."),
    "q2": ("Name a primary colour.", "Red.", "Purple."),
    "q3": ("What is 2 + 2?", "4.", "22."),
}


def uid(n: int) -> str:
    return str(uuid.UUID(int=n))


def dump(name: str, data) -> None:
    text = data if isinstance(data, str) else json.dumps(data, indent=1, ensure_ascii=False, default=str)
    (HERE / name).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def argilla_exports() -> None:
    from argilla import Record, Response
    from argilla.records._io._generic import GenericIO
    from argilla.records._io._json import JsonIO

    records = []
    for i, (question, good, bad) in enumerate(QUESTIONS.values()):
        # The first record of each question is still pending (no responses yet): Argilla lists records in
        # insertion order, and pending ones often come first.
        records.append(Record(id=uid(100 + 10 * i), fields={"prompt": question, "response": "I am not sure."}))
        for j, (answer, scores) in enumerate(((good, (5, 4)), (bad, (1, 2)))):
            responses = [
                Response("quality", score, user_id=uid(k + 1), status="submitted") for k, score in enumerate(scores)
            ]
            records.append(
                Record(id=uid(101 + 10 * i + j), fields={"prompt": question, "response": answer}, responses=responses)
            )
    # records.to_list(flatten=True) (and to_datasets) write this; one object per line, as people save it
    flat = GenericIO.to_list(records, flatten=True)
    dump("argilla_flat_pending_first.jsonl", "\n".join(json.dumps(r, default=str, ensure_ascii=False) for r in flat))
    # The ranking template: three responses per prompt, ranked by each annotator (rank 1 best)
    ranked = []
    for i, (question, good, bad) in enumerate(QUESTIONS.values()):
        fields = {"prompt": question, "response1": bad, "response2": good, "response3": "I am not sure."}
        order = [
            {"value": "response2", "rank": 1},
            {"value": "response3", "rank": 2},
            {"value": "response1", "rank": 3},
        ]
        ranked.append(
            Record(
                id=uid(300 + i),
                fields=fields,
                responses=[Response("ranking", order, user_id=uid(1), status="submitted")],
            )
        )
    flat = GenericIO.to_list(ranked, flatten=True)
    dump("argilla_ranking.jsonl", "\n".join(json.dumps(r, default=str, ensure_ascii=False) for r in flat))
    # records.to_json(path) and Dataset.to_disk(path)/records.json write the nested shape
    (HERE / "argilla_nested_records.json").unlink(missing_ok=True)  # to_json refuses to overwrite
    JsonIO.to_json(records, HERE / "argilla_nested_records.json")


def langfuse_exports() -> None:
    """Langfuse SDK 5.x reads scores from GET /api/public/v3/scores (a score names what it rates as
    `subject: {kind, id}`) and traces' inputs and outputs from GET /api/public/v2/observations (the traces
    list is gone from the SDK): a trace's own input and output are its root observation's."""
    from langfuse.api.observations.types.observations_v2response import ObservationsV2Response
    from langfuse.api.scores.types.get_scores_v3response import GetScoresV3Response

    scores, observations = [], []

    def score(n: int, name: str, data_type: str, value, author, subject: dict) -> dict:
        return {
            "dataType": data_type,
            "value": value,
            "id": f"score-{n}",
            "projectId": "p",
            "name": name,
            "source": "ANNOTATION" if author else "API",
            "timestamp": T0.isoformat(),
            "environment": "default",
            "createdAt": T0.isoformat(),
            "updatedAt": T0.isoformat(),
            "authorUserId": author,
            "subject": subject,
        }

    for i, (question, good, bad) in enumerate(QUESTIONS.values()):
        for j, (answer, value) in enumerate(((good, 1.0), (bad, 0.0))):
            trace_id, generation_id = f"trace-{i}-{j}", f"gen-{i}-{j}"
            # an @observe-decorated function: the root observation's input is the call's arguments
            root = {"args": [question], "kwargs": {}}
            for oid, parent, kind, inputs in (
                (f"root-{i}-{j}", None, "SPAN", root),
                (generation_id, f"root-{i}-{j}", "GENERATION", [{"role": "user", "content": question}]),
            ):
                observations.append(
                    {
                        "id": oid,
                        "traceId": trace_id,
                        "startTime": T0.isoformat(),
                        "endTime": T0.isoformat(),
                        "projectId": "p",
                        "parentObservationId": parent,
                        "type": kind,
                        "isRootObservation": parent is None,
                        "name": "answer" if parent is None else "llm",
                        "input": inputs,
                        "output": answer if parent is None else {"role": "assistant", "content": answer},
                    }
                )
            trace = {"kind": "trace", "id": trace_id}
            n = len(scores)
            scores += [
                score(n + 1, "user-feedback", "NUMERIC", value, "user-ann", trace),
                score(n + 2, "user-feedback", "NUMERIC", value, None, trace),  # an end user's thumbs: no author
                # a CATEGORICAL score: its value is its category's name
                score(n + 3, "verdict", "CATEGORICAL", "helpful" if value else "unhelpful", "user-ann", trace),
                # an LLM judge's score on the generation itself
                score(
                    n + 4,
                    "judge",
                    "NUMERIC",
                    0.9 if value else 0.2,
                    None,
                    {"kind": "observation", "id": generation_id, "traceId": trace_id},
                ),
            ]
    # Parsed as the SDK's client parses each response, and serialised back by the SDK's own models
    from langfuse.api.core.pydantic_utilities import parse_obj_as

    for name, model, data in (
        ("langfuse_v3_scores.json", GetScoresV3Response, scores),
        ("langfuse_v2_observations.json", ObservationsV2Response, observations),
    ):
        dump(name, json.dumps(json.loads(parse_obj_as(model, {"data": data, "meta": {"limit": 50}}).json()), indent=1))


def langsmith_exports() -> None:
    from langsmith import schemas

    runs, feedback = [], []
    for i, (question, good, bad) in enumerate(QUESTIONS.values()):
        for j, (answer, value) in enumerate(((good, 1), (bad, 0))):
            run = schemas.Run(
                id=uuid.UUID(int=1000 + 10 * i + j),
                name="ChatOpenAI",
                start_time=T0,
                run_type="llm",
                inputs={"question": question},
                outputs={"output": answer},
                trace_id=uuid.UUID(int=1000 + 10 * i + j),
            )
            runs.append(json.loads(run.json()))
            fb = schemas.Feedback(
                id=uuid.UUID(int=5000 + 10 * i + j),
                run_id=run.id,
                trace_id=run.trace_id,
                key="user_score",
                score=value,
                created_at=T0,
                modified_at=T0,
                feedback_source={"type": "app", "user_id": uid(7)},
            )
            feedback.append(json.loads(fb.json()))
    # POST /runs/query answers {"runs": [...], "cursors": {...}}; list_feedback() yields Feedback objects
    dump("langsmith_runs_query.json", {"runs": runs, "cursors": {"next": None}})
    dump("langsmith_feedback.jsonl", "\n".join(json.dumps(f) for f in feedback))
    # Client.list_runs() yields the same Run objects; saved one per line, as a script saving them would
    dump("langsmith_list_runs.jsonl", "\n".join(json.dumps(r) for r in runs))


LABEL_CONFIG = """<View>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt"/>
  <Text name="model_a" value="$model_a"/>
  <Text name="model_b" value="$model_b"/>
  <Text name="answer1" value="$answer1"/>
  <Text name="answer2" value="$answer2"/>
  <Pairwise name="comparison" toName="answer1,answer2" selectionStyle="background-color: #BEEFEE"/>
</View>"""


def label_studio_exports() -> None:
    from label_studio_sdk.converter import Converter

    tasks = []
    for i, (question, good, bad) in enumerate(QUESTIONS.values()):
        left_good = i % 2 == 0
        tasks.append(
            {
                "id": i + 1,
                # imported from a CSV with model_a/model_b columns before the answers
                "data": {
                    "prompt": question,
                    "model_a": "gpt-4o",
                    "model_b": "llama-3-8b",
                    "answer1": good if left_good else bad,
                    "answer2": bad if left_good else good,
                },
                "annotations": [
                    {
                        "id": 10 + i,
                        "completed_by": 1,
                        "was_cancelled": False,
                        "result": [
                            {
                                "id": f"r{i}",
                                "type": "pairwise",
                                "from_name": "comparison",
                                "to_name": "comparison",  # as the RLHF tutorial's export writes it
                                "origin": "manual",
                                "value": {"selected": "left" if left_good else "right"},
                            }
                        ],
                        "created_at": T0.isoformat(),
                        "updated_at": T0.isoformat(),
                        "lead_time": 3.2,
                    }
                ],
                "predictions": [],
                "created_at": T0.isoformat(),
                "updated_at": T0.isoformat(),
                "project": 1,
            }
        )
    dump("label_studio_pairwise_model_fields.json", tasks)
    (HERE / "label_studio_pairwise_config.xml").write_text(LABEL_CONFIG + "\n")
    converter = Converter(LABEL_CONFIG, str(HERE))
    out = HERE / "_converted"
    for fmt, name in (("JSON_MIN", "label_studio_pairwise_json_min.json"), ("CSV", "label_studio_pairwise.csv")):
        converter.convert(str(HERE / "label_studio_pairwise_model_fields.json"), str(out), fmt, is_dir=False)
        written = next(p for p in out.iterdir() if p.suffix in (".json", ".csv"))
        written.rename(HERE / name)
    out.rmdir()


if __name__ == "__main__":
    argilla_exports()
    langfuse_exports()
    langsmith_exports()
    label_studio_exports()
    versions = {p: version(p) for p in ("argilla", "langfuse", "langsmith", "label-studio-sdk")}
    print(json.dumps(versions))
