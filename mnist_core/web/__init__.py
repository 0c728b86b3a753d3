"""The tutorial's drawing widget: the model of this build, running in the reader's browser.

``widget(out, best)`` is the render step's hook. It exports the best model to
``out/web/model.onnx`` (once per model file: template-only re-renders do not import
TensorFlow), copies ONNX Runtime Web's files from ``node_modules`` (installed from npm by
``make report``; see package.json) next to the documents, and returns the HTML to put in the
"Recognize your own digit" section. For the standalone tutorial.html everything is embedded
(``assets="inline"``): a page opened from file:// may not import or fetch other files, so the
runtime's ES module, its WebAssembly binary (gzip, decompressed by the browser's
DecompressionStream) and the model travel inside the page. ``assets="files"`` references the
copies in ``web/`` relatively instead, for pages served over HTTP (the Quarto site).

Without the runtime (no npm at build time) the build does not fail: the section shows a
still of the widget and says how to enable it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import MnistReportError

HERE = Path(__file__).resolve().parent
WEB_DIR = "web"  # inside the results folder, next to the documents
ORT_MODULE = "ort.wasm.bundle.min.mjs"   # the WebAssembly build, Emscripten glue included
ORT_WASM = "ort-wasm-simd-threaded.wasm"
MODEL_FILE = "model.onnx"
STILL = "widget.png"
# Pen width on the 280x280 pad: a digit drawn ~200 px tall gets MNIST's stroke-to-size ratio.
STROKE = 20
MESSAGES = {
    "start": "Draw a digit in the box",
    "blank": "No digit found: draw one in the box",
    "unreadable": "This file is not an image the browser can read",
    "failed": "The model could not be loaded",
}
ENABLE = ("The drawing widget is not in this build: ONNX Runtime Web was not found at build "
          "time. Install Node.js, run `npm ci` in the repository (`make report` does it), and "
          "build again.")


@dataclass
class Widget:
    available: bool
    html: str              # what the HTML document shows in place of the still
    still: str             # the still image (for the PDF), relative to the results folder
    reason: str = ""
    page_bytes: int = 0    # size of the embedded widget (runtime, model, code)


def runtime_dir() -> Path | None:
    """ONNX Runtime Web's dist/ folder: $MNIST_REPORT_ORT_DIR, or node_modules beside the
    repository (an editable install or a checkout), or in the current folder."""
    candidates = [os.environ.get("MNIST_REPORT_ORT_DIR"),
                  HERE.parent.parent / "node_modules" / "onnxruntime-web" / "dist",
                  Path.cwd() / "node_modules" / "onnxruntime-web" / "dist"]
    for candidate in candidates:
        if candidate and all((Path(candidate) / f).is_file() for f in (ORT_MODULE, ORT_WASM)):
            return Path(candidate)
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_if_changed(src: Path, dst: Path) -> bool:
    if dst.is_file() and dst.stat().st_size == src.stat().st_size and _sha256(dst) == _sha256(src):
        return False
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return True


def export_for_web(model_path: Path, web: Path) -> Path:
    """``web/model.onnx`` from ``model_path``; re-exported only when the model file changed."""
    onnx_path, stamp = web / MODEL_FILE, web / "model.source.json"
    source = {"model": str(model_path), "sha256": _sha256(model_path)}
    if onnx_path.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == source:
                return onnx_path
        except ValueError:
            pass
    from ..export import export_model

    export_model(model_path, onnx_path)
    stamp.write_text(json.dumps(source))
    return onnx_path


def _gzip_cached(src: Path, dst: Path) -> bytes:
    """gzip of ``src``, kept in ``dst`` (compressing 14 MB takes a second; renders reuse it)."""
    stamp = dst.with_name(dst.name + ".sha256")
    digest = _sha256(src)
    if dst.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return dst.read_bytes()
    data = gzip.compress(src.read_bytes(), compresslevel=6, mtime=0)
    dst.write_bytes(data)
    stamp.write_text(digest)
    return data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _markup(config: dict, embedded: dict[str, str]) -> str:
    bars = "".join(
        f'<div class="dw-bar"><span>{d}</span><span class="dw-track"><span class="dw-fill">'
        f'</span></span><span class="dw-value"></span></div>' for d in range(10))
    # "</" cannot end a <script> early inside JSON; base64 has no "<" at all.
    config_json = json.dumps(config).replace("</", "<\\/")
    data = "".join(f'<script type="application/octet-stream" id="{i}">{b}</script>\n'
                   for i, b in embedded.items())
    scripts = "\n".join((HERE / f).read_text() for f in ("preprocess.js", "widget.js"))
    return (
        f'<div class="digit-widget" id="digit-widget">\n'
        f'<style>{(HERE / "widget.css").read_text()}</style>\n'
        f'<div class="dw-row"><div class="dw-pad">'
        f'<canvas id="digit-canvas" width="280" height="280" role="img" '
        f'aria-label="Drawing pad: draw a digit with the mouse, a finger or a pen"></canvas>'
        f'<div class="dw-buttons"><button type="button" id="digit-clear">Clear</button>'
        f'<label class="dw-file">Pick a photo<input type="file" id="digit-file" accept="image/*">'
        f'</label></div></div>\n'
        f'<div class="dw-side"><div class="dw-seen"><canvas id="digit-input" width="28" height="28">'
        f'</canvas><span>what the network sees:<br>28x28, after the preprocessing above</span></div>'
        f'<div id="digit-prediction" aria-live="polite">Loading the model...</div>'
        f'<div class="dw-bars">{bars}</div><div id="digit-timing"></div></div></div>\n'
        f'<p class="dw-note">The {html.escape(config["modelName"])} model of this build, '
        f'running in your browser with ONNX Runtime Web: nothing you draw leaves this page. '
        f'Drop a photo on the box or pick one; it is processed the same way.</p>\n'
        f'<script type="application/json" id="digit-config">{config_json}</script>\n'
        f'{data}<script>\n{scripts}\n</script>\n</div>\n'
    )


def _fallback(out: Path, still: Path, reason: str) -> Widget:
    image = f"data:image/png;base64,{_b64(still.read_bytes())}" if still.is_file() else ""
    body = (f'<div class="digit-widget-off" id="digit-widget-off"><p>{html.escape(reason)}</p>'
            + (f'<img src="{image}" alt="The drawing widget (screenshot)" '
               f'style="max-width:100%">' if image else "") + "</div>")
    return Widget(False, body, os.path.relpath(still, out), reason=reason)


def _constants() -> dict:
    """preprocess.py's constants, for preprocess.js (those the module has)."""
    from .. import preprocess

    names = ("NOISE", "WORK_SIDE", "GRID", "OPENING", "MIN_RANGE", "SPECK", "NEAR", "MARK",
             "MARGIN")
    return {n: getattr(preprocess, n) for n in names if hasattr(preprocess, n)}


