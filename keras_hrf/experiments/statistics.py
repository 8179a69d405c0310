"""Paired statistics of an experiment: differences by (fold, seed), Wilcoxon signed-rank tests,
Holm's adjustment for several comparisons, and the sentence a report says about them."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Key of the pooled row of a paired table: every family's (fold, seed) pairs tested together.
ALL_FAMILIES = "all families"


def _pooled(ua: dict, variant: str) -> dict | None:
    """``variant - light`` over the pairs of every family together (pairs keyed by family)."""
    light, other = [], []
    for (family, v), series in ua.items():
        if v in ("light", variant):
            s = series.copy()
            s.index = pd.MultiIndex.from_tuples([(family, *i) for i in s.index])
            (light if v == "light" else other).append(s)
    return paired_difference(pd.concat(light), pd.concat(other))


def holm_adjust(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of p-values for testing them together (``None`` kept).

    The adjusted p of the i-th smallest of m p-values is ``max_{j <= i} min(1, (m - j + 1) p_j)``;
    rejecting where the adjusted p is below alpha keeps the family-wise error rate at alpha.
    Computed by ``statsmodels.stats.multitest.multipletests(method="holm")``.
    """
    from statsmodels.stats.multitest import multipletests

    present = [(i, p) for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    if present:
        _, corrected, _, _ = multipletests([p for _, p in present], method="holm")
        for (i, _), q in zip(present, corrected, strict=True):
            adjusted[i] = float(q)
    return adjusted


def _add_holm(entries) -> None:
    """Set ``holm_p`` and ``tests`` (how many were tested together) on paired entries."""
    entries = list(entries)
    pvalues = [e["wilcoxon_p"] for e in entries]
    tests = sum(p is not None for p in pvalues)
    for entry, adj in zip(entries, holm_adjust(pvalues), strict=True):
        entry["holm_p"], entry["tests"] = adj, tests


#: The effect a study should be able to see (UA, fraction): the power calculation's target.
DETECTABLE_EFFECT = 0.015


def paired_t_power(effect_size: float, pairs: int, alpha: float = 0.05) -> float:
    """Power of a two-sided paired t-test with ``pairs`` pairs at a standardised effect.

    ``P(|T| > t_crit)`` for ``T = (Z + effect_size * sqrt(pairs)) / sqrt(V / df)``, ``V`` chi^2
    with ``df = pairs - 1`` degrees of freedom: the non-central t written as an expectation over
    ``V`` (``scipy``'s ``chi2.expect``), which stays finite where the non-central t's own tail
    (statsmodels' ``TTestPower``) returns nan for effects many stds wide.
    """
    from scipy import stats

    df = pairs - 1
    crit, shift = stats.t.ppf(1 - alpha / 2, df), effect_size * np.sqrt(pairs)

    def rejects(v):
        scale = crit * np.sqrt(v / df)
        return stats.norm.cdf(shift - scale) + stats.norm.cdf(-shift - scale)

    return float(stats.chi2(df).expect(rejects))


def pairs_needed(std_diff: float | None, effect: float = DETECTABLE_EFFECT) -> int | None:
    """Pairs a paired t-test needs to see ``effect`` with power 0.8 at alpha 0.05 (two-sided),
    given the paired differences' std; None without a std (or a zero one).

    The smallest ``n >= 2`` whose :func:`paired_t_power` reaches 0.8, searched from statsmodels'
    ``TTestPower`` solution (which fails, nan or its bracket's lower end, for effects many stds
    wide: a rewrite that changes one prediction in a hundred).
    """
    if not std_diff:
        return None
    from statsmodels.stats.power import TTestPower

    size = effect / std_diff
    n = 2  # an effect over 3 stds wide: 2 or 3 pairs (where statsmodels' root finder fails)
    if size <= 3:
        guess = TTestPower().solve_power(effect_size=size, alpha=0.05, power=0.8)
        n = max(2, int(np.floor(guess)) - 1) if np.isfinite(guess) else 2
    while paired_t_power(size, n) < 0.8:
        n += 1
    return n


def paired_difference(a: pd.Series, b: pd.Series) -> dict | None:
    """``b - a`` on the (fold, seed) pairs both have: mean, std, 95 % confidence interval of the
    mean (t), wins/losses, Wilcoxon p, and the pairs needed to see a 1.5-point effect.

    Args:
        a, b: UA (fraction) indexed by ``(fold, seed)``.

    Returns:
        ``None`` when no pair is common; the Wilcoxon signed-rank p-value needs >= 5 pairs with
        at least one non-zero difference, the interval >= 2 pairs (``None`` otherwise).
    """
    from scipy import stats

    common = a.index.intersection(b.index)
    if len(common) == 0:
        return None
    d = (b.loc[common] - a.loc[common]).to_numpy(dtype=float)
    entry = {
        "pairs": int(d.size),
        "mean_diff": float(d.mean()),
        "std_diff": float(d.std(ddof=1)) if d.size > 1 else None,
        "wins": int((d > 0).sum()),
        "losses": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
        "wilcoxon_p": None,
        "ci95": None,
    }
    if d.size > 1:
        half = stats.t.ppf(0.975, d.size - 1) * entry["std_diff"] / np.sqrt(d.size)
        entry["ci95"] = [float(d.mean() - half), float(d.mean() + half)]
    entry["pairs_for_1.5_points"] = pairs_needed(entry["std_diff"])
    if d.size >= 5 and np.any(d != 0):
        entry["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
    return entry


def verdict(p: dict) -> str:
    """One honest sentence on a paired light+HRF - light comparison.

    With ``holm_p`` in ``p`` (the comparison was one of several families tested together), a
    p below 0.05 is only called an effect when it survives Holm's adjustment.
    """
    diff = 100 * p["mean_diff"]
    ci = p.get("ci95")
    ci_text = "" if ci is None else f", 95 % CI [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"
    if p["wilcoxon_p"] is None:
        n = p["pairs"]
        return f"mean difference {diff:+.2f} UA points over {n} pair(s): too few pairs to test"
    if p["wilcoxon_p"] < 0.05:
        word = "helped" if diff > 0 else "hurt"
        said = (
            f"{diff:+.2f} UA points on average{ci_text}, {p['wins']} wins / {p['losses']} "
            f"losses, Wilcoxon p = {p['wilcoxon_p']:.3f} (< 0.05)"
        )
        holm, tests = p.get("holm_p"), p.get("tests", 1)
        if holm is not None and tests > 1:
            if holm >= 0.05:
                return (
                    f"HRF nominally {word}: {said}, but not after Holm's adjustment for the "
                    f"{tests} families tested (adjusted p = {holm:.3f}): not conclusive"
                )
            return f"HRF {word}: {said}; Holm-adjusted for {tests} families p = {holm:.3f}"
        return f"HRF {word}: {said}"
    return (
        f"no detectable effect: {diff:+.2f} UA points on average{ci_text}, {p['wins']} wins / "
        f"{p['losses']} losses, Wilcoxon p = {p['wilcoxon_p']:.3f} (not below 0.05), i.e. within "
        "the run-to-run noise"
    )
