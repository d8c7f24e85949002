"""Data and Pairs tabs: handlers called directly, no browser."""

import json

import pandas as pd

from rm_demo.app import data_tab, pairs_tab, train_tab
from rm_demo.app.state import AUTO, DataSettings, Session
from rm_demo.app.train_tab import TrainForm
from rm_demo.pairs import PairsResult
from rm_demo.run_pairs import derive

AUTO_SETTINGS = DataSettings()

VISITOR = "v" * 32  # a browser id, as the page load gives every visitor


def test_seed_sample_view(seed_csv):
    view = data_tab.derive_view(str(seed_csv), "seed_feedback.csv", AUTO_SETTINGS)
    assert view.ok and "mac_roman" in view.message and "comma" in view.message
    assert len(pairs_tab.pairs_table(view.pairs)) == 3
    assert list(pairs_tab.pairs_table(view.pairs).columns)[3:] == ["chosen score", "rejected score", "margin"]
    assert "6** rows read = **6** used + **0** dropped" in view.summary
    assert len(view.figures) == 3 and all(fig.layout.xaxis.title.text for fig in view.figures)


def test_settings_change_the_view(seed_csv):
    settings = DataSettings(encoding="cp1252", strategy="all-pairs", min_margin=3.5)
    view = data_tab.derive_view(str(seed_csv), "seed.csv", settings)
    assert view.ok and "cp1252" in view.message and len(view.pairs) == 1
    assert "below_min_margin" in view.summary


def test_bad_file_is_a_message_not_a_traceback(write_file):
    path = write_file("bad.csv", "question,reply,stars\nq,a,1\n")
    view = data_tab.derive_view(str(path), "bad.csv", AUTO_SETTINGS)
    assert (
        not view.ok and "bad.csv" in view.message and "How to fix" in view.message and "Traceback" not in view.message
    )
    assert view.columns == ["question", "reply", "stars"]  # offered in the column menus, to fix it there


def test_upload_limit(write_file, monkeypatch):
    monkeypatch.setenv("RM_DEMO_MAX_UPLOAD_MB", "0.00001")
    path = write_file("big.csv", "question,answer,score\n" + "q,a,1\n" * 10)
    view = data_tab.derive_view(str(path), "big.csv", AUTO_SETTINGS)
    assert not view.ok and "limit" in view.message


def test_dropped_rows_table(write_file):
    path = write_file("f.csv", "question,answer,score\nq,a,5\nq,b,1\nq,c,\n")
    view = data_tab.derive_view(str(path), "f.csv", AUTO_SETTINGS)
    assert view.dropped.to_dict("records") == [
        {"row": 4, "reason": "missing_score", "question": "q", "answer": "c", "score": ""}
    ]


def test_the_browser_gets_a_page_of_a_big_table(write_file):
    rows = "".join(f"q{i},good,5\nq{i},bad,1\n" for i in range(pairs_tab.PREVIEW_ROWS + 50))
    view = data_tab.derive_view(str(write_file("big.csv", "question,answer,score\n" + rows)), "big.csv", AUTO_SETTINGS)
    assert (
        len(view.pairs) == pairs_tab.PREVIEW_ROWS + 50
        and len(pairs_tab.pairs_table(view.pairs)) == pairs_tab.PREVIEW_ROWS
    )
    assert f"first {pairs_tab.PREVIEW_ROWS} pairs" in view.summary


def test_exports_are_safe_for_spreadsheets():
    session = Session(data_name="x.csv")
    pairs = pd.DataFrame(
        {"prompt": ["=HYPERLINK(1)", "ok"], "chosen": ["+1", "fine"], "rejected": ["@x", "-2"], "margin": [1.0, 2.0]}
    )
    result = PairsResult(pairs, pd.DataFrame({"row": [2, 3], "status": ["used", "used"]}), None)
    session = pairs_tab.export_pairs(session, result)
    text = open(session.pairs_csv, encoding="utf-8").read()
    assert "'=HYPERLINK(1)" in text and "'+1" in text and "'@x" in text and "'-2" in text and ",1.0" in text
    assert json.loads(open(session.pairs_jsonl).readline())["prompt"] == "=HYPERLINK(1)"  # JSONL keeps the data as is


