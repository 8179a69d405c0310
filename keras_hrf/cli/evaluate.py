"""``keras-hrf evaluate``: a run folder's float, merged and int8 models on a corpus; on another
corpus than the run's, on the classes both have."""

from __future__ import annotations

from keras_hrf.cli.common import add_corpus_args, add_parser

EPILOG = """
    examples:
      keras-hrf evaluate runs/conformer_hrf --corpus ravdess --root DATA
      keras-hrf evaluate runs/ravdess_4class --corpus emodb --root EMODB \\
          --label-map anger=angry --label-map happiness=happy   # cross-corpus
    """


def evaluate_command_parser(sub):
    p = add_parser(
        sub,
        "evaluate",
        "evaluate a run folder: float, merged float and int8 (LiteRT) side by side; another "
        "corpus is evaluated on the classes it shares with the run",
        EPILOG,
    )
    p.add_argument("run_dir", metavar="run", help="run folder (from train/demo)")
    add_corpus_args(p)
    p.add_argument("--cache", default=".cache/features")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    import numpy as np

    from data_prep import encode_labels
    from data_prep.features import extract
    from data_prep.prepare import load_manifest
    from keras_hrf import export, reports
    from keras_hrf.cli.common import data_spec
    from keras_hrf.training import load_run
    from keras_hrf.training.metrics import classification_metrics

    run_folder = load_run(args.run_dir)
    spec = data_spec(args)
    # The classes first: a corpus that shares none with the run fails before any feature.
    manifest = load_manifest(spec)
    shared = manifest["emotion"].isin(run_folder.labels)
    left_out = manifest.loc[~shared, "emotion"].value_counts().sort_index()
    if not shared.any():
        raise ValueError(
            f"the corpus' classes {sorted(manifest['emotion'].unique())} share none with the "
            f"run's {run_folder.labels}; map them with --label-map FROM=TO"
        )
    attrs = dict(manifest.attrs)
    manifest = manifest[shared].reset_index(drop=True)
    manifest.attrs = attrs
    feats, manifest = extract(manifest, run_folder.feature_params, cache_dir=args.cache)
    y, _ = encode_labels(manifest["emotion"], run_folder.labels)
    x = run_folder.normalizer.transform(feats)
    preds = {
        "Keras float (trained)": run_folder.model.predict(x, verbose=0, batch_size=256),
        "Keras float (merged)": run_folder.merged.predict(x, verbose=0, batch_size=256),
    }
    int8_path = run_folder.path / "device" / "model_int8.tflite"
    if int8_path.is_file():
        preds["int8 (LiteRT)"] = export.predict(int8_path.read_bytes(), x)
    rows = []
    for name, logits in preds.items():
        m = classification_metrics(y, logits.argmax(-1), run_folder.labels)
        rows.append([name, reports.pct(m["wa"]), reports.pct(m["ua"]), reports.pct(m["macro_f1"])])
    present = sorted(set(manifest["emotion"]))
    corpora = ", ".join(c.name for c in spec.corpora)
    print(
        f"{len(y)} utterances of {corpora} on the {len(present)} classes it shares with the run "
        f"({', '.join(present)}); UA is the mean recall over those classes (all utterances: the "
        "corpus may overlap the run's training speakers)"
    )
    if len(left_out):
        print(
            "left out, not among the run's classes: "
            + ", ".join(f"{k} {v}" for k, v in left_out.items())
        )
    print(reports.markdown_table(["model", "WA %", "UA %", "macro-F1 %"], rows))
    if "int8 (LiteRT)" in preds:
        merged = preds["Keras float (merged)"].argmax(-1)
        agree = np.mean(merged == preds["int8 (LiteRT)"].argmax(-1))
        print(f"argmax agreement int8 vs merged float: {100 * agree:.1f} %")
    else:
        print(f"no int8 model in {run_folder.path / 'device'} (keras-hrf convert makes one)")
    return 0
