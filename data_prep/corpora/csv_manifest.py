"""Any corpus described by a CSV or TSV manifest: one row per utterance (or segment).

Most corpora ship a metadata table rather than file names to parse (CREMA-D's CSV files,
MSP-Podcast's label file, many recent corpora as TSV). The manifest names the audio file, its
label and its speaker in columns (names configurable), optionally the gender and a segment
(``start``/``end`` in seconds); every other column is kept in the manifest. Paths are relative to
the manifest's folder or absolute.

Every bad row is reported with its line number and the reason (missing file, empty label, empty
speaker, a duplicate path or segment, a bad segment time; unreadable audio is found when the
headers are read); with ``strict`` (an option of :func:`data_prep.load_corpus`) the first one
raises.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from data_prep.corpora.base import BadFile, LoadResult, register_corpus
from data_prep.errors import CorpusLayoutError


@register_corpus(
    "csv",
    "a CSV/TSV manifest: manifest=FILE (default root/manifest.csv) with path, emotion and "
    "speaker columns (names are options), optional gender, start, end; paths relative to the "
    "manifest's folder",
)
def load(
    root: Path,
    manifest: str = "manifest.csv",
    path_column: str = "path",
    label_column: str = "emotion",
    speaker_column: str = "speaker",
    gender_column: str = "gender",
    start_column: str = "start",
    end_column: str = "end",
    delimiter: str | None = None,
) -> LoadResult:
    """One row per manifest line.

    Args:
        root: The corpus folder; ``manifest`` is relative to it unless absolute.
        manifest: The CSV or TSV file.
        path_column: Column of the audio file paths (relative to the manifest's folder, or
            absolute).
        label_column: Column of the labels (lower-cased into ``emotion``).
        speaker_column: Column of the speakers.
        gender_column: Optional column of genders (``male``/``female``, ``m``/``f``).
        start_column: Optional column of segment starts, seconds.
        end_column: Optional column of segment ends, seconds.
        delimiter: ``","``, ``"\\t"``, ... (default: tab for ``.tsv``/``.tab`` files, else
            guessed from the header line).

    Returns:
        Rows with ``path``, ``speaker``, ``emotion``, ``gender``, ``label`` (as written),
        ``manifest_line`` (1-based line in the file), ``start``/``end`` if present, and every
        other column.

    Raises:
        CorpusLayoutError: no manifest file, or a required column missing (the message lists
            the columns found). Bad rows are reported; ``load_corpus(..., strict=True)`` raises
            on the first instead.
    """
    file = Path(manifest)
    if not file.is_absolute():
        file = Path(root) / file
    if not file.is_file():
        raise CorpusLayoutError(
            f"csv: manifest {file} does not exist; pass --corpus-option manifest=FILE (a CSV or "
            "TSV with path, emotion and speaker columns, relative to the corpus root)"
        )
    sep = delimiter
    if sep is None:
        if file.suffix.lower() in (".tsv", ".tab"):
            sep = "\t"
        else:
            head = file.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
            try:
                sep = csv.Sniffer().sniff(head[0] if head else "", delimiters=",;\t|").delimiter
            except csv.Error:
                sep = ","
    try:
        table = pd.read_csv(file, sep=sep, dtype=str, keep_default_na=False, engine="python")
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise CorpusLayoutError(f"csv: cannot parse {file}: {e}") from e
    required = {"path": path_column, "label": label_column, "speaker": speaker_column}
    missing = {k: v for k, v in required.items() if v not in table.columns}
    if missing:
        names = ", ".join(f"{v!r} ({k})" for k, v in missing.items())
        raise CorpusLayoutError(
            f"csv: {file} has no column {names}; its columns are "
            f"{', '.join(map(repr, table.columns))} (set path_column / label_column / "
            "speaker_column with --corpus-option)"
        )
    base = file.parent
    rows, bad = [], []
    seen: dict[tuple, int] = {}
    known = {path_column, label_column, speaker_column, gender_column, start_column, end_column}
    has_segments = start_column in table.columns and end_column in table.columns
    for i, rec in enumerate(table.to_dict("records")):
        line = i + 2  # 1-based, after the header line
        raw_path = rec[path_column].strip()
        path = Path(raw_path) if Path(raw_path).is_absolute() else base / raw_path

        def report(reason: str, where: str = str(path), line=line) -> None:
            bad.append(BadFile(where, f"{file.name} line {line}: {reason}"))

        if not raw_path:
            report("empty path", where=str(file))
            continue
        if not path.is_file():
            report("missing file")
            continue
        label = rec[label_column].strip()
        speaker = rec[speaker_column].strip()
        if not label:
            report(f"empty label (column {label_column!r})")
            continue
        if not speaker:
            report(f"empty speaker (column {speaker_column!r})")
            continue
        start = end = None
        if has_segments and (rec[start_column].strip() or rec[end_column].strip()):
            try:
                start, end = float(rec[start_column]), float(rec[end_column])
            except ValueError:
                report(f"start/end {rec[start_column]!r}/{rec[end_column]!r} are not seconds")
                continue
        key = (str(path.resolve()), start, end)
        if key in seen:
            report(f"duplicate of line {seen[key]} (same file{' and segment' if start else ''})")
            continue
        seen[key] = line
        row = {k: v for k, v in rec.items() if k not in known}
        row.update(
            path=str(path),
            speaker=speaker,
            emotion=label.lower(),
            gender=_gender(rec.get(gender_column)),
            label=label,
            manifest_line=line,
        )
        if start is not None:
            row.update(start=start, end=end)
        rows.append(row)
    return LoadResult(rows, bad)


def _gender(value: str | None) -> str | None:
    v = (value or "").strip().lower()
    return {"m": "male", "male": "male", "f": "female", "female": "female"}.get(v)