def test_widgets_blank_means_default_not_zero():
    settings = DataSettings.from_widgets("auto", "auto", AUTO, AUTO, AUTO, "all-pairs", None, "", None)
    assert settings.chosen_min is None and settings.rejected_max is None and settings.question_col is None
    assert settings.pair_options().min_margin == 1.0  # a blank minimum gap is the default 1, not 0


# Defect 1: preview and training used different settings.


def test_columns_mapped_in_the_menus_reach_training(write_file, runs, started):
    path = write_file("f.csv", "q,a,stars\nx,good,5\nx,bad,1\ny,fine,4\ny,poor,2\n")
    settings = DataSettings(question_col="q", answer_col="a", score_col="stars")
    session, view = data_tab.load_data(Session(owner=VISITOR), str(path), "f.csv", settings)
    assert view.ok and len(view.pairs) == 2
    session, message = train_tab.start_run(session, TrainForm(epochs=1))
    assert message.startswith("Started"), message
    config = started[0]
    assert config.read_options["question_col"] == "q" and config.read_options["score_col"] == "stars"
    assert len(derive(config).all) == 2  # what the job will read is what the preview showed


def test_encoding_override_reaches_training(seed_csv, runs, started):
    session, view = data_tab.load_data(
        Session(owner=VISITOR), str(seed_csv), "seed.csv", DataSettings(encoding="cp1252")
    )
    train_tab.start_run(session, TrainForm())
    assert started[0].read_options["encoding"] == "cp1252"


def test_thresholds_are_sent_only_when_set(write_file, runs, started):
    path = write_file("f.csv", "question,answer,score\nq,a,5\nq,b,4\nq,c,2\nq,d,1\n")
    session, view = data_tab.load_data(Session(owner=VISITOR), str(path), "f.csv", DataSettings(strategy="all-pairs"))
    assert len(view.pairs) == 6  # as the CLI: all-pairs takes no thresholds unless asked
    train_tab.start_run(session, TrainForm())
    config = started[0]
    assert config.chosen_min is None and config.rejected_max is None and config.min_margin == 1.0
    assert len(derive(config).all) == 6


def test_a_ten_point_scale_gets_its_note_and_one_click_thresholds(write_file):
    path = write_file("ten.csv", "question,answer,score\nq,a,10\nq,b,6\nr,c,8\nr,d,5\n")
    session, view = data_tab.load_data(Session(owner=VISITOR), str(path), "ten.csv", AUTO_SETTINGS)
    assert len(view.pairs) == 0 and "from 5 to 10" in view.summary
    # Said where the thresholds are set, in the app's words (the button), not the CLI's flags.
    assert "Use the suggested thresholds" in view.message and "--chosen-min" not in view.message + view.summary
    assert view.suggestion == {"chosen_min": 7.5, "rejected_max": 7.5}
    chosen_min, rejected_max = data_tab.suggested(session)
    assert (chosen_min, rejected_max) == ("7.5", "7.5")  # into the text boxes
    session, view = data_tab.load_data(
        session, str(path), "ten.csv", DataSettings(chosen_min=float(chosen_min), rejected_max=float(rejected_max))
    )
    assert len(view.pairs) == 2


def test_a_failed_preview_cannot_be_trained(write_file, runs, started):
    path = write_file("bad.csv", "question,reply,stars\nq,a,1\n")
    session, view = data_tab.load_data(Session(owner=VISITOR), str(path), "bad.csv", AUTO_SETTINGS)
    session, message = train_tab.start_run(session, TrainForm())
    assert "Load data" in message and not started


