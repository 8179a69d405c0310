"""The built-in synthetic corpus written by :func:`data_prep.synthetic.generate`.

Layout: ``root/<speaker>/<speaker>_<emotion>_<NNN>.wav`` with speakers ``spk01_f``, ``spk02_m``,
... and ``root/synthetic.json`` (generation parameters and file list), which the generator writes
last. A folder without it is an interrupted generation and is refused rather than loaded half.
"""

from __future__ import annotations

import json
from pathlib import Path

from data_prep.corpora._common import bad_name, list_audio
from data_prep.corpora.base import BadFile, LoadResult, register_corpus
from data_prep.errors import CorpusLayoutError

#: The naming scheme, as shown in error messages.
EXPECTED_NAME = "<speaker>/<speaker>_<emotion>_<NNN>.wav with speaker spkNN_f or spkNN_m"

_GENDERS = {"f": "female", "m": "male"}


@register_corpus(
    "synthetic",
    "built-in synthetic speech from data_prep.synthetic.generate: "
    "root/spkNN_[fm]/spkNN_[fm]_<emotion>_NNN.wav plus root/synthetic.json",
)
def load(root: Path) -> LoadResult:
    """One row per generated utterance.

    Args:
        root: The folder :func:`data_prep.synthetic.generate` wrote.

    Returns:
        Rows with ``speaker``, ``emotion``, ``gender`` (from ``synthetic.json``, else from the
        speaker name's ``_f``/``_m``) and ``take`` (the utterance number). Files that do not follow
        the naming scheme, or that the metadata does not list (left over from another generation),
        are bad files; so are listed files that are missing.

    Raises:
        CorpusLayoutError: ``synthetic.json`` is missing (incomplete generation) or unreadable.
    """
    # Imported here, not at module level: the package imports every loader, and an eager import
    # would put data_prep.synthetic in sys.modules before `python -m data_prep.synthetic` runs it.
    from data_prep.synthetic import FILE_PATTERN, METADATA_FORMAT, METADATA_NAME

    meta_path = root / METADATA_NAME
    regenerate = (
        f"regenerate it with data_prep.synthetic.generate({str(root)!r}) "
        f"or `python -m data_prep.synthetic {root}`"
    )
    if not meta_path.is_file():
        raise CorpusLayoutError(
            f"{str(root)!r} looks like an incomplete synthetic corpus: {METADATA_NAME} is missing "
            f"(the generator writes it last, so generation was interrupted or this is not a "
            f"synthetic corpus); {regenerate}"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusLayoutError(f"cannot read {meta_path}: {exc}; {regenerate}") from exc
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise CorpusLayoutError(
            f'{meta_path} is not synthetic-corpus metadata (expected "format": '
            f"{METADATA_FORMAT!r}); {regenerate}"
        )
    listed = set(meta.get("files", []))
    speakers = meta.get("speakers", {})
    emotions = set(meta.get("emotions", []))

    rows: list[dict] = []
    bad: list[BadFile] = []
    seen: set[str] = set()
    for path in list_audio(root):
        rel = path.relative_to(root).as_posix()
        m = FILE_PATTERN.fullmatch(path.name)
        if m is None or rel != f"{m.group(1)}/{path.name}":
            bad.append(bad_name(path, EXPECTED_NAME))
            continue
        speaker, emotion, take = m.group(1), m.group(2), int(m.group(3))
        if rel not in listed or emotion not in emotions:
            bad.append(
                BadFile(
                    str(path),
                    f"not listed in {METADATA_NAME} (left over from another generation?); "
                    f"{regenerate} into an empty folder",
                )
            )
            continue
        seen.add(rel)
        gender = speakers.get(speaker, {}).get("gender") or _GENDERS[speaker[-1]]
        rows.append(
            {
                "path": str(path),
                "speaker": speaker,
                "emotion": emotion,
                "gender": gender,
                "take": take,
            }
        )
    for rel in sorted(listed - seen):
        bad.append(BadFile(str(root / rel), f"listed in {METADATA_NAME} but missing; {regenerate}"))
    return LoadResult(rows, bad)
