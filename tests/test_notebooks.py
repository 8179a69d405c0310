"""The Colab notebooks: committed without outputs, and every cell runs on small settings.

Each notebook is executed with nbclient in a fresh kernel (the ``python3`` kernel, i.e. this
interpreter) in a temporary working folder, with ``KERAS_HRF_NOTEBOOK_SMALL=1`` so that it picks
its tiny CI parameters. The RAVDESS notebook reads the corpus through ``KERAS_HRF_RAVDESS`` and is
skipped only when that variable is unset.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = [
    "01_quickstart.ipynb",
    "02_train_your_data.ipynb",
    "03_deploy_to_microcontroller.ipynb",
]
COLAB = "https://colab.research.google.com/github/keras-hrf/keras-hrf/blob/main/notebooks/"
#: Per-cell limit; the slowest cell (training + int8 export) takes well under a minute in CI.
CELL_TIMEOUT_S = 600


def _read(name: str):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def test_notebook_folder_is_complete():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_no_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: cell {i} has outputs; clear them before committing"
            assert cell.execution_count is None, f"{name}: cell {i} has an execution count"
        assert "attachments" not in cell or not cell.attachments, f"{name}: cell {i} attachments"
    assert "widgets" not in nb.metadata, f"{name}: widget state in the metadata"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_badge_install_and_parameters(name):
    nb = _read(name)
    assert COLAB + name in nb.cells[0].source, f"{name}: first cell lacks its Open-in-Colab badge"
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "import keras_hrf" in sources[0] and "pip" in sources[0], "install cell first"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "KERAS_HRF_NOTEBOOK_SMALL" in params[0].source


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path, monkeypatch, request):
    nbclient = pytest.importorskip("nbclient")
    if name.startswith("02_"):
        request.getfixturevalue("ravdess_root")  # skips when KERAS_HRF_RAVDESS is unset
    monkeypatch.setenv("KERAS_HRF_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The kernel imports this checkout even where it is not pip-installed (as pytest does).
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + (os.pathsep + path if path else ""))
    nb = _read(name)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",  # this interpreter (jupyter_client maps "python" to sys.executable)
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on a failure
    text = "\n".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )
    for local in (str(tmp_path), str(REPO), str(Path.home())):
        assert local not in text, f"{name}: an output shows the local path {local}"