def test_a_new_file_resets_reading_settings_but_keeps_pairing(seed_csv):
    widgets = ("cp1252", "tab", "q", "a", "s", "all-pairs", None, None, 2, "auto", "median", "1", "Who")
    out = data_tab.on_file(Session(owner=VISITOR), str(seed_csv), "seed.csv", *widgets)
    session = out[0]
    assert session.settings.encoding == "auto" and session.settings.question_col is None
    assert session.settings.rater_col is None  # the old file's rater column belongs to it
    assert session.settings.strategy == "all-pairs" and session.settings.min_margin == 2
    # the raters' rule and spread belonged to the old file's raters (issue 37: "median" stayed)
    assert session.settings.aggregate == "mean" and session.settings.max_rater_spread is None


def test_the_rater_column_is_chosen_like_the_others(write_file):
    rows = ["question,answer,score,Who"]
    for rater, (a, b) in {"ana": (5, 1), "ben": (4, 2)}.items():
        rows += [f"Q1,good,{a},{rater}", f"Q1,bad,{b},{rater}"]
    path = write_file("who.csv", "\n".join(rows) + "\n")
    names = dict(enumerate(data_tab.OUTPUT_NAMES))
    widgets = ("auto", "auto", AUTO, AUTO, AUTO, "best-worst", "", "", "", "auto", "mean", "", "Who")
    out = data_tab.on_settings(
        data_tab.load_data(Session(owner=VISITOR), str(path), "who.csv", AUTO_SETTINGS)[0], *widgets
    )
    by_name = {names[i]: value for i, value in enumerate(out)}
    assert by_name["session"].settings.rater_col == "Who"
    assert by_name["session"].settings.read_options().rater_col == "Who"  # what trains is what was chosen
    assert "Who" in by_name["rater_col"]["choices"]  # the menu offers the file's columns
    assert "Krippendorff" in by_name["summary"] or "agree" in by_name["summary"]


def test_the_workshop_sample_is_the_primary_button():
    import gradio as gr

    from rm_demo.app.data_tab import DataTab

    with gr.Blocks():
        tab = DataTab.build()
    assert tab.workshop_btn.variant == "primary" and tab.seed_btn.variant != "primary"


def test_a_threshold_that_is_not_a_number_is_a_message(seed_csv):
    out = data_tab.on_file(
        Session(owner=VISITOR),
        str(seed_csv),
        "seed.csv",
        "auto",
        "auto",
        AUTO,
        AUTO,
        AUTO,
        "best-worst",
        "four",
        "",
        "",
    )
    session, message = out[0], out[2]
    assert "'four' is not a number" in message and session.settings is None


def test_a_small_gzip_cannot_grow_past_the_upload_limit(tmp_path, monkeypatch):
    """60 KB of gzip can hold 60 MB of rows: the limit applies to what it becomes, while decompressing."""
    import gzip

    monkeypatch.setenv("RM_DEMO_MAX_UPLOAD_MB", "5")
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"question,answer,score\n" + b"q,a,1\n" * 10_000_000))
    assert bomb.stat().st_size < 100_000
    view = data_tab.derive_view(str(bomb), "bomb.csv.gz", AUTO_SETTINGS)
    assert not view.ok and "over 5 MB once decompressed" in view.message


def test_an_os_error_reads_like_the_clis():
    from rm_demo.app.messages import problem

    text = problem(FileNotFoundError(2, "No such file or directory", "feedback.csv"), "Cannot start")
    assert text == (
        "**Cannot start:** feedback.csv: No such file or directory  \n"
        "How to fix: check the path; the folder must exist"
    )


# Issue 37: what the screen shows is what trains.


def _widgets(settings: DataSettings) -> tuple:
    values = {name: getattr(settings, name) for name in data_tab.SETTINGS}
    return tuple(AUTO if values[n] is None and n.endswith("_col") else values[n] for n in data_tab.SETTINGS)


