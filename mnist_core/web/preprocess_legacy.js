// The MNIST preprocessing of mnist_core.predict.preprocess as it was before issue 11 (no ink
// finding: border median, crop, 20x20 box, centre of mass), step for step, in the browser.
// Used only while mnist_core.predict has no prepare(); delete once issue 11 is merged.
// Arithmetic follows the Python: float32 arrays where NumPy keeps float32, Pillow's LANCZOS
// resampling of a float image (double accumulation, float32 storage), round-half-to-even
// where Python's round() and np.rint are used. tests/test_widget.py compares the two.
"use strict";

var MnistPreprocess = (function () {
  const NOISE = 0.05;
  const f32 = Math.fround;

  class BlankImage extends Error {}

  // Python's round() and np.rint: halves go to the even neighbour.
  function roundHalfEven(x) {
    const r = Math.round(x);
    return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
  }

  function median(values) {  // np.median: the mean of the two middle values when even
    const s = Float64Array.from(values).sort();
    const n = s.length, m = n >> 1;
    return n % 2 ? s[m] : f32((s[m - 1] + s[m]) / 2);
  }

  // RGBA bytes -> gray levels 0-255, as Pillow's convert("L") (ITU-R 601-2 luma, rounded) and
  // mnist_core.predict._pil_to_gray for transparent pictures (strokes on a transparent canvas
  // are laid on a background that contrasts with the ink).
  function rgbaToGray(data, width, height) {
    const n = width * height, gray = new Float32Array(n);
    let minAlpha = 255;
    for (let i = 0; i < n; i++) {
      const o = 4 * i;
      gray[i] = (data[o] * 19595 + data[o + 1] * 38470 + data[o + 2] * 7471 + 0x8000) >> 16;
      if (data[o + 3] < minAlpha) minAlpha = data[o + 3];
    }
    if (minAlpha < 255) {
      let sum = 0, count = 0;
      for (let i = 0; i < n; i++) if (data[4 * i + 3] / 255 > 0.5) { sum += gray[i]; count++; }
      const ink = count ? sum / count : 0;
      const background = ink < 128 ? 255 : 0;
      for (let i = 0; i < n; i++) {
        const a = f32(data[4 * i + 3] / 255);
        gray[i] = f32(f32(gray[i] * a) + f32(background * f32(1 - a)));
      }
    }
    return gray;
  }

  function border(a, w, h) {
    const out = [];
    for (let x = 0; x < w; x++) out.push(a[x]);
    for (let x = 0; x < w; x++) out.push(a[(h - 1) * w + x]);
    for (let y = 0; y < h; y++) out.push(a[y * w]);
    for (let y = 0; y < h; y++) out.push(a[y * w + w - 1]);
    return out;
  }

  // Pillow's precompute_coeffs (Resample.c) for the LANCZOS filter (support 3).
  function coefficients(inSize, outSize) {
    const sinc = (x) => { if (x === 0) return 1; x *= Math.PI; return Math.sin(x) / x; };
    const lanczos = (x) => (-3 <= x && x < 3) ? sinc(x) * sinc(x / 3) : 0;
    const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = 3 * filterscale;
    const out = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale, ss = 1 / filterscale;
      let xmin = Math.trunc(center - support + 0.5); if (xmin < 0) xmin = 0;
      let xmax = Math.trunc(center + support + 0.5); if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      const k = new Float64Array(xmax);
      let ww = 0;
      for (let x = 0; x < xmax; x++) { k[x] = lanczos((x + xmin - center + 0.5) * ss); ww += k[x]; }
      if (ww !== 0) for (let x = 0; x < xmax; x++) k[x] /= ww;
      out.push([xmin, k]);
    }
    return out;
  }

  // Image.fromarray(a, "F").resize((outW, outH), LANCZOS): horizontal pass, then vertical.
  function resizeLanczos(a, w, h, outW, outH) {
    let src = a, sw = w;
    if (outW !== w) {
      const cs = coefficients(w, outW), tmp = new Float32Array(outW * h);
      for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < outW; xx++) {
          const [xmin, k] = cs[xx];
          let s = 0;
          for (let x = 0; x < k.length; x++) s += src[y * sw + x + xmin] * k[x];
          tmp[y * outW + xx] = s;
        }
      }
      src = tmp; sw = outW;
    }
    if (outH !== h) {
      const cs = coefficients(h, outH), tmp = new Float32Array(sw * outH);
      for (let yy = 0; yy < outH; yy++) {
        const [ymin, k] = cs[yy];
        for (let x = 0; x < sw; x++) {
          let s = 0;
          for (let y = 0; y < k.length; y++) s += src[(y + ymin) * sw + x] * k[y];
          tmp[yy * sw + x] = s;
        }
      }
      src = tmp;
    }
    return src;
  }

  // Shift by whole pixels so the centre of mass lands on (14, 14), never pushing ink off.
  function centreOfMass(c) {
    let total = 0, sy = 0, sx = 0, y0 = 28, y1 = -1, x0 = 28, x1 = -1;
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
      const v = c[y * 28 + x];
      total += v; sy += y * v; sx += x * v;
      if (v !== 0) { y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x); }
    }
    total = f32(total);
    let dy = roundHalfEven(14 - sy / total), dx = roundHalfEven(14 - sx / total);
    dy = Math.min(Math.max(dy, -y0), 27 - y1);
    dx = Math.min(Math.max(dx, -x0), 27 - x1);
    const out = new Float32Array(784);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
      out[((y + dy + 28) % 28) * 28 + ((x + dx + 28) % 28)] = c[y * 28 + x];
    }
    return out;
  }

  // Gray levels (Float32Array, row-major) -> 28x28 Uint8Array, light digit on dark.
  function preprocessGray(gray, w, h) {
    const n = w * h;
    const flip = median(border(gray, w, h)) > 127;
    let light = new Float32Array(n);
    for (let i = 0; i < n; i++) light[i] = flip ? f32(255 - gray[i]) : gray[i];
    const background = median(border(light, w, h));
    let top = -Infinity, low = Infinity;
    for (let i = 0; i < n; i++) {
      const v = Math.max(f32(light[i] - background), 0);
      light[i] = v;
      if (v > top) top = v;
      if (v < low) low = v;
    }
    if (top < 1e-6 || top - low < 8) throw new BlankImage("blank image: no digit found");
    const scale = f32(255 / top);
    for (let i = 0; i < n; i++) light[i] = f32(light[i] * scale);
    // Bounding box of the ink above the noise level.
    let r0 = h, r1 = -1, c0 = w, c1 = -1;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      if (light[y * w + x] > NOISE * 255) {
        if (y < r0) r0 = y; if (y > r1) r1 = y; if (x < c0) c0 = x; if (x > c1) c1 = x;
      }
    }
    const ch = r1 - r0 + 1, cw = c1 - c0 + 1;
    let crop = new Float32Array(ch * cw);
    for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) crop[y * cw + x] = light[(y + r0) * w + x + c0];
    const factor = 20 / Math.max(ch, cw);
    const bw = Math.max(1, roundHalfEven(cw * factor)), bh = Math.max(1, roundHalfEven(ch * factor));
    const box = (bw !== cw || bh !== ch) ? resizeLanczos(crop, cw, ch, bw, bh) : crop;
    const canvas = new Float32Array(784);
    const t = (28 - bh) >> 1, l = (28 - bw) >> 1;
    for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) {
      canvas[(t + y) * 28 + l + x] = Math.min(Math.max(box[y * bw + x], 0), 255);
    }
    const centred = centreOfMass(canvas);
    const out = new Uint8Array(784);
    for (let i = 0; i < 784; i++) out[i] = Math.min(Math.max(roundHalfEven(centred[i]), 0), 255);
    // What mnist_core.predict.Prepared reports besides the image (for the "unsure" rule).
    return { image: out, contrast: Infinity, otherMarks: 0, aspect: cw / ch };
  }

  // -> { image: 28x28 Uint8Array, contrast, otherMarks, aspect }
  function prepareRGBA(data, w, h) { return preprocessGray(rgbaToGray(data, w, h), w, h); }
  function preprocessRGBA(data, w, h) { return prepareRGBA(data, w, h).image; }

  function configure(constants) {}  // (the legacy algorithm's one constant is NOISE, fixed)

  return { configure, prepareRGBA, preprocessRGBA, preprocessGray, rgbaToGray, resizeLanczos,
           roundHalfEven, BlankImage };
})();
