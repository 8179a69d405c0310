"""The TFLM (and CMSIS-NN / CMSIS-DSP) sources a firmware needs, for tflite/micro/Makefile.

Prints source paths relative to the tree, one per line:

- ``core``: the interpreter, allocator, memory planner, flatbuffer conversion, logging and clock
  (the target's own where it has one), without tests and mocks;
- ``kernels OPS...``: for each builtin op (the names of ``model_meta.json["ops"]``, as listed in
  the export's ``op_resolver.h``) the kernel file that defines ``Register_<OP>()`` - the CMSIS-NN
  one where the tree has it - plus the shared helpers (``*_common.cc``, ``kernel_util.cc``,
  ``micro_tensor_utils.cc``), so only the kernels a model uses are compiled;
- ``cmsis_nn``: every CMSIS-NN source (the linker keeps what the kernels call);
- ``cmsis_dsp``: the CMSIS-DSP files of ``audio_main.cc``'s front-end (``arm_mfcc_f32`` with the
  512-point tables only).

Usage: ``python3 tflm_sources.py TREE {core,kernels,cmsis_nn,cmsis_dsp} [OPS...]``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_EXCLUDE = re.compile(
    r"(_test|test_helpers?|test_helper_custom_ops|fake_micro_context|mock_micro_graph)\.cc$"
)

#: CMSIS-DSP sources of the float log-Mel front-end (arm_mfcc_f32 and what it calls).
CMSIS_DSP_F32 = (
    "Source/TransformFunctions/arm_mfcc_f32.c",
    "Source/TransformFunctions/arm_mfcc_init_f32.c",
    "Source/TransformFunctions/arm_rfft_fast_f32.c",
    "Source/TransformFunctions/arm_rfft_fast_init_f32.c",
    "Source/TransformFunctions/arm_cfft_f32.c",
    "Source/TransformFunctions/arm_cfft_init_f32.c",
    "Source/TransformFunctions/arm_cfft_radix8_f32.c",
    "Source/TransformFunctions/arm_bitreversal2.c",
    "Source/BasicMathFunctions/arm_scale_f32.c",
    "Source/BasicMathFunctions/arm_mult_f32.c",
    "Source/BasicMathFunctions/arm_dot_prod_f32.c",
    "Source/BasicMathFunctions/arm_offset_f32.c",
    "Source/ComplexMathFunctions/arm_cmplx_mag_f32.c",
    "Source/StatisticsFunctions/arm_absmax_f32.c",
    "Source/FastMathFunctions/arm_vlog_f32.c",
    "Source/MatrixFunctions/arm_mat_vec_mult_f32.c",
    "Source/CommonTables/arm_common_tables.c",
    "Source/CommonTables/arm_const_structs.c",
    "Source/CommonTables/arm_mve_tables.c",
)


def core(tree: Path) -> list[str]:
    micro = "tensorflow/lite/micro"
    cortex = (tree / micro / "cortex_m_generic").is_dir()
    out = []
    for p in sorted(tree.glob("tensorflow/**/*.cc")):
        rel = p.relative_to(tree).as_posix()
        if "/kernels/" in rel and rel.startswith(micro) or _EXCLUDE.search(rel):
            continue
        if rel.startswith(f"{micro}/cortex_m_generic/micro_time"):
            continue  # replaced by platform/micro_time_systick.cc (QEMU has no DWT counter)
        if cortex and rel in (f"{micro}/debug_log.cc", f"{micro}/micro_time.cc"):
            continue
        out.append(rel)
    return out


def kernels(tree: Path, ops: list[str]) -> list[str]:
    kdir = tree / "tensorflow/lite/micro/kernels"
    files = sorted(kdir.glob("*.cc")) + sorted(kdir.glob("cmsis_nn/*.cc"))
    files = [f for f in files if not _EXCLUDE.search(f.name)]
    pattern = re.compile(r"TFLMRegistration\s+(Register_\w+)\s*\(\s*\)\s*\{")
    defines = {f: set(pattern.findall(f.read_text(errors="replace"))) for f in files}
    wanted = {f"Register_{op}" for op in ops}
    helpers = ("kernel_util.cc", "micro_tensor_utils.cc")
    out = set()
    for f, regs in defines.items():
        if regs & wanted or (not regs and (f.name.endswith("_common.cc") or f.name in helpers)):
            out.add(f)
    found = set().union(*(defines[f] for f in out))
    missing = sorted(wanted - found)
    if missing:
        sys.exit(f"tflm_sources: no kernel in {kdir} defines {', '.join(missing)}")
    return [f.relative_to(tree).as_posix() for f in sorted(out)]


def cmsis_nn(tree: Path) -> list[str]:
    src = tree / "third_party/cmsis_nn/Source"
    return [p.relative_to(tree).as_posix() for p in sorted(src.glob("**/*.c"))]


def main(argv: list[str]) -> int:
    tree, what, *rest = argv
    tree = Path(tree)
    if what == "core":
        names = core(tree)
    elif what == "kernels":
        names = kernels(tree, rest)
    elif what == "cmsis_nn":
        names = cmsis_nn(tree)
    elif what == "cmsis_dsp":
        names = [n for n in CMSIS_DSP_F32 if (tree / n).is_file()]
    else:
        sys.exit(f"tflm_sources: unknown set {what!r}")
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
