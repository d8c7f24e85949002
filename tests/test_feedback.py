"""Reading real-world feedback files: encodings, delimiters, columns, normalisation."""

import json

import pandas as pd
import pytest

from rm_demo.errors import InputError
from rm_demo.feedback import (
    ReadOptions,
    detect_encoding,
    normalize_answer,
    normalize_question,
    read_feedback,
    split_shared_prompt,
)

FLOAT_Q = "How do I float on my back in the water?"


def test_seed_file_is_mac_roman_and_reads_right(seed_csv):
    table = read_feedback(seed_csv)
    assert table.encoding == "mac_roman" and table.encoding_detected
    answers = set(table.frame["answer"])
    assert any("I don\u2019t know anything" in a for a in answers)
    assert FLOAT_Q in set(table.frame["question"])  # trailing no-break space removed
    assert table.column_mapping == {"question": "question", "answer": "answer", "score": "feedback"}
    assert list(table.frame["row"]) == [2, 3, 4, 5, 6, 7]


def test_encoding_override_is_used_and_reported(seed_csv):
    table = read_feedback(seed_csv, ReadOptions(encoding="cp1252"))
    assert table.encoding == "cp1252" and not table.encoding_detected
    assert any("don\u00d5t" in a for a in table.frame["answer"])  # what the article printed


TEXT = "question,answer,score\nCafé \u2019quote\u2019?,Crème brûlée — yes,5\nCafé \u2019quote\u2019?,No,1\n"


@pytest.mark.parametrize(
    "encoding, expected",
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16"),
        ("cp1252", "cp1252"),
        ("mac_roman", "mac_roman"),
    ],
)
def test_encodings_round_trip(write_file, encoding, expected):
    path = write_file("f.csv", TEXT, encoding)
    table = read_feedback(path)
    assert table.encoding == expected
    assert table.frame["question"].iloc[0] == "Café \u2019quote\u2019?"
    assert table.frame["answer"].iloc[0] == "Crème brûlée — yes"
    assert list(table.frame.columns) == ["row", "question", "answer", "score"]


def test_detect_utf16_without_bom():
    assert detect_encoding("question,answer\n".encode("utf-16-le")) == "utf-16-le"


def test_wrong_explicit_encoding_names_line_and_fix(write_file):
    path = write_file("f.csv", "question,answer,score\nq,a,1\nq,\u00e9\u00e9,2\n", "cp1252")
    with pytest.raises(InputError) as err:
        read_feedback(path, ReadOptions(encoding="utf-8"))
    assert "f.csv" in str(err.value) and "line 3" in str(err.value) and "How to fix" in str(err.value)


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_delimiter_is_detected(write_file, delimiter):
    body = (
        delimiter.join(["Question", "Response", "Rating"]) + "\n" + delimiter.join(["q, with comma", "a", "4"]) + "\n"
    )
    if delimiter == ",":
        body = body.replace("q, with comma", '"q, with comma"')
    table = read_feedback(write_file("f.txt", body))
    assert table.delimiter == delimiter
    assert table.frame["question"].iloc[0] == "q, with comma"


def test_aliases_case_insensitive_and_extra_columns_listed(write_file):
    path = write_file("f.csv", "ID, Prompt ,Completion,Rater,REWARD\n1,q,a,bob,3\n")
    table = read_feedback(path)
    assert table.column_mapping == {"question": "Prompt", "answer": "Completion", "score": "REWARD", "rater": "Rater"}
    assert table.ignored_columns == ["ID"]  # a rater column is read: several raters per answer are combined


def test_explicit_mapping_overrides(write_file):
    path = write_file("f.csv", "q,a,helpfulness,score\nx,y,5,1\n")
    table = read_feedback(path, ReadOptions(question_col="q", answer_col="a", score_col="helpfulness"))
    assert table.frame["score"].iloc[0] == "5"
    assert table.ignored_columns == ["score"]


def test_missing_column_message_lists_columns_and_fix(write_file):
    path = write_file("f.csv", "question,answer,stars\nq,a,1\n")
    with pytest.raises(InputError) as err:
        read_feedback(path)
    msg = str(err.value)
    assert "f.csv" in msg and "score" in msg and "'stars'" in msg and "--score-col" in msg


def test_unknown_explicit_column(write_file):
    with pytest.raises(InputError, match="no column 'nope'"):
        read_feedback(write_file("f.csv", "question,answer,score\nq,a,1\n"), ReadOptions(score_col="nope"))


def test_normalisation_groups_question_variants(write_file):
    # NFD vs NFC é, double space, tab, no-break and narrow no-break spaces, leading/trailing blanks.
    variants = ["Cafe\u0301  menu?", " Caf\u00e9 menu?\u00a0", "Caf\u00e9\tmenu?", "Caf\u00e9\u202fmenu?"]
    rows = "".join(f'"{q}",answer {i},{i + 1}\n' for i, q in enumerate(variants))
    table = read_feedback(write_file("f.csv", "question,answer,score\n" + rows))
    assert set(table.frame["question"]) == {"Caf\u00e9 menu?"}


