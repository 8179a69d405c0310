"""``keras-hrf models``: the model families and presets (parameters, MACs, device budgets) and the
corpora with their expected layouts."""

from __future__ import annotations

from keras_hrf.cli.common import add_parser

EPILOG = """
    examples:
      keras-hrf models
    """


def models_command_parser(sub):
    p = add_parser(
        sub,
        "models",
        "list model families and presets with parameters, MACs and budgets, and the corpora",
        EPILOG,
    )
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from data_prep import list_corpora
    from keras_hrf import models, reports

    rows = []
    for fam in models.FAMILIES:
        for size in models.FAMILIES[fam].presets:
            plain = models.build(fam, size)
            hrf = models.build(fam, size, hrf=True)
            budget = models.BUDGETS.get(size)
            rows.append(
                [
                    fam,
                    size,
                    "-" if budget is None else f"{budget.flash_kib} / {budget.arena_kib}",
                    f"{plain.count_params():,}",
                    f"{hrf.count_params():,}",
                    f"{models.count_macs(plain):,}",
                    f"{models.count_macs(hrf):,}",
                ]
            )
    print("Models for 300 x 64 log-Mel input, 8 classes (HRF: each family's default):")
    print(
        reports.markdown_table(
            [
                "family",
                "size",
                "budget KiB flash / arena",
                "params",
                "params with HRF (train)",
                "MACs",
                "MACs with HRF (train)",
            ],
            rows,
        )
    )
    print("\nHyper-parameters (--model-option KEY=VALUE, variant options light:KEY=VALUE):")
    for fam in models.FAMILIES:
        print(f"  {fam:16s} {', '.join(sorted(models.hyper_parameters(fam)))}")
    print("\nCorpora:")
    for name, desc in list_corpora().items():
        print(f"  {name:12s} {desc}")
    return 0
