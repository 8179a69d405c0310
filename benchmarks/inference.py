"""Inference cost of the deployed models: LiteRT and TFLite Micro, merged vs unmerged HRF.

For each family's light preset at the real (300, 64) input, in one process:

- LiteRT (``ai_edge_litert``, 1 thread, no default delegates) latency of
  - the int8 model (merged HRF),
  - the float32 model of the merged HRF model,
  - the float32 model of the *unmerged* HRF model (what deploying without deHRF would cost),
  - the float32 model of the same preset built without HRF (merged should equal it: ratio ~1);
- TFLite Micro host-interpreter latency of the int8 model (reference kernels: a relative figure,
  not a microcontroller's), its smallest and recommended arena, and its flash size.

Weights are random (seeded), perturbed away from their initial values, and the int8 calibration
data is standard-normal: latency does not depend on the values, but it does depend on whether a
LayerNorm gain is exactly 1 or a bias exactly 0 (the converter drops such no-op MUL/ADD ops and
shares identical constant buffers, which trained weights never allow; an untouched initial model
converts to a ~20 % smaller flatbuffer with ~10 % fewer ops). Each latency is the median over
``--repeats`` invocations after warm-up, measured round-robin over the variants so that a load
change on a shared machine hits all of them alike; the load average is recorded.

Usage::

    python benchmarks/inference.py [--repeats 50] [--families conv_transformer ...]

Writes ``benchmarks/results/inference.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402 - after the sys.path fix for direct runs

from keras_hrf import models, reparam, tflite  # noqa: E402
from keras_hrf.device import runtimes  # noqa: E402
from keras_hrf.export.artifacts import versions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "inference.json"
SHAPE = (300, 64)


def _litert_timer(flat: bytes):
    it = runtimes.litert_interpreter(flat)
    inp = it.get_input_details()[0]
    rng = np.random.default_rng(0)
    if inp["dtype"] == np.int8:
        x = rng.integers(-128, 128, size=inp["shape"], dtype=np.int8)
    else:
        x = rng.standard_normal(inp["shape"]).astype(np.float32)
    it.set_tensor(inp["index"], x)

    def once() -> float:
        t = time.perf_counter()
        it.invoke()
        return time.perf_counter() - t

    return once


def _tflm_timer(flat: bytes, arena: int):
    it = runtimes.tflm_interpreter(flat, arena)
    shape = tuple(tflite.parse(flat).input.shape)
    it.set_input(np.random.default_rng(0).integers(-128, 128, size=shape, dtype=np.int8), 0)

    def once() -> float:
        t = time.perf_counter()
        it.invoke()
        return time.perf_counter() - t

    return once


def _perturb(model, seed: int):
    rng = np.random.default_rng(seed)
    model.set_weights([w + 0.01 * rng.standard_normal(w.shape) for w in model.get_weights()])
    return model


def measure(family: str, repeats: int, tflm_repeats: int) -> dict:
    """Convert the four variants of one family and time them."""
    data = np.random.default_rng(0).standard_normal((64,) + SHAPE).astype(np.float32)
    hrf = _perturb(models.build(family, "light", hrf=True, seed=0), seed=1)
    merged = reparam.merge(hrf)
    plain = _perturb(models.build(family, "light", seed=0), seed=2)
    flats = {
        "int8": tflite.convert(merged, data, num_samples=64),
        "float32 merged": tflite.convert(merged, quantization="float32"),
        "float32 unmerged HRF": tflite.convert(hrf, quantization="float32", strict=False),
        "float32 plain": tflite.convert(plain, quantization="float32"),
    }
    arena = tflite.min_tflm_arena(flats["int8"])
    timers = {name: _litert_timer(flat) for name, flat in flats.items()}
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(5):  # warm-up: first invocations allocate and fault in pages
        for fn in timers.values():
            fn()
    for _ in range(repeats):
        for name, fn in timers.items():
            times[name].append(fn())
    tflm = _tflm_timer(flats["int8"], arena)
    tflm()
    tflm_times = [tflm() for _ in range(tflm_repeats)]
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    info = tflite.parse(flats["int8"])
    return {
        "family": family,
        "params_deployed": int(merged.count_params()),
        "params_hrf": int(hrf.count_params()),
        "macs_deployed": models.count_macs(merged),
        "macs_unmerged": models.count_macs(hrf),
        "litert_ms": ms,
        "litert_ms_min": {name: 1e3 * min(t) for name, t in times.items()},
        "ratio_unmerged_over_merged": ms["float32 unmerged HRF"] / ms["float32 merged"],
        "ratio_merged_over_plain": ms["float32 merged"] / ms["float32 plain"],
        "tflm_int8_ms": 1e3 * statistics.median(tflm_times),
        "arena_min": arena,
        "arena_recommended": tflite.recommended_arena(arena),
        "flash_bytes": {name: len(flat) for name, flat in flats.items()},
        "int8_weight_bytes": info.weight_bytes,
        "int8_ops": info.op_counts,
    }


def markdown(rows: list[dict]) -> str:
    """One table row per family."""
    head = [
        "family",
        "int8 LiteRT ms",
        "f32 merged ms",
        "f32 unmerged HRF ms (x merged)",
        "f32 plain ms (merged / plain)",
        "TFLM int8 ms",
        "arena min / rec. B",
        "flash int8 / f32 B",
        "MACs deployed / unmerged",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        ms = r["litert_ms"]
        lines.append(
            "| "
            + " | ".join(
                [
                    r["family"],
                    f"{ms['int8']:.2f}",
                    f"{ms['float32 merged']:.2f}",
                    f"{ms['float32 unmerged HRF']:.2f} ({r['ratio_unmerged_over_merged']:.2f}x)",
                    f"{ms['float32 plain']:.2f} ({r['ratio_merged_over_plain']:.2f})",
                    f"{r['tflm_int8_ms']:.1f}",
                    f"{r['arena_min']:,} / {r['arena_recommended']:,}",
                    f"{r['flash_bytes']['int8']:,} / {r['flash_bytes']['float32 merged']:,}",
                    f"{r['macs_deployed']:,} / {r['macs_unmerged']:,}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="LiteRT invocations per variant")
    parser.add_argument("--tflm-repeats", type=int, default=10, help="TFLM invocations")
    parser.add_argument("--families", nargs="+", default=list(models.FAMILIES))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    rows = []
    for family in args.families:
        print(f"measuring {family} ...", file=sys.stderr, flush=True)
        rows.append(measure(family, args.repeats, args.tflm_repeats))
    result = {
        "input_shape": list(SHAPE),
        "repeats": args.repeats,
        "tflm_repeats": args.tflm_repeats,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "versions": versions(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(rows))
    print(
        f"\nLiteRT: 1 thread, no default delegates; median of {args.repeats} invocations. TFLM: "
        f"host interpreter, reference kernels, median of {args.tflm_repeats}. Load average "
        f"{load_before[0]:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs. "
        f"Written to {args.out}."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