@pytest.mark.parametrize("odd", ["How  now?", "Hownow  ?", "How\tnow?", "How now? ", "How n\u00f3w?\u00a0"])
def test_whole_column_checks_still_find_the_one_string_to_fix(odd):
    # A clean ASCII column skips the per-string checks; one dirty string (double space at an even
    # or odd byte offset, a tab, an edge space, a no-break space) must still be found and fixed.
    clean = [f"Question {i}?" for i in range(50)]
    questions = normalize_question(pd.Series(clean[:25] + [odd] + clean[25:], dtype="str"))
    fixed = questions.iloc[25]
    assert list(questions.drop(index=25)) == clean
    assert fixed == " ".join(odd.replace("\u00a0", " ").split()) and fixed != odd
    answers = normalize_answer(pd.Series(clean + ["  keep  inside  "], dtype="str"))
    assert answers.iloc[-1] == "keep  inside" and list(answers.iloc[:-1]) == clean


def test_answers_keep_line_breaks(write_file):
    table = read_feedback(write_file("f.csv", 'question,answer,score\nq,"  step 1\n  step 2  ",4\n'))
    assert table.frame["answer"].iloc[0] == "step 1\n  step 2"


def test_jsonl_and_json(write_file):
    recs = [{"instruction": "q", "output": "a", "rating": 5}, {"instruction": "q", "output": "b", "rating": None}]
    jl = read_feedback(write_file("f.jsonl", "\n".join(json.dumps(r) for r in recs) + "\n\n"))
    assert jl.format == "jsonl" and list(jl.frame["score"]) == ["5", ""] and list(jl.frame["row"]) == [1, 2]
    js = read_feedback(write_file("f.json", json.dumps({"data": recs})))
    assert js.format == "json" and list(js.frame["answer"]) == ["a", "b"]


def test_bad_jsonl_line_is_named(write_file):
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_feedback(write_file("f.jsonl", '{"question": "q"}\n{oops\n'))


def test_ragged_csv_names_line(write_file):
    with pytest.raises(InputError) as err:
        read_feedback(write_file("f.csv", "question,answer,score\nq,a,1\nq,a,b,c,2\n"))
    assert "line 3" in str(err.value) and "quotes" in str(err.value)


def test_empty_file(write_file):
    with pytest.raises(InputError, match="empty"):
        read_feedback(write_file("f.csv", b"  \n"))


def test_pairs_file_is_recognised(write_file):
    path = write_file("p.csv", "Instruction,Chosen,Rejected,note\nq,good,bad,x\n")
    table = read_feedback(path)
    assert table.kind == "pairs"
    assert table.column_mapping == {"question": "Instruction", "chosen": "Chosen", "rejected": "Rejected"}
    assert table.ignored_columns == ["note"]


def test_transcript_pairs_split_shared_prompt():
    chosen = "\n\nHuman: hi there\n\nAssistant: Hello! How can I help?"
    rejected = "\n\nHuman: hi there\n\nAssistant: Go away."
    prompt, c, r = split_shared_prompt(chosen, rejected)
    assert prompt == "\n\nHuman: hi there\n\nAssistant:"
    assert (c, r) == (" Hello! How can I help?", " Go away.")
    assert split_shared_prompt("The cat sat", "The cow sat") == ("The ", "cat sat", "cow sat")


def test_non_utf8_byte_after_a_long_ascii_start(write_file):
    # The fast path hands plain-looking files to pyarrow; a cp1252 byte deep in the file sends it back to detection.
    filler = "".join(f"question {i},answer {i},3\n" for i in range(4000))
    path = write_file("late.csv", ("question,answer,score\n" + filler + "q,I don\u2019t know,5\n").encode("cp1252"))
    table = read_feedback(path)
    assert table.encoding == "cp1252" and table.frame["answer"].iloc[-1] == "I don\u2019t know"
    assert len(table.frame) == 4001


@pytest.mark.parametrize("quoted", [True, False])
def test_big_files_with_and_without_quotes_read_the_same(write_file, quoted):
    # Over 16 MB so pyarrow reads in several blocks; with quotes, line breaks inside fields survive.
    answer = '"line one\nline two, with a comma"' if quoted else "plain answer"
    body = "".join(f"question {i},{answer} {i if not quoted else ''},{i % 5 + 1}\n" for i in range(400_000))
    table = read_feedback(write_file("big.csv", "question,answer,score\n" + body))
    assert len(table.frame) == 400_000
    expected = "line one\nline two, with a comma" if quoted else "plain answer 399999"
    assert table.frame["answer"].iloc[-1] == expected


def test_every_missing_column_is_named_at_once(write_file):
    """One round trip, not three: the question, the answer and the score named in one message."""
    from rm_demo.errors import InputError
    from rm_demo.feedback import read_feedback

    path = write_file("odd.csv", "Topic,Text,Stars\nQ,a,5\nQ,b,1\n")
    with pytest.raises(InputError) as caught:
        read_feedback(path)
    message = str(caught.value)
    assert "no column for the question, the answer and the score" in message
    assert "--question-col NAME --answer-col NAME --score-col NAME" in message
    assert "*Question column*, *Answer column*, *Score column* menus" in caught.value.app_fix
