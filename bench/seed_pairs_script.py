"""The source article's pairing code as a script, for timing as a whole process.

    python bench/seed_pairs_script.py feedback.csv pairs.jsonl

The article's code as printed (read_csv, groupby + sorted lambdas, itertuples). The article ends
in a `datasets.Dataset`; here the records are written as JSONL with pandas instead, which is
faster than importing `datasets`, so the comparison is not tilted towards rm_demo.
"""

import sys
from operator import itemgetter

import pandas as pd


def seed_pairs(source) -> pd.DataFrame:
    """The article's code, unchanged but for returning a frame instead of a `datasets.Dataset`."""
    df = pd.read_csv(source)
    df["tup"] = list(zip(df["answer"], df["feedback"]))
    df_g = df.groupby("question")["tup"].apply(list).reset_index()
    df_g["sorted_tup"] = df_g["tup"].apply(lambda x: sorted(x, key=itemgetter(1)))
    df_g["chosen"] = df_g["sorted_tup"].apply(lambda x: x[-1][0])
    df_g["chosen_score"] = df_g["sorted_tup"].apply(lambda x: x[-1][1])
    df_g["rejected"] = df_g["sorted_tup"].apply(lambda x: x[0][0])
    df_g["rejected_score"] = df_g["sorted_tup"].apply(lambda x: x[0][1])
    df_g = df_g.dropna()
    df_g = df_g[(df_g["chosen_score"] >= 4.0) & (df_g["rejected_score"] < 4.0)]
    rows = []
    for record in df_g.itertuples(index=True, name="Pandas"):
        if record is None or len(record) == 0:
            continue
        rows.append(
            {"instruction": record.question, "chosen_response": record.chosen, "rejected_response": record.rejected}
        )
    return pd.DataFrame(rows)


def main(source: str, target: str) -> None:
    seed_pairs(source).to_json(target, orient="records", lines=True, force_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
