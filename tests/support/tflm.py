"""The real TFLite Micro (and CMSIS-DSP) headers for tests that compile the project's C++.

The trees are named by the environment (``KERAS_HRF_TFLM_TREE``: a ``create_tflm_tree.py`` tree
with reference kernels; ``KERAS_HRF_CMSIS_DSP``: CMSIS-DSP's Include/, PrivateInclude/,
Source/); .ci/run sets them to ../shared/third_party. Tests that need one skip, saying so, only
where it is unset.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TREE_ENV = "KERAS_HRF_TFLM_TREE"
DSP_ENV = "KERAS_HRF_CMSIS_DSP"


def _path(env: str) -> Path | None:
    value = os.environ.get(env)
    return Path(value) if value else None


needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
needs_tflm = pytest.mark.skipif(
    _path(TREE_ENV) is None, reason=f"{TREE_ENV} is not set (a TFLM tree with reference kernels)"
)
needs_cmsis_dsp = pytest.mark.skipif(
    _path(DSP_ENV) is None, reason=f"{DSP_ENV} is not set (CMSIS-DSP sources)"
)


def include_args(dsp: bool = False) -> list[str]:
    """``-I`` flags of the TFLM tree (and CMSIS-DSP, as the firmware Makefile builds it)."""
    tree = _path(TREE_ENV)
    # TFLM's headers have unused parameters; the firmware Makefile passes the same flag.
    args = ["-Wno-unused-parameter"]
    if tree is not None:
        args += ["-I", str(tree)]
        for dep in ("flatbuffers/include", "gemmlowp", "ruy", "kissfft"):
            args += ["-I", str(tree / "third_party" / dep)]
    dsp_root = _path(DSP_ENV)
    if dsp and dsp_root is not None:
        args += ["-I", str(dsp_root / "Include"), "-I", str(dsp_root / "PrivateInclude")]
        args += ["-D__GNUC_PYTHON__"]
    return args