def _unsure_rule(min_confidence: float | None) -> dict:
    """The thresholds of the "unsure" rule (predict.py's, and preprocess.py's MIN_CONTRAST)."""
    from .. import predict, preprocess

    return {
        "minConfidence": (min_confidence if min_confidence is not None
                          else getattr(predict, "MIN_CONFIDENCE", None)),
        "minContrast": getattr(preprocess, "MIN_CONTRAST", None),
        "maxAspect": getattr(predict, "MAX_ASPECT", None),
    }


def widget(out: str | os.PathLike, model_path: str | os.PathLike, *, model_name: str = "best",
           temperature: float | None = None, unsure_below: float | None = None,
           assets: str = "inline") -> Widget:
    """Prepare ``out/web/`` and return the widget for the documents (never raises for a
    missing runtime or a failed export: the documents say what is missing instead)."""
    out, model_path = Path(out), Path(model_path)
    web = out / WEB_DIR
    web.mkdir(parents=True, exist_ok=True)
    still = web / STILL
    _copy_if_changed(HERE / STILL, still)
    dist = runtime_dir()
    if dist is None:
        return _fallback(out, still, ENABLE)
    try:
        onnx_path = export_for_web(model_path, web)
    except MnistReportError as exc:
        return _fallback(out, still, f"The drawing widget is not in this build: {exc}")
    # The standalone page embeds the gzipped binary; pages served over HTTP load the copy.
    for name in (ORT_MODULE, ORT_WASM) if assets == "files" else (ORT_MODULE,):
        _copy_if_changed(dist / name, web / name)
    import onnx

    dims = onnx.load(onnx_path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    config = {
        "assets": assets,
        "inputShape": [1] + [d.dim_value for d in dims[1:]],
        "modelName": model_name,
        "temperature": temperature,
        "unsure": _unsure_rule(unsure_below),
        "preprocess": _constants(),
        "stroke": STROKE,
        "messages": MESSAGES,
    }
    embedded = {}
    if assets == "inline":
        embedded = {
            "digit-ort-code": _b64((web / ORT_MODULE).read_bytes()),
            "digit-ort-wasm": _b64(_gzip_cached(dist / ORT_WASM, web / (ORT_WASM + ".gz"))),
            "digit-model": _b64(gzip.compress(onnx_path.read_bytes(), mtime=0)),
        }
    else:
        rel = os.path.relpath(web, out)
        config.update(ortModule=f"{rel}/{ORT_MODULE}", ortWasm=f"{rel}/{ORT_WASM}",
                      model=f"{rel}/{MODEL_FILE}")
    body = _markup(config, embedded)
    return Widget(True, body, os.path.relpath(still, out), page_bytes=len(body.encode("utf-8")))


def widget_for_results(out: str | os.PathLike, experiment: dict, folder: str | os.PathLike,
                       **kwargs) -> Widget:
    """The widget for an experiment's results (as results.json holds them) in ``folder``."""
    calibration = experiment.get("calibration") or {}
    return widget(out, Path(folder) / "model.keras", model_name=experiment["experiment"],
                  temperature=calibration.get("temperature"), **kwargs)


def quarto_markdown(out: str | os.PathLike, model_path: str | os.PathLike) -> str:
    """The widget for a Quarto page (an ``output: asis`` cell), in the HTML format only, with
    everything embedded, as tutorial.html has it; the page draws this build's answer for the
    other formats (the PDF) itself, from the project's own files."""
    model_path = Path(model_path)
    try:
        experiment = json.loads((model_path.parent / "results.json").read_text())
    except (OSError, ValueError):
        experiment = {"experiment": model_path.parent.name.split("-")[0]}
    w = widget_for_results(out, experiment, model_path.parent)
    return '::: {.content-visible when-format="html"}\n```{=html}\n' + w.html + "```\n:::\n"