def test_start_derives_a_preview_older_than_the_screen_again_and_trains_on_it(write_file, runs, started):
    path = write_file("f.csv", "question,answer,score\nq,a,5\nq,b,4.5\nq,c,1\nr,d,4\nr,e,2\n")
    session, view = data_tab.load_data(Session(owner=VISITOR), str(path), "f.csv", AUTO_SETTINGS)
    assert len(view.pairs) == 2
    screen = _widgets(DataSettings(chosen_min=4.5))  # typed, but its event never reached the server
    out = dict(zip(data_tab.OUTPUT_NAMES, data_tab.catch_up(session, *screen)))
    assert "1 pairs" in out["summary"] or "**1** pair" in out["summary"], out["summary"]
    session, message = train_tab.start_run(session, TrainForm(), screen)
    assert message.startswith("Started") and "on 1 pairs" in message and "derived again" in message, message
    assert started[0].chosen_min == 4.5 and len(derive(started[0]).all) == 1
    # Up to date: nothing is derived again, and Start says nothing about it.
    assert data_tab.catch_up(session, *screen) == data_tab.unchanged()
    session, message = train_tab.start_run(session, TrainForm(), screen)
    assert "derived again" not in message


def test_start_refuses_when_the_screen_holds_a_setting_the_preview_could_not_use(write_file, runs, started):
    path = write_file("f.csv", "question,answer,score\nq,a,5\nq,c,1\n")
    session, _ = data_tab.load_data(Session(owner=VISITOR), str(path), "f.csv", AUTO_SETTINGS)
    screen = list(_widgets(AUTO_SETTINGS))
    screen[data_tab.SETTINGS.index("chosen_min")] = "four"
    session, message = train_tab.start_run(session, TrainForm(), tuple(screen))
    assert message.startswith("Cannot start") and "step 1" in message and not started


def test_two_uploads_of_a_tracing_export_are_joined_and_previewed(runs, started):
    # Issue 36: the traces and the scores came as two files; the app took one upload.
    from pathlib import Path

    real = Path(__file__).parent / "data" / "formats" / "real"
    traces, scores = str(real / "langsmith_runs_query.json"), str(real / "langsmith_feedback.jsonl")
    widgets = _widgets(DataSettings(chosen_min=0.75, rejected_max=0.75))
    session = Session(owner=VISITOR)
    alone = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_files(session, traces, None, *widgets)))
    assert "LangSmith runs alone" in alone["message"] and "Scores file box" in alone["message"]
    out = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_files(session, traces, scores, *widgets)))
    assert "Joined: **langsmith_runs_query.json**" in out["message"] and "LangSmith" in out["message"]
    assert "3 pairs" in out["summary"] and session.data_name == "langsmith_runs_query+langsmith_feedback.json"
    session, message = train_tab.start_run(session, TrainForm(), widgets)
    assert message.startswith("Started"), message
    assert len(derive(started[0]).all) == 3  # the run's own copy of the joined data
    only_scores = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_files(Session(owner=VISITOR), None, scores, *widgets)))
    assert "first box" in only_scores["message"]
    # Another first file, a plain table, while the scores are still in the second box: said, with the way out.
    table = str(Path(__file__).parent / "data" / "rated_feedback.csv")
    mixed = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_files(session, table, scores, *widgets)))
    assert "this is a table" in mixed["message"] and "clear the Scores file box" in mixed["message"]
    alone = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_files(session, table, None, *widgets)))  # box cleared
    assert "rated_feedback.csv" in alone["message"] and session.data_name == "rated_feedback.csv"


