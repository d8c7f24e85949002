"""Step 2: the pairs preview: a page of the pairs and of the dropped rows, the downloads, three charts.

The browser gets at most `PREVIEW_ROWS` rows of each table; the downloads carry every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from rm_demo import plots
from rm_demo.app.state import Session
from rm_demo.pairs import PairsResult, pairs_with_raters, write_pairs

# The browser gets a page of each table, not the whole file: the downloads carry every row.
PREVIEW_ROWS = 500
LOAD_FIRST = "load data in step 1"
PAIR_COLUMNS = ["prompt", "chosen", "rejected", "chosen_score", "rejected_score", "margin"]


def placeholder_figures() -> tuple:
    """The three Pairs charts while no file has given them data."""
    return (
        plots.placeholder(plots.SCORES_TITLE, LOAD_FIRST),
        plots.placeholder(plots.ANSWER_COUNTS_TITLE, LOAD_FIRST),
        plots.placeholder(plots.MARGINS_TITLE, LOAD_FIRST),
    )


def preview_note(result: PairsResult) -> str:
    big = [
        what
        for what, n in (("pairs", len(result.pairs)), ("dropped rows", len(result.dropped_rows)))
        if n > PREVIEW_ROWS
    ]
    return (
        f"\n\nThe tables show the first {PREVIEW_ROWS} {' and '.join(big)}; the downloads hold them all."
        if big
        else ""
    )


# A cell the browser is sent: longer text is cut here, with a mark (the downloads keep every character).
PREVIEW_CELL_CHARS = 2_000


def cut_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The table with each text cell at most PREVIEW_CELL_CHARS characters: 500 rows of a public app's
    100,000-character cells would be 50 MB for the browser."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            text = out[column].astype(str)
            long = text.str.len() > PREVIEW_CELL_CHARS
            if long.any():
                out[column] = text.where(~long, text.str.slice(0, PREVIEW_CELL_CHARS) + " [… cut for the preview]")
    return out


def dropped_table(result: PairsResult) -> pd.DataFrame:
    dropped = result.dropped_rows.head(PREVIEW_ROWS)
    columns = ("row", "record", "status", "question", "answer", "score", "chosen", "rejected", "rater")
    keep = [c for c in columns if c in dropped]
    table = dropped[keep].copy()
    table["status"] = table["status"].astype(str)
    return cut_cells(table.rename(columns={"status": "reason"}).reset_index(drop=True))


def pairs_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """The preview's first rows. Headers with spaces, so the narrow score columns wrap between words
    (`chosen_score` broke mid-word); the downloads keep the files' own column names."""
    shown = pd.DataFrame(columns=PAIR_COLUMNS) if not len(pairs) else pairs[PAIR_COLUMNS].head(PREVIEW_ROWS)
    return cut_cells(shown.reset_index(drop=True).rename(columns=lambda name: name.replace("_", " ")))


def export_pairs(session: Session, result: PairsResult) -> Session:
    """The downloads: every pair, with its raters where the file names them."""
    from rm_demo.runs import safe_stem

    pairs = pairs_with_raters(result)
    stem = safe_stem(session.data_name or "feedback", limit=60)
    session.pairs_jsonl = str(session.workdir() / f"{stem}.pairs.jsonl")
    session.pairs_csv = str(session.workdir() / f"{stem}.pairs.csv")
    write_pairs(pairs, session.pairs_jsonl)
    write_pairs(pairs, session.pairs_csv)  # formula-safe: write_pairs neutralises CSV cells
    return session


@dataclass
class PairsTab:
    tab: gr.Tab
    summary: gr.Markdown
    table: gr.Dataframe
    dl_csv: gr.DownloadButton
    dl_jsonl: gr.DownloadButton
    fig_scores: gr.Plot
    fig_counts: gr.Plot
    fig_margins: gr.Plot
    dropped: gr.Dataframe
    go_train: gr.Button

    @property
    def figures(self) -> list:
        return [self.fig_scores, self.fig_counts, self.fig_margins]

    @classmethod
    def build(cls, tab: gr.Tab) -> PairsTab:
        summary = gr.Markdown("Load data in step 1.", elem_id="pairs-summary")
        table = gr.Dataframe(
            pairs_table(pd.DataFrame()),  # the pairs' column names, not gradio's 1, 2, 3, before any data
            label="Pairs (search them with the search box of the table)",
            show_search="search",
            wrap=True,
            interactive=False,
            max_height=420,
            elem_id="pairs-table",
            column_widths=["21%", "29%", "29%", "7%", "7%", "7%"],
        )
        with gr.Row():
            dl_csv = gr.DownloadButton("Download pairs (CSV)", visible=False)
            dl_jsonl = gr.DownloadButton("Download pairs (JSONL)", visible=False)
        with gr.Row():
            figs = [
                gr.Plot(figure, label=label, show_label=False, elem_classes="pairs-chart")
                for figure, label in zip(placeholder_figures(), ("Scores", "Answers per question", "Margins"))
            ]
        with gr.Accordion("Dropped rows, with the reason", open=False):
            dropped = gr.Dataframe(interactive=False, wrap=True, max_height=300)
        go_train = gr.Button("Train on these pairs →")
        return cls(tab, summary, table, dl_csv, dl_jsonl, *figs, dropped, go_train)
