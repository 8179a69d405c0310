"""Generated corpora laid out as users' own data: a folder tree with speaker-coded file names,
CSV and TSV manifests, and a second corpus with another label set."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from data_prep import load_corpus, synthetic


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy
        dst.write_bytes(src.read_bytes())


def make_own_data(base: Path, speakers: int = 6, per_class: int = 3) -> dict[str, Path]:
    """Write the layouts under ``base`` from one synthetic corpus; returns their roots.

    - ``folder``: ``<Emotion>/<speaker>_<emotion>_<take>.wav`` (capitalised folder names);
    - ``csv``: ``meta.csv`` with relative paths in columns ``file``, ``label``, ``talker``,
      ``sex``, plus an extra ``session`` column, and ``meta.tsv`` with absolute paths and a
      ``start``/``end`` segment per row;
    - ``other``: a folder corpus with another label set: ``Anger``, ``Joy``, ``Neutral``,
      ``Bored`` (the synthetic angry, happy, neutral, sad utterances).
    """
    src = base / "synthetic"
    synthetic.generate(src, speakers=speakers, per_class=per_class, seed=0)
    m = load_corpus("synthetic", src)
    roots = {
        "synthetic": src,
        "folder": base / "folder",
        "csv": base / "csv",
        "other": base / "other",
    }
    rename = {"angry": "Anger", "happy": "Joy", "neutral": "Neutral", "sad": "Bored"}
    rows = []
    for r in m.itertuples():
        path = Path(r.path)
        _link(path, roots["folder"] / r.emotion.capitalize() / path.name)
        _link(path, roots["csv"] / "audio" / path.name)
        _link(path, roots["other"] / rename[r.emotion] / path.name)
        rows.append(
            {
                "file": f"audio/{path.name}",
                "label": r.emotion.upper(),
                "talker": r.speaker,
                "sex": "F" if r.gender == "female" else "M",
                "session": int(r.take) % 2,
            }
        )
    table = pd.DataFrame(rows)
    table.to_csv(roots["csv"] / "meta.csv", index=False)
    tsv = table.assign(
        file=[str((roots["csv"] / f).resolve()) for f in table["file"]], start=0.0, end=1.0
    )
    tsv.rename(columns={"file": "path", "label": "emotion", "talker": "speaker"}).to_csv(
        roots["csv"] / "meta.tsv", sep="\t", index=False
    )
    return roots