def _suggested_then_another_file(write_file):
    """A 0-10 file previewed and its suggested thresholds (7.5) in the boxes; then another file to load:
    (the session, the widgets on screen, their index by name, the first file, the next file)."""
    ten = write_file("ten.csv", "question,answer,score\nq,a,10\nq,b,6\nr,c,8\nr,d,5\n")
    session, _ = data_tab.load_data(Session(owner=VISITOR), str(ten), "ten.csv", AUTO_SETTINGS)
    assert data_tab.suggested(session) == ("7.5", "7.5")
    screen = list(_widgets(AUTO_SETTINGS))
    at = {name: i for i, name in enumerate(data_tab.SETTINGS)}
    screen[at["chosen_min"]] = screen[at["rejected_max"]] = "7.5"
    return session, screen, at, ten, write_file("five.csv", "question,answer,score\nq,a,5\nq,b,1\n")


def test_a_setting_event_that_overtakes_a_new_files_event_still_clears_the_old_files_thresholds(
    write_file, monkeypatch
):
    """Seen in the browser test under load: the workshop sample's own event was overtaken by a setting event
    (a box the new file reset) that began after it. The file's event ended stale, so its clearing of the
    previous file's suggested thresholds was never shown: 7.5 stayed in the boxes, and would have trained."""
    session, screen, at, ten, five = _suggested_then_another_file(write_file)

    real, overtaking = data_tab.derive_view, []

    def overtaken(path, name, settings):  # while the file's preview runs, a setting event starts and ends
        if not overtaking:
            overtaking.append(None)
            overtaking[0] = data_tab.on_settings(session, *screen)
        return real(path, name, settings)

    monkeypatch.setattr(data_tab, "derive_view", overtaken)
    from_file = data_tab.on_file(session, str(five), "five.csv", *screen)
    assert from_file == data_tab.unchanged()  # stale: the setting event's preview is the one shown
    shown = dict(zip(data_tab.OUTPUT_NAMES, overtaking[0]))
    assert "were cleared" in shown["message"]
    assert (shown["chosen_min"], shown["rejected_max"]) == ("", "")
    assert session.settings.chosen_min is None and session.pairs == 1  # the defaults: what would train
    assert session.suggested_thresholds is None


def test_a_setting_event_after_a_new_files_event_keeps_what_the_file_said(write_file, runs, started):
    """Seen in the browser test under load: the boxes a new file resets fire a setting event that came after
    the file's own; its preview replaced the file's and dropped the note that the previous file's suggested
    thresholds were cleared. The note stays while the boxes are empty; a tracing export's join note stays."""
    session, screen, at, ten, five = _suggested_then_another_file(write_file)
    from_file = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_file(session, str(five), "five.csv", *screen)))
    assert "were cleared" in from_file["message"] and (from_file["chosen_min"], from_file["rejected_max"]) == ("", "")
    screen[at["chosen_min"]] = screen[at["rejected_max"]] = ""  # what the file's event put on screen
    late = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_settings(session, *screen)))
    assert "five.csv" in late["message"] and "were cleared" in late["message"]
    screen[at["chosen_min"]] = "4.5"  # thresholds of the visitor's own: the note is no longer true
    own = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_settings(session, *screen)))
    assert "five.csv" in own["message"] and "were cleared" not in own["message"]
    screen[at["chosen_min"]] = ""  # the next file, the boxes empty: no note of the previous file's
    again = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_file(session, str(ten), "ten.csv", *screen)))
    assert "ten.csv" in again["message"] and "were cleared" not in again["message"]

    from pathlib import Path

    real = Path(__file__).parent / "data" / "formats" / "real"
    traces, scores = str(real / "langsmith_runs_query.json"), str(real / "langsmith_feedback.jsonl")
    screen[at["chosen_min"]] = screen[at["rejected_max"]] = "0.75"  # its scores run 0 to 1
    joined = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_files(session, traces, scores, *screen)))
    assert "Joined: **langsmith_runs_query.json**" in joined["message"]
    late = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_settings(session, *screen)))
    assert "Joined: **langsmith_runs_query.json**" in late["message"] and "3 pairs" in late["summary"]
    alone = dict(zip(data_tab.OUTPUT_NAMES, data_tab.on_files(session, str(five), None, *screen)))
    assert "five.csv" in alone["message"] and "Joined" not in alone["message"]
