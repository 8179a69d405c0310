"""Speaker-independent train / validation / test splits of a manifest.

Emotion is recognised far more easily on voices the model has heard, so every split here keeps
each speaker in exactly one part: a result on a split is a result on unseen speakers. A
:class:`Split` holds *positional* row indices (``manifest.iloc[split.train]``,
``features[split.train]``), not index labels, so it stays valid for the ``features`` array that
:func:`data_prep.extract` returns alongside its (re-indexed) manifest.

- :func:`speaker_kfold`: k folds grouped by speaker and stratified by emotion; every speaker is
  tested exactly once, and some training speakers of each fold are moved to validation.
- :func:`leave_one_session_out`: IEMOCAP's standard protocol (five sessions, two actors each).
- :func:`fixed_split`: explicit speaker lists (an official split, or a quick experiment).
- :func:`read_fold_file` / :func:`predefined_folds` / :func:`folds_from_file`: published folds
  (the test speakers of each fold, e.g. EmoBox's RAVDESS folds), validation drawn as in
  :func:`speaker_kfold`, so that results compare with published numbers.
- :func:`check_no_leakage`: verify a split against a manifest.
- :func:`split_to_dict` / :func:`split_from_dict`: JSON round trip, so that a run records exactly
  which rows it trained and tested on.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_prep.errors import DataPrepError

#: The parts of a split, in order.
PARTS = ("train", "val", "test")

#: Validation rules of :func:`leave_one_session_out`.
SESSION_VAL_RULES = ("speaker", "session", "none")


class SplitError(DataPrepError):
    """A split cannot be made or does not fit the manifest."""


class LeakageError(SplitError):
    """A speaker (or a row) appears in more than one part of a split."""


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One speaker-independent split: positional row indices of each part and its speakers.

    The index arrays are sorted, ``int64`` and read-only, so a split cannot be changed after the
    leakage checks. Two splits are equal when every field is equal.

    Attributes:
        train: Row indices of the training part.
        val: Row indices of the validation part (early stopping, model selection); may be empty.
        test: Row indices of the test part.
        train_speakers: Speakers of the training part, sorted.
        val_speakers: Speakers of the validation part, sorted.
        test_speakers: Speakers of the test part, sorted.
        name: Short name, e.g. ``"fold0"`` or ``"session1"``.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_speakers: tuple[str, ...] = ()
    val_speakers: tuple[str, ...] = ()
    test_speakers: tuple[str, ...] = ()
    name: str = "split"

    def __post_init__(self) -> None:
        for part in PARTS:
            arr = np.asarray(getattr(self, part))
            if arr.size == 0:
                arr = np.zeros(0, dtype=np.int64)
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
                raise SplitError(
                    f"split {self.name!r}: {part} must be a 1-D array of integer row indices, "
                    f"got shape {arr.shape} and dtype {arr.dtype}"
                )
            if arr.size and arr.min() < 0:
                raise SplitError(f"split {self.name!r}: {part} has negative row indices")
            arr = np.sort(arr.astype(np.int64))
            arr.setflags(write=False)
            object.__setattr__(self, part, arr)
            speakers = tuple(sorted(str(s) for s in getattr(self, f"{part}_speakers")))
            object.__setattr__(self, f"{part}_speakers", speakers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return (
            self.name == other.name
            and all(np.array_equal(getattr(self, p), getattr(other, p)) for p in PARTS)
            and all(
                getattr(self, f"{p}_speakers") == getattr(other, f"{p}_speakers") for p in PARTS
            )
        )

    __hash__ = None  # mutable-looking arrays inside: equal splits need not share a hash

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{p}={len(getattr(self, p))} rows/{len(getattr(self, f'{p}_speakers'))} speakers"
            for p in PARTS
        )
        return f"Split(name={self.name!r}, {parts})"


def speaker_kfold(
    manifest: pd.DataFrame,
    n_folds: int,
    seed: int = 0,
    val_speakers: int | float = 0.15,
    stratify: bool = True,
) -> list[Split]:
    """K speaker-independent folds: every speaker is in the test part of exactly one fold.

    Speakers are assigned to test folds by scikit-learn's ``StratifiedGroupKFold`` (groups =
    speakers, classes = emotions), which keeps each fold's emotion distribution close to the whole
    corpus' where the speakers allow it. Without stratification (``stratify=False``, or no
    ``emotion`` column, or a single class) speakers are shuffled and dealt to the fold with the
    fewest rows so far, which balances fold sizes. Validation speakers are then drawn from each
    fold's training speakers, alternating genders when a ``gender`` column is present.

    Args:
        manifest: DataFrame with a ``speaker`` column (and ``emotion``/``gender`` if available).
        n_folds: Number of folds, >= 2 and at most the number of speakers.
        seed: Seed of the speaker assignment and the validation draw; the same seed and manifest
            give the same folds.
        val_speakers: How many of each fold's training speakers go to validation: an ``int`` is
            a count (0 for no validation part), a ``float`` in (0, 1) a fraction of the training
            speakers, rounded, but at least one.
        stratify: Balance the emotion distribution across folds.

    Returns:
        ``n_folds`` splits named ``fold0``, ``fold1``, ...

    Raises:
        SplitError: Missing ``speaker`` column or missing speakers, ``n_folds`` < 2 or larger than
            the number of speakers, or a validation request that leaves no training speaker.
    """
    speakers = _speaker_column(manifest)
    unique = sorted(set(speakers))
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise SplitError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if len(unique) < n_folds:
        raise SplitError(
            f"cannot make {n_folds} speaker-independent folds from {len(unique)} speaker(s) "
            f"({', '.join(unique[:10])}); use n_folds <= {len(unique)}"
        )
    test_groups = _assign_folds(manifest, speakers, unique, n_folds, seed, stratify)

    return _folds_with_validation(manifest, speakers, test_groups, val_speakers, seed)


@dataclasses.dataclass(frozen=True)
class FoldFile:
    """A published fold partition, as read from a JSON fold file.

    The file is an object with ``test_speakers``: a list with one list of speaker names per fold
    (speakers as the manifest's ``speaker`` column spells them; numbers are read as strings);
    optional ``description`` and ``speaker_format`` strings (shown to users) and any other keys,
    e.g. published baselines, kept in ``extra``.

    Attributes:
        path: Where it was read from (``None`` if built in memory).
        test_speakers: The test speakers of each fold.
        description: What the folds are and where they come from.
        extra: Every other key of the file.
    """

    path: Path | None
    test_speakers: tuple[tuple[str, ...], ...]
    description: str = ""
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.test_speakers)


def read_fold_file(path: str | Path) -> FoldFile:
    """Read a fold file (format: :class:`FoldFile`), checking its structure.

    Raises:
        SplitError: a missing or unreadable file, not JSON, no ``test_speakers`` list of
            lists, an empty fold, or a speaker in two folds (the message names it). Whether the
            speakers exist is checked against a manifest by :func:`predefined_folds`.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SplitError(
            f"fold file {path} does not exist; pass a JSON file of test speakers"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SplitError(f"fold file {path}: cannot read it as JSON ({e})") from None
    folds = doc.get("test_speakers") if isinstance(doc, dict) else None
    if not isinstance(folds, list) or not folds or not all(isinstance(f, list) for f in folds):
        raise SplitError(
            f"fold file {path}: expected an object with 'test_speakers': a list of folds, each a "
            'list of speaker names (e.g. {"test_speakers": [["01", "02"], ["03", "04"]]})'
        )
    test = tuple(tuple(str(s) for s in fold) for fold in folds)
    _check_disjoint_folds(test, str(path))
    return FoldFile(
        path=path,
        test_speakers=test,
        description=str(doc.get("description", "")),
        extra={k: v for k, v in doc.items() if k not in ("test_speakers", "description")},
    )


def _check_disjoint_folds(test: Sequence[Sequence[str]], where: str) -> None:
    seen: dict[str, int] = {}
    for k, fold in enumerate(test):
        if not fold:
            raise SplitError(f"{where}: fold {k} has no test speaker")
        for spk in fold:
            if spk in seen:
                raise SplitError(
                    f"{where}: speaker {spk!r} is a test speaker of folds {seen[spk]} and {k}; "
                    "each speaker must be tested in one fold only"
                )
            seen[spk] = k


def predefined_folds(
    manifest: pd.DataFrame,
    test_speakers: Sequence[Sequence[str]] | FoldFile,
    seed: int = 0,
    val_speakers: int | float = 0.15,
    where: str = "folds",
) -> list[Split]:
    """Speaker-independent folds with given test speakers; validation as in
    :func:`speaker_kfold`.

    Every speaker of the manifest must be the test speaker of exactly one fold, so that, as with
    :func:`speaker_kfold`, each is tested once. Validation speakers are drawn (seeded by
    ``seed`` and the fold index, alternating genders) from each fold's training speakers.

    Args:
        manifest: DataFrame with a ``speaker`` column (and ``gender`` if available).
        test_speakers: One list of test speakers per fold, or a :class:`FoldFile`.
        seed: Seed of the validation draw.
        val_speakers: Validation speakers per fold: a count or a fraction (see
            :func:`speaker_kfold`).
        where: Name of the folds' source in error messages (e.g. the file name).

    Returns:
        One split per fold, named ``fold0``, ``fold1``, ...

    Raises:
        SplitError: an empty fold, a speaker in two folds, a listed speaker the manifest does not
            have, or a manifest speaker in no fold (each message names the speakers).
    """
    if isinstance(test_speakers, FoldFile):
        where = str(test_speakers.path) if test_speakers.path is not None else where
        test_speakers = test_speakers.test_speakers
    test = [sorted({str(s) for s in _as_list(fold)}) for fold in test_speakers]
    if len(test) < 2:
        raise SplitError(f"{where}: need at least 2 folds, got {len(test)}")
    _check_disjoint_folds(test, where)
    speakers = _speaker_column(manifest)
    known = sorted(set(speakers))
    listed = {s for fold in test for s in fold}
    unknown = sorted(listed - set(known))
    if unknown:
        raise SplitError(
            f"{where}: speaker(s) {unknown[:8]} are not in the manifest, whose speakers are "
            f"{', '.join(known[:12])}{' ...' if len(known) > 12 else ''} (do the names match the "
            "manifest's spelling?)"
        )
    missing = [s for s in known if s not in listed]
    if missing:
        raise SplitError(
            f"{where}: speaker(s) {missing[:8]} of the manifest are in no fold; every speaker must "
            "be tested once (add them to a fold or drop their rows)"
        )
    return _folds_with_validation(manifest, speakers, test, val_speakers, seed)


def folds_from_file(
    manifest: pd.DataFrame, path: str | Path, seed: int = 0, val_speakers: int | float = 0.15
) -> list[Split]:
    """:func:`predefined_folds` with the test speakers of a fold file (:func:`read_fold_file`)."""
    return predefined_folds(manifest, read_fold_file(path), seed=seed, val_speakers=val_speakers)


def leave_one_session_out(
    manifest: pd.DataFrame, val: str = "speaker", session_column: str = "session"
) -> list[Split]:
    """IEMOCAP's leave-one-session-out protocol: one fold per session, that session is the test.

    Validation rule (``val``), with sessions in sorted order and fold ``i`` testing session
    ``i``:

    - ``"speaker"`` (default): one speaker of the *next* session (cyclically) validates; the other
      speaker(s) of that session stay in training. The validation speaker is female in even folds
      and male in odd folds (by the ``gender`` column, else by sorted speaker name), so over the
      five IEMOCAP folds both genders validate and every session keeps one voice in training.
    - ``"session"``: the whole next session validates (three sessions train).
    - ``"none"``: no validation part.

    Args:
        manifest: DataFrame with ``speaker`` and ``session_column`` columns.
        val: The validation rule, one of :data:`SESSION_VAL_RULES`.
        session_column: Column that names each row's session.

    Returns:
        One split per session, named ``session<value>``.

    Raises:
        SplitError: Missing columns, fewer than two sessions (three for ``val="session"``), a
            speaker recorded in two sessions, or an unknown rule.
    """
    if val not in SESSION_VAL_RULES:
        raise SplitError(f"val must be one of {SESSION_VAL_RULES}, got {val!r}")
    speakers = _speaker_column(manifest)
    if session_column not in manifest.columns:
        raise SplitError(
            f"manifest has no {session_column!r} column (leave-one-session-out is for corpora "
            f"with sessions, e.g. IEMOCAP); columns: {', '.join(map(str, manifest.columns))}"
        )
    sessions_col = manifest[session_column].to_numpy()
    if pd.isna(sessions_col).any():
        raise SplitError(f"{int(pd.isna(sessions_col).sum())} row(s) have no {session_column!r}")
    session_of: dict[str, Any] = {}
    for spk, ses in zip(speakers, sessions_col):
        if session_of.setdefault(spk, ses) != ses:
            raise SplitError(
                f"speaker {spk!r} appears in sessions {session_of[spk]!r} and {ses!r}; a "
                f"session split would put one speaker in two parts"
            )
    sessions = sorted(set(session_of.values()))
    needed = 3 if val == "session" else 2
    if len(sessions) < needed:
        raise SplitError(
            f"leave-one-session-out with val={val!r} needs at least {needed} sessions, found "
            f"{len(sessions)}: {sessions}"
        )
    genders = _speaker_genders(manifest, speakers)
    by_session = {s: sorted(k for k, v in session_of.items() if v == s) for s in sessions}
    splits = []
    for i, ses in enumerate(sessions):
        test_spk = by_session[ses]
        nxt = by_session[sessions[(i + 1) % len(sessions)]]
        if val == "none":
            val_spk: list[str] = []
        elif val == "session":
            val_spk = nxt
        else:
            want = "female" if i % 2 == 0 else "male"
            matching = [s for s in nxt if genders.get(s) == want]
            val_spk = [matching[0]] if matching else [nxt[i % len(nxt)]]
        train_spk = [s for s in session_of if s not in test_spk and s not in val_spk]
        splits.append(_make_split(speakers, train_spk, val_spk, test_spk, f"session{ses}"))
    return splits


def fixed_split(
    manifest: pd.DataFrame,
    test_speakers: Iterable[str],
    val_speakers: Iterable[str] = (),
    name: str = "fixed",
) -> Split:
    """A split from explicit speaker lists; every other speaker trains.

    Args:
        manifest: DataFrame with a ``speaker`` column.
        test_speakers: Speakers of the test part.
        val_speakers: Speakers of the validation part (may be empty).
        name: Name of the split.

    Returns:
        The split.

    Raises:
        SplitError: Unknown speakers, a speaker in both lists, or an empty test or train part.
    """
    speakers = _speaker_column(manifest)
    known = set(speakers)
    test_spk = sorted({str(s) for s in _as_list(test_speakers)})
    val_spk = sorted({str(s) for s in _as_list(val_speakers)})
    unknown = [s for s in test_spk + val_spk if s not in known]
    if unknown:
        raise SplitError(
            f"unknown speaker(s) {unknown}; the manifest has {len(known)} speakers, e.g. "
            f"{', '.join(sorted(known)[:8])}"
        )
    both = sorted(set(test_spk) & set(val_spk))
    if both:
        raise LeakageError(f"speaker(s) {both} are listed for both test and validation")
    if not test_spk:
        raise SplitError("fixed_split needs at least one test speaker")
    train_spk = sorted(known - set(test_spk) - set(val_spk))
    return _make_split(speakers, train_spk, val_spk, test_spk, name)


def embed_split(
    split: Split,
    positions: np.ndarray,
    speaker_prefix: str = "",
    extra_train: np.ndarray | None = None,
    extra_speakers: Iterable[str] = (),
) -> Split:
    """A split of a subset of rows, expressed in the rows of the whole manifest.

    For multi-corpus training: folds are made on one corpus' rows (``positions`` are those rows'
    positions in the combined manifest, whose speakers carry ``speaker_prefix``); the other
    corpora's rows (``extra_train``, their speakers ``extra_speakers``) only add training data.
    """
    extra = np.zeros(0, np.int64) if extra_train is None else np.asarray(extra_train, np.int64)
    pos = np.asarray(positions, np.int64)

    def names(part):
        return tuple(speaker_prefix + s for s in getattr(split, f"{part}_speakers"))

    return Split(
        train=np.concatenate([pos[split.train], extra]),
        val=pos[split.val],
        test=pos[split.test],
        train_speakers=names("train") + tuple(sorted(set(extra_speakers))),
        val_speakers=names("val"),
        test_speakers=names("test"),
        name=split.name,
    )


def leave_one_corpus_out(
    manifest: pd.DataFrame, val_speakers: int | float = 0.15, seed: int = 0
) -> list[Split]:
    """One split per corpus of a combined manifest: that corpus is the test part, the others
    train (validation speakers drawn from them, as in :func:`speaker_kfold`).

    Raises:
        SplitError: no ``corpus`` column or fewer than two corpora.
    """
    if "corpus" not in manifest.columns or manifest["corpus"].nunique() < 2:
        raise SplitError("leave-one-corpus-out needs a manifest of at least two corpora")
    speakers = _speaker_column(manifest)
    corpora = sorted(manifest["corpus"].astype(str).unique())
    groups = [
        sorted(set(speakers[manifest["corpus"].astype(str).to_numpy() == c])) for c in corpora
    ]
    out = _folds_with_validation(manifest, speakers, groups, val_speakers, seed)
    return [dataclasses.replace(s, name=f"corpus_{c}") for s, c in zip(out, corpora)]


def check_no_leakage(manifest: pd.DataFrame, split: Split) -> None:
    """Verify that ``split`` fits ``manifest`` and that no speaker or row is in two parts.

    Args:
        manifest: The manifest the split indexes (positionally).
        split: The split to check.

    Raises:
        LeakageError: A row or a speaker in more than one part (the message names it).
        SplitError: Indices out of range, an empty train or test part, or speaker lists that do
            not match the rows (the split was made for another manifest).
    """
    speakers = _speaker_column(manifest)
    n = len(speakers)
    for part in PARTS:
        idx = getattr(split, part)
        if idx.size and idx.max() >= n:
            raise SplitError(
                f"split {split.name!r}: {part} has row index {int(idx.max())} but the manifest has "
                f"{n} rows (was the split made for another manifest?)"
            )
        if len(np.unique(idx)) != len(idx):
            raise LeakageError(f"split {split.name!r}: {part} lists some rows twice")
    for part in ("train", "test"):
        if len(getattr(split, part)) == 0:
            raise SplitError(f"split {split.name!r}: the {part} part is empty")
    found = {p: set(speakers[getattr(split, p)]) for p in PARTS}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        rows = np.intersect1d(getattr(split, a), getattr(split, b))
        if rows.size:
            raise LeakageError(
                f"split {split.name!r}: row {int(rows[0])} is in both {a} and {b} "
                f"({rows.size} shared rows)"
            )
        shared = sorted(found[a] & found[b])
        if shared:
            spk = shared[0]
            na = int(np.sum(speakers[getattr(split, a)] == spk))
            nb = int(np.sum(speakers[getattr(split, b)] == spk))
            more = f" (and {len(shared) - 1} more speaker(s))" if len(shared) > 1 else ""
            raise LeakageError(
                f"split {split.name!r}: speaker {spk!r} is in both {a} ({na} rows) and {b} "
                f"({nb} rows){more}"
            )
    for part in PARTS:
        listed = set(getattr(split, f"{part}_speakers"))
        if listed and listed != found[part]:
            raise SplitError(
                f"split {split.name!r}: the {part} rows belong to speakers "
                f"{sorted(found[part])[:8]} but the split lists {sorted(listed)[:8]} "
                f"(was the split made for another manifest?)"
            )


def split_to_dict(split: Split) -> dict[str, Any]:
    """A JSON-serialisable dict of ``split`` (plain ints and strings)."""
    out: dict[str, Any] = {"name": split.name}
    for part in PARTS:
        out[part] = [int(i) for i in getattr(split, part)]
        out[f"{part}_speakers"] = list(getattr(split, f"{part}_speakers"))
    return out


def split_from_dict(data: Mapping[str, Any]) -> Split:
    """The inverse of :func:`split_to_dict`.

    Raises:
        SplitError: A part is missing or malformed.
    """
    missing = [p for p in PARTS if p not in data]
    if missing:
        raise SplitError(f"split dict lacks {missing}; it needs train, val and test index lists")
    return Split(
        **{p: np.asarray(data[p], dtype=np.int64) for p in PARTS},
        **{f"{p}_speakers": tuple(data.get(f"{p}_speakers", ())) for p in PARTS},
        name=str(data.get("name", "split")),
    )


# --- helpers -------------------------------------------------------------------------------------


def _speaker_column(manifest: pd.DataFrame) -> np.ndarray:
    """The speakers as a string array; clear errors for a missing column or missing values."""
    if not isinstance(manifest, pd.DataFrame):
        raise SplitError(f"expected a manifest DataFrame, got {type(manifest).__name__}")
    if "speaker" not in manifest.columns:
        raise SplitError(
            "the manifest has no 'speaker' column; speaker-independent splits need one "
            f"(columns: {', '.join(map(str, manifest.columns))})"
        )
    if len(manifest) == 0:
        raise SplitError("the manifest is empty")
    col = manifest["speaker"]
    if col.isna().any():
        raise SplitError(f"{int(col.isna().sum())} manifest row(s) have no speaker")
    return col.astype(str).to_numpy()


def _speaker_genders(manifest: pd.DataFrame, speakers: np.ndarray) -> dict[str, str | None]:
    """Speaker -> gender (first non-missing value), empty without a ``gender`` column."""
    if "gender" not in manifest.columns:
        return {}
    out: dict[str, str | None] = {}
    for spk, g in zip(speakers, manifest["gender"].to_numpy()):
        if out.get(spk) is None:
            out[spk] = None if pd.isna(g) else str(g)
    return out


def _assign_folds(
    manifest: pd.DataFrame,
    speakers: np.ndarray,
    unique: list[str],
    n_folds: int,
    seed: int,
    stratify: bool,
) -> list[list[str]]:
    """The test speakers of each fold."""
    can_stratify = (
        stratify and "emotion" in manifest.columns and manifest["emotion"].nunique(dropna=True) > 1
    )
    if can_stratify:
        from sklearn.model_selection import StratifiedGroupKFold

        labels = manifest["emotion"].astype(str).to_numpy()
        cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            # "The least populated class has fewer members than n_splits": stratification is
            # best-effort here, the grouping is what must hold.
            warnings.filterwarnings("ignore", message=".*least populated class.*")
            folds = [
                sorted(set(speakers[test])) for _, test in cv.split(speakers, labels, speakers)
            ]
        if all(folds) and sum(len(f) for f in folds) == len(unique):
            return folds
        # A degenerate assignment (an empty fold) falls through to the size-balanced deal.
    rng = np.random.default_rng(seed)
    counts = pd.Series(speakers).value_counts()
    order = [unique[i] for i in rng.permutation(len(unique))]
    folds = [[] for _ in range(n_folds)]
    sizes = np.zeros(n_folds, dtype=np.int64)
    # Deal the first n_folds speakers one per fold (no empty fold), the rest to the smallest fold.
    for i, spk in enumerate(order):
        k = i if i < n_folds else int(np.argmin(sizes))
        folds[k].append(spk)
        sizes[k] += counts[spk]
    return [sorted(f) for f in folds]


def _folds_with_validation(
    manifest: pd.DataFrame,
    speakers: np.ndarray,
    test_groups: Sequence[Sequence[str]],
    val_speakers: int | float,
    seed: int,
) -> list[Split]:
    """One split per test group; validation speakers drawn from each fold's training speakers
    (seeded by ``seed`` and the fold index, alternating genders)."""
    unique = sorted(set(speakers))
    genders = _speaker_genders(manifest, speakers)
    splits = []
    for k, test_spk in enumerate(test_groups):
        train_spk = [s for s in unique if s not in test_spk]
        n_val = _n_val(val_speakers, len(train_spk))
        if n_val >= len(train_spk):
            raise SplitError(
                f"fold {k}: val_speakers={val_speakers!r} moves {n_val} of the {len(train_spk)} "
                f"training speakers to validation and leaves none for training; use fewer "
                f"validation speakers or more folds"
            )
        rng = np.random.default_rng([seed, k])
        val_spk = _pick_balanced(train_spk, genders, n_val, rng, start=k)
        train_spk = [s for s in train_spk if s not in val_spk]
        splits.append(_make_split(speakers, train_spk, val_spk, sorted(test_spk), f"fold{k}"))
    return splits


def _n_val(val_speakers: int | float, n_train: int) -> int:
    """Number of validation speakers from a count or a fraction of ``n_train``."""
    if isinstance(val_speakers, bool):
        raise SplitError(f"val_speakers must be a count or a fraction, got {val_speakers!r}")
    if isinstance(val_speakers, (int, np.integer)):
        if val_speakers < 0:
            raise SplitError(f"val_speakers must be >= 0, got {val_speakers}")
        return int(val_speakers)
    if isinstance(val_speakers, (float, np.floating)):
        if not 0.0 <= val_speakers < 1.0:
            raise SplitError(
                f"a fractional val_speakers must be in [0, 1), got {val_speakers}; "
                f"pass an int for a number of speakers"
            )
        return 0 if val_speakers == 0 else max(1, int(round(val_speakers * n_train)))
    raise SplitError(f"val_speakers must be an int or a float, got {type(val_speakers).__name__}")


def _pick_balanced(
    candidates: Sequence[str],
    genders: Mapping[str, str | None],
    n: int,
    rng: np.random.Generator,
    start: int,
) -> list[str]:
    """``n`` speakers drawn at random, alternating between genders (starting by ``start``)."""
    if n == 0:
        return []
    by_gender: dict[str, list[str]] = {}
    for spk in candidates:
        by_gender.setdefault(str(genders.get(spk)), []).append(spk)
    pools = [list(rng.permutation(by_gender[g])) for g in sorted(by_gender)]
    picked: list[str] = []
    i = start % len(pools)
    while len(picked) < n:
        if pools[i]:
            picked.append(str(pools[i].pop(0)))
        i = (i + 1) % len(pools)
    return sorted(picked)


def _make_split(
    speakers: np.ndarray,
    train_spk: Iterable[str],
    val_spk: Iterable[str],
    test_spk: Iterable[str],
    name: str,
) -> Split:
    """Build a split from speaker lists; empty train or test parts are errors."""
    parts = {"train": sorted(train_spk), "val": sorted(val_spk), "test": sorted(test_spk)}
    idx = {p: np.flatnonzero(np.isin(speakers, s)) for p, s in parts.items()}
    for p in ("train", "test"):
        if idx[p].size == 0:
            raise SplitError(f"split {name!r}: the {p} part would be empty")
    return Split(
        train=idx["train"],
        val=idx["val"],
        test=idx["test"],
        train_speakers=tuple(parts["train"]),
        val_speakers=tuple(parts["val"]),
        test_speakers=tuple(parts["test"]),
        name=name,
    )


def _as_list(speakers: Iterable[str] | str) -> list[str]:
    """A single speaker name given as a string means one speaker, not its characters."""
    return [speakers] if isinstance(speakers, str) else list(speakers)
