"""tutorial.ipynb: the narrative's code, in plain Keras, runs top to bottom without mnist_core."""

from __future__ import annotations

import json
import shutil

import pytest

from mnist_core import notebook
from mnist_core.config import MODELS
from mnist_core.render import build_context, narrative_text

PLUMBING = ("mnist_core", "interrupts", "Progress(", "StopBetweenBatches", "precision",
            "ExperimentConfig", "dtype_policy")


@pytest.fixture(scope="module")
def four_models(tmp_path_factory, quick_build):
    """The narrative of a build with every model: the quick classic run's results, copied
    under each model's name (the notebook's code comes from the templates, not the results)."""
    out = tmp_path_factory.mktemp("four-models")
    shutil.copytree(quick_build["out"], out, dirs_exist_ok=True)
    first = out / "experiments" / quick_build["folder"].name
    folders = [first]
    for name in MODELS:
        if name == "classic":
            continue
        folder = out / "experiments" / f"{name}-000000000000"
        shutil.copytree(first, folder)
        data = json.loads((folder / "results.json").read_text())
        data["experiment"] = name
        data["model"]["input_kind"] = MODELS[name].input_kind
        (folder / "results.json").write_text(json.dumps(data))
        folders.append(folder)
    return narrative_text(build_context(out, folders))


def test_the_shown_code_is_plain_keras(four_models):
    code = "\n".join(source for kind, source in notebook.cells(four_models) if kind == "code")
    for needed in ("model.fit(", "model.evaluate(", "keras.utils.to_categorical",
                   "keras.Model(inputs, outputs", "layers.Dropout(0.9)", ".argmax(axis=1)",
                   "plt.subplots", "def build_keras_example", "def build_cnn", "RandomRotation"):
        assert needed in code, needed
    for plumbing in PLUMBING:
        assert plumbing not in code, plumbing


def test_the_notebook_is_valid_and_has_a_parameters_cell(four_models):
    import nbformat

    nb = nbformat.reads(notebook.notebook_bytes(four_models).decode(), as_version=4)
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "QUICK = False" in tagged[0].source
    assert nb.cells[0].cell_type == "markdown" and "{id=" not in nb.cells[0].source
    assert not any("```output" in c.source for c in nb.cells)


def test_the_notebook_runs_in_a_fresh_kernel_without_mnist_core(four_models, mnist_dir,
                                                               monkeypatch):
    """Quick: 3,000 training images, one epoch per model, MNIST from $MNIST_DATA_DIR."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.reads(notebook.notebook_bytes(four_models).decode(), as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace("QUICK = False", "QUICK = True")
    # As on a machine without mnist-report: importing it fails.
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nsys.modules['mnist_core'] = None"))
    monkeypatch.setenv("MNIST_DATA_DIR", str(mnist_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)
    assert "X_train original shape (3000, 28, 28)" in printed
    for name in MODELS:
        if name != "classic":
            assert f"{name}: test accuracy" in printed, name


def test_cells_keep_prose_and_python_and_drop_outputs_figures_and_notes():
    text = ("# Title {id=top}\n\n::: {.callout-warning}\nA note on stale results.\n:::\n\n"
            "Some prose.\n\n::: figure a.svg fig-a\nA caption.\n:::\n\n```python\nx = 1\n```\n\n"
            "```output\n1\n```\n\n## Next {id=next}\n\nMore prose.\n")
    assert notebook.cells(text) == [("markdown", "# Title\n\nSome prose."), ("code", "x = 1\n"),
                                    ("markdown", "## Next\n\nMore prose.")]
