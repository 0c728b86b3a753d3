// The tutorial's drawing widget: draw a digit (mouse, finger, pen) or drop a photo; the page
// preprocesses it as mnist_core does (preprocess.js) and runs this build's model (ONNX) with
// ONNX Runtime Web, all in the reader's browser. Everything it needs is embedded in the page
// (or beside it): nothing is fetched from the network.
"use strict";

(function () {
  const root = document.getElementById("digit-widget");
  if (!root) return;
  const cfg = JSON.parse(document.getElementById("digit-config").textContent);
  const pad = document.getElementById("digit-canvas");
  const preview = document.getElementById("digit-input");
  const answer = document.getElementById("digit-prediction");
  const timing = document.getElementById("digit-timing");
  const bars = Array.from(root.querySelectorAll(".dw-bar"));
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const SIDE = pad.width;
  MnistPreprocess.configure(cfg.preprocess);
  const stats = { latencies: [], loadMs: null, lastInput: null, lastProbabilities: null };

  function clearPad() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, SIDE, SIDE);
  }
  clearPad();

  // --- The runtime and the model, from the page itself ------------------------------------
  function embedded(id) {
    const text = document.getElementById(id).textContent.trim();
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return bytes;
  }
  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  async function loadSession() {
    const start = performance.now();
    let ort, model;
    if (cfg.assets === "inline") {
      // A page opened from file:// may not import or fetch other files: the runtime's ES
      // module is imported from a blob, its WebAssembly binary handed over as bytes.
      const code = new TextDecoder().decode(embedded("digit-ort-code"));
      const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
      ort = await import(url);
      ort.env.wasm.wasmBinary = await gunzip(embedded("digit-ort-wasm"));
      model = await gunzip(embedded("digit-model"));
    } else {
      ort = await import(new URL(cfg.ortModule, document.baseURI).href);
      ort.env.wasm.wasmPaths = { wasm: new URL(cfg.ortWasm, document.baseURI).href };
      model = new Uint8Array(await (await fetch(new URL(cfg.model, document.baseURI))).arrayBuffer());
    }
    // One thread and no proxy worker: no SharedArrayBuffer, no worker script to load.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    const session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
    stats.loadMs = performance.now() - start;
    return { ort, session };
  }

  // --- Probabilities, calibration and the answer, as `mnist-report predict` prints them ---
  function calibrate(probs) {
    const t = cfg.temperature;
    if (!t) return probs;
    const logits = probs.map((p) => Math.log(Math.max(p, 1e-12)) / t);
    const top = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }
  const pct = (p) => (100 * p).toFixed(1) + "%";
  // mnist_core.predict.unsure_reason: the picture's own analysis first, then the confidence.
  function unsureReason(prepared, confidence) {
    const u = cfg.unsure;
    if (u.minContrast !== null && prepared.contrast < u.minContrast) return "no clear ink";
    if (prepared.otherMarks) return "more than one mark";
    if (u.maxAspect !== null && prepared.aspect > u.maxAspect) return "wider than a digit";
    if (u.minConfidence !== null && confidence < u.minConfidence) return "low confidence";
    return null;
  }
  function describe(prepared, probs) {
    const order = probs.map((p, d) => [p, d]).sort((a, b) => b[0] - a[0]);
    const [[p1, d1], [p2, d2]] = order;
    let text = `${d1} (${pct(p1)}), runner-up ${d2} (${pct(p2)})`;
    const reason = unsureReason(prepared, p1);
    if (reason) text += " (unsure)";
    return { digit: d1, text, reason };
  }

  function show(prepared, probs) {
    const input = prepared.image;
    const image = preview.getContext("2d").createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = input[i];
      image.data[4 * i + 3] = 255;
    }
    preview.getContext("2d").putImageData(image, 0, 0);
    const { digit, text, reason } = describe(prepared, probs);
    answer.textContent = text;
    answer.title = reason ? `unsure: ${reason}` : "";
    bars.forEach((bar, d) => {
      bar.querySelector(".dw-fill").style.width = (100 * probs[d]).toFixed(1) + "%";
      bar.querySelector(".dw-value").textContent = pct(probs[d]);
      bar.classList.toggle("dw-top", d === digit);
    });
  }
  function showNothing(message) {
    answer.textContent = message;
    preview.getContext("2d").clearRect(0, 0, 28, 28);
    bars.forEach((bar) => {
      bar.querySelector(".dw-fill").style.width = "0";
      bar.querySelector(".dw-value").textContent = "";
      bar.classList.remove("dw-top");
    });
  }

  let runtime = null, busy = false, pending = null;
  async function predictInput(input) {
    const { ort, session } = runtime;
    const x = new Float32Array(784);
    for (let i = 0; i < 784; i++) x[i] = input[i] / 255;
    const tensor = new ort.Tensor("float32", x, cfg.inputShape);
    const out = await session.run({ [session.inputNames[0]]: tensor });
    const raw = Array.from(out[session.outputNames[0]].data);
    const sum = raw.reduce((a, b) => a + b, 0);
    return calibrate(raw.map((p) => p / sum));
  }

  // Predict from a source (the pad, or a photo's pixels). One run at a time; a stroke that
  // arrives meanwhile is handled right after, so the answer follows the pen.
  async function update(source, since) {
    pending = { source, since: pending ? pending.since : since };
    if (busy || !runtime) return;
    busy = true;
    try {
      while (pending) {
        const job = pending;
        pending = null;
        const { data, width, height } = job.source();
        let prepared;
        try {
          prepared = MnistPreprocess.prepareRGBA(data, width, height);
        } catch (err) {
          if (!(err instanceof MnistPreprocess.BlankImage)) throw err;
          showNothing(cfg.messages.blank);
          continue;
        }
        const probs = await predictInput(prepared.image);
        show(prepared, probs);
        const ms = performance.now() - job.since;
        stats.latencies.push(ms);
        stats.lastInput = prepared.image;
        stats.lastProbabilities = probs;
        timing.textContent = `answered in ${ms.toFixed(0)} ms`;
      }
    } finally {
      busy = false;
    }
  }
  const padPixels = () => ctx.getImageData(0, 0, SIDE, SIDE);

  // --- Drawing: pointer events cover mouse, touch and pen ----------------------------------
  let drawing = null, photoShown = false;
  function point(e) {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * SIDE / r.width, (e.clientY - r.top) * SIDE / r.height];
  }
  pad.addEventListener("pointerdown", (e) => {
    if (photoShown) { clearPad(); photoShown = false; }
    pad.setPointerCapture(e.pointerId);
    drawing = { id: e.pointerId, last: point(e) };
    ctx.fillStyle = "#000";
    ctx.beginPath();
    ctx.arc(drawing.last[0], drawing.last[1], cfg.stroke / 2, 0, 2 * Math.PI);
    ctx.fill();
    update(padPixels, performance.now());
    e.preventDefault();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing || e.pointerId !== drawing.id) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    ctx.strokeStyle = "#000";
    ctx.lineWidth = cfg.stroke;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(drawing.last[0], drawing.last[1]);
    for (const ev of (events.length ? events : [e])) {
      drawing.last = point(ev);
      ctx.lineTo(drawing.last[0], drawing.last[1]);
    }
    ctx.stroke();
    update(padPixels, performance.now());
    e.preventDefault();
  });
  const end = (e) => {
    if (!drawing || e.pointerId !== drawing.id) return;
    drawing = null;
    update(padPixels, performance.now());
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);

  document.getElementById("digit-clear").addEventListener("click", () => {
    clearPad();
    photoShown = false;
    pending = null;
    showNothing(cfg.messages.start);
  });

  // --- Photos: picked or dropped, decoded by the browser, processed like the pad ----------
  async function decode(blob) {
    // EXIF orientation applied; colours left as stored (as Pillow reads them).
    const bitmap = await createImageBitmap(blob, {
      imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const c = document.createElement("canvas");
    c.width = bitmap.width; c.height = bitmap.height;
    const g = c.getContext("2d", { willReadFrequently: true });
    g.drawImage(bitmap, 0, 0);
    return { bitmap, pixels: g.getImageData(0, 0, c.width, c.height) };
  }
  async function usePhoto(blob) {
    const since = performance.now();
    let decoded;
    try {
      decoded = await decode(blob);
    } catch (err) {
      showNothing(cfg.messages.unreadable);
      return;
    }
    const { bitmap, pixels } = decoded;
    clearPad();
    const s = Math.min(SIDE / bitmap.width, SIDE / bitmap.height);
    ctx.drawImage(bitmap, (SIDE - bitmap.width * s) / 2, (SIDE - bitmap.height * s) / 2,
                  bitmap.width * s, bitmap.height * s);
    photoShown = true;
    update(() => pixels, since);
  }
  document.getElementById("digit-file").addEventListener("change", (e) => {
    if (e.target.files.length) usePhoto(e.target.files[0]);
  });
  pad.addEventListener("dragover", (e) => e.preventDefault());
  pad.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) usePhoto(e.dataTransfer.files[0]);
  });

  // For tests and the curious: the preprocessing and the model, callable from the console.
  const ready = loadSession().then((rt) => {
    runtime = rt;
    root.classList.add("dw-ready");
    showNothing(cfg.messages.start);
    if (pending) update(pending.source, pending.since);
  }, (err) => {
    answer.textContent = cfg.messages.failed + " (" + err.message + ")";
    throw err;
  });
  window.mnistDigit = {
    ready, stats, preprocessRGBA: MnistPreprocess.preprocessRGBA,
    get busy() { return busy || pending !== null; },
    async prepareBlob(blob) { const { pixels } = await decode(blob);
      return MnistPreprocess.prepareRGBA(pixels.data, pixels.width, pixels.height); },
    async preprocessBlob(blob) { return (await this.prepareBlob(blob)).image; },
    async probabilities(input) { await ready; return predictInput(input); },
  };
})();
