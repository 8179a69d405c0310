"""Corpora on disk -> one manifest and its cached features, the first step of every experiment.

A :class:`DataSpec` says what a run trains on: one or several corpora (each a name, a root and
its loader's options), an optional label map and class selection. With several corpora the
manifest gets speakers namespaced by corpus (``crema_d/1001``), so that two corpora's speaker
``"01"`` are never one speaker. Everything is checked *before* any feature is computed: the
loaders' options against their signatures, the layouts, the label selection and (if given) a
fold file.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_prep import splits
from data_prep.corpora import load_corpus, registry
from data_prep.errors import DataPrepError
from data_prep.features import FeatureParams, extract
from data_prep.labels import select_labels


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """One corpus of a :class:`DataSpec`.

    Attributes:
        name: A registered corpus name (:func:`data_prep.list_corpora`).
        root: Its top folder.
        options: The loader's options (e.g. ``speaker_regex`` of ``folder``, ``manifest`` of
            ``csv``); ``strict`` makes any bad file an error.
    """

    name: str
    root: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "root": str(self.root), "options": dict(self.options)}


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a run trains and is evaluated on.

    Attributes:
        corpora: One or more corpora; with several, folds come from the first one's speakers
            (the others only add training data) unless the experiment says otherwise.
        labels: Classes to keep (after ``label_map``); ``None`` keeps all.
        label_map: ``{from: to}`` renames / merges of the corpora's emotion names.
    """

    corpora: tuple[CorpusSpec, ...]
    labels: tuple[str, ...] | None = None
    label_map: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.corpora:
            raise DataPrepError("a data specification needs at least one corpus")
        object.__setattr__(self, "corpora", tuple(self.corpora))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))

    @classmethod
    def single(cls, corpus: str, root, **options) -> DataSpec:
        """One corpus with its loader options."""
        return cls((CorpusSpec(corpus, str(root), dict(options)),))

    @property
    def multi(self) -> bool:
        """Whether several corpora are combined."""
        return len(self.corpora) > 1

    def to_dict(self) -> dict:
        """JSON-able (``config.json["data"]`` of a run folder)."""
        return {
            "corpora": [c.to_dict() for c in self.corpora],
            "labels": None if self.labels is None else list(self.labels),
            "label_map": dict(self.label_map),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> DataSpec:
        return cls(
            corpora=tuple(
                CorpusSpec(c["name"], c["root"], c.get("options", {})) for c in d["corpora"]
            ),
            labels=d.get("labels"),
            label_map=d.get("label_map") or {},
        )

    @classmethod
    def from_file(cls, path: str | Path) -> DataSpec:
        """A corpora file: JSON ``{"corpora": [{"name", "root", "options"}], "labels",
        "label_map"}``; roots relative to the file's folder."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DataPrepError(f"cannot read the corpora file {path}: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("corpora"), list):
            raise DataPrepError(
                f'{path}: expected {{"corpora": [{{"name": ..., "root": ...}}, ...]}}'
            )
        for c in doc["corpora"]:
            if not isinstance(c, dict) or "name" not in c or "root" not in c:
                raise DataPrepError(f"{path}: every corpus needs a name and a root, got {c!r}")
            root = Path(c["root"])
            c["root"] = str(root if root.is_absolute() else path.parent / root)
        return cls.from_dict(doc)


def check_options(spec: DataSpec) -> None:
    """Check every corpus name and loader option before anything is read.

    Raises:
        DataPrepError: an unknown corpus, or an option its loader does not take (the message
            lists the options it does).
    """
    corpora = registry()
    for c in spec.corpora:
        if c.name not in corpora:
            raise DataPrepError(
                f"unknown corpus {c.name!r}; known corpora: {', '.join(sorted(corpora))}"
            )
        params = list(inspect.signature(corpora[c.name].loader).parameters)[1:]
        accepted = params + ["strict"]
        unknown = sorted(set(c.options) - set(accepted))
        if unknown:
            raise DataPrepError(
                f"{c.name}: unknown option(s) {', '.join(unknown)}; its options are "
                f"{', '.join(accepted)}"
            )


def load_manifest(spec: DataSpec) -> pd.DataFrame:
    """The manifest of a :class:`DataSpec`: corpora loaded, combined, labels selected.

    ``attrs``: ``bad_files`` (all corpora), ``labels`` (the selection, see
    :func:`data_prep.labels.select_labels`) and ``corpora`` (utterances per corpus).
    """
    check_options(spec)
    frames, bad = [], []
    for c in spec.corpora:
        options = dict(c.options)
        strict = bool(options.pop("strict", False))
        df = load_corpus(c.name, c.root, strict=strict, **options)
        bad += list(df.attrs.get("bad_files", []))
        if spec.multi:
            # Speakers of two corpora are never one speaker.
            df = df.assign(speaker=c.name + "/" + df["speaker"].astype(str))
        frames.append(df)
    manifest = pd.concat(frames, ignore_index=True) if spec.multi else frames[0]
    dupes = manifest["path"].duplicated(keep=False)
    if "start" in manifest:
        dupes = manifest[["path", "start", "end"]].astype(str).duplicated(keep=False)
    if spec.multi and dupes.any():
        first = manifest.loc[dupes, "path"].iloc[0]
        raise DataPrepError(
            f"the file {first} is in two of the corpora; every utterance must come from one"
        )
    manifest = select_labels(manifest, spec.labels, spec.label_map)
    manifest.attrs["bad_files"] = bad
    manifest.attrs["corpora"] = {
        k: int(v) for k, v in manifest["corpus"].value_counts(sort=False).items()
    }
    return manifest


def load_features(
    corpus: str | DataSpec,
    root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    params: FeatureParams | None = None,
    progress: bool = True,
    folds_file: str | Path | None = None,
    executor: str = "local",
    address: str | None = None,
) -> tuple[np.ndarray, pd.DataFrame, FeatureParams]:
    """Manifest and cached features of a corpus (bad files reported and skipped).

    Args:
        corpus: A registered corpus name (with ``root``), or a :class:`DataSpec`.
        root: The corpus' top folder (with a corpus name).
        cache_dir: Feature cache folder (``None``: no cache).
        params: Feature parameters (default :class:`FeatureParams`).
        progress: Progress bar over the files.
        folds_file: Published folds to check against the manifest *before* any feature is
            computed (unknown speakers, a speaker in two folds or in none, an empty fold); with
            several corpora, against the first corpus' speakers.
        executor: Where missing features are computed: ``"local"`` or ``"ray"`` (see
            :func:`data_prep.features.extract`).
        address: The Ray cluster of ``executor="ray"`` (None: a local instance).

    Returns:
        ``(features [N, frames, n_mels], manifest, params)``, rows aligned.
    """
    spec = corpus if isinstance(corpus, DataSpec) else DataSpec.single(corpus, root)
    params = params or FeatureParams()
    manifest = load_manifest(spec)
    if folds_file is not None:
        splits.folds_from_file(fold_corpus_rows(manifest, spec), folds_file)
    attrs = dict(manifest.attrs)
    feats, manifest = extract(
        manifest,
        params,
        cache_dir=cache_dir,
        progress=progress,
        executor=executor,
        address=address,
    )
    manifest.attrs = {**attrs, **manifest.attrs}
    return feats, manifest, params


def fold_corpus_rows(manifest: pd.DataFrame, spec: DataSpec) -> pd.DataFrame:
    """The rows whose speakers make the folds: the first corpus' (with speakers as that
    corpus names them, so that a fold file of that corpus applies)."""
    if not spec.multi:
        return manifest
    first = spec.corpora[0].name
    rows = manifest[manifest["corpus"] == first]
    return rows.assign(speaker=rows["speaker"].str.removeprefix(first + "/"))


def summary(manifest: pd.DataFrame) -> str:
    """What ``keras-hrf prepare`` prints: utterances per label, per speaker and per corpus,
    total duration, and the bad files."""
    lines = []
    total = float(manifest["duration"].fillna(0).sum()) if "duration" in manifest else 0.0
    lines.append(
        f"{len(manifest)} utterances, {manifest['speaker'].nunique()} speakers, "
        f"{total / 3600:.2f} h of audio"
    )
    if manifest["corpus"].nunique() > 1:
        per = manifest["corpus"].value_counts(sort=False)
        lines.append("per corpus: " + ", ".join(f"{k} {v}" for k, v in per.items()))
    per_label = manifest["emotion"].value_counts().sort_index()
    lines.append("per label: " + ", ".join(f"{k} {v}" for k, v in per_label.items()))
    per_speaker = manifest["speaker"].value_counts().sort_index()
    shown = ", ".join(f"{k} {v}" for k, v in list(per_speaker.items())[:30])
    more = f", ... ({len(per_speaker)} speakers)" if len(per_speaker) > 30 else ""
    lines.append(f"per speaker: {shown}{more}")
    selection = manifest.attrs.get("labels") or {}
    if selection.get("dropped"):
        dropped = ", ".join(f"{k} {v}" for k, v in selection["dropped"].items())
        lines.append(f"left out by --labels: {dropped}")
    bad = manifest.attrs.get("bad_files", [])
    lines.append(f"{len(bad)} bad file(s)" + (":" if bad else ""))
    lines += [f"  {b.path}: {b.reason}" for b in bad[:20]]
    if len(bad) > 20:
        lines.append(f"  ... and {len(bad) - 20} more")
    return "\n".join(lines)


def as_spec(corpora: Sequence[str], roots: Sequence[str], options: Sequence[str] = ()) -> DataSpec:
    """A :class:`DataSpec` from command-line lists: ``--corpus`` / ``--root`` pairs and
    ``--corpus-option [CORPUS:]KEY=VALUE`` (a bare ``KEY=VALUE`` applies to every corpus).

    Raises:
        DataPrepError: unequal numbers of corpora and roots, or a malformed option.
    """
    if len(corpora) != len(roots):
        raise DataPrepError(
            f"{len(corpora)} --corpus but {len(roots)} --root: give one --root per --corpus"
        )
    per = {i: {} for i in range(len(corpora))}
    for item in options:
        target, sep, kv = str(item).partition(":")
        if not sep or "=" in target:
            target, kv = None, str(item)
        key, eq, value = kv.partition("=")
        if not eq or not key:
            raise DataPrepError(f"--corpus-option expects [CORPUS:]KEY=VALUE, got {item!r}")
        hits = [i for i, c in enumerate(corpora) if target is None or c == target]
        if not hits:
            raise DataPrepError(f"--corpus-option {item!r} names no corpus of {list(corpora)}")
        for i in hits:
            per[i][key] = _option(value)
    return DataSpec(tuple(CorpusSpec(c, r, per[i]) for i, (c, r) in enumerate(zip(corpora, roots))))


def _option(value: str):
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value
