// The preprocessing of mnist_core.preprocess.prepare, step for step, in the browser: find the
// ink on the paper (polarity, the paper's surface, Otsu's threshold, the digit's connected
// marks), then MNIST's own steps (20x20 box, centre of mass). The numbered steps are those
// of preprocess.py's docstring. Arithmetic follows NumPy: float32 where the Python keeps
// float32 (Math.fround), float64 where it widens; Pillow's LANCZOS resampling of a float
// image; round-half-to-even where Python's round() and np.rint are used.
// tests/test_widget.py compares the two on the same pictures.
"use strict";

var MnistPreprocess = (function () {
  // preprocess.py's constants; the page passes the current values (configure), so a tuned
  // constant needs no change here.
  const C = { NOISE: 0.05, WORK_SIDE: 1024, GRID: 48, OPENING: 0.1, MIN_RANGE: 8,
              SPECK: 0.02, NEAR: 0.3, MARK: 0.25, MARGIN: 2 };
  function configure(constants) {
    for (const [k, v] of Object.entries(constants || {})) if (k in C && v !== null) C[k] = v;
  }
  const f32 = Math.fround;

  class BlankImage extends Error {}

  // Python's round() and np.rint: halves go to the even neighbour.
  function roundHalfEven(x) {
    const r = Math.round(x);
    return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
  }

  // Step 1: RGBA bytes -> gray levels, as Pillow's convert("L") (ITU-R 601-2 luma, rounded);
  // transparent pictures laid on a background that contrasts with the ink.
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
      for (let i = 0; i < n; i++) if (f32(data[4 * i + 3] / 255) > 0.5) { sum += gray[i]; count++; }
      const ink = count ? f32(sum / count) : 0;
      const background = ink < 128 ? 255 : 0;
      for (let i = 0; i < n; i++) {
        const a = f32(data[4 * i + 3] / 255);
        gray[i] = f32(f32(gray[i] * a) + f32(background * f32(1 - a)));
      }
    }
    return gray;
  }

  // A w x h image: { a: typed array (row-major), w, h }.
  function blockMean(img, factor) {  // step 3 and the paper's grid: f x f block means
    const w = Math.floor(img.w / factor), h = Math.floor(img.h / factor);
    const out = new Float32Array(w * h), n = factor * factor;
    for (let by = 0; by < h; by++) for (let bx = 0; bx < w; bx++) {
      let s = 0;
      for (let y = by * factor; y < (by + 1) * factor; y++) {
        for (let x = bx * factor; x < (bx + 1) * factor; x++) s += img.a[y * img.w + x];
      }
      out[by * w + bx] = s / n;
    }
    return { a: out, w, h };
  }

  // The values at ranks ks (0-based, ascending). Gray levels of the pad or of an 8-bit
  // picture are whole numbers 0-255: counted, not sorted (the pad is re-read at every stroke).
  function ranks(a, ks) {
    const counts = new Float64Array(256);
    let whole = true;
    for (let i = 0; i < a.length && whole; i++) {
      const v = a[i];
      if (v >= 0 && v <= 255 && v === Math.floor(v)) counts[v]++; else whole = false;
    }
    if (!whole) { const s = Float64Array.from(a).sort(); return ks.map((k) => s[k]); }
    return ks.map((k) => { let seen = 0, v = 0; while ((seen += counts[v]) <= k) v++; return v; });
  }
  function rank(a, fraction) { return ranks(a, [Math.floor(fraction * (a.length - 1))])[0]; }

  function extremes3(img) {  // step 4: lowest and highest 3x3 mean inside the picture
    const { a, w, h } = img;
    if (Math.min(w, h) < 3) {
      let lo = Infinity, hi = -Infinity;
      for (const v of a) { if (v < lo) lo = v; if (v > hi) hi = v; }
      return [lo, hi];
    }
    const rows = new Float32Array((h - 2) * w);
    for (let y = 0; y < h - 2; y++) for (let x = 0; x < w; x++) {
      rows[y * w + x] = f32(f32(a[y * w + x] + a[(y + 1) * w + x]) + a[(y + 2) * w + x]);
    }
    let lo = Infinity, hi = -Infinity;
    for (let y = 0; y < h - 2; y++) for (let x = 0; x < w - 2; x++) {
      const o = y * w + x;
      const s = f32(f32(rows[o] + rows[o + 1]) + rows[o + 2]);
      if (s < lo) lo = s; if (s > hi) hi = s;
    }
    return [lo / 9, hi / 9];
  }

  function slide(img, radius, axis, pick) {  // running min/max over 2r+1 cells, clipped
    const { a, w, h } = img, out = new Float32Array(a.length);
    const n = axis === 0 ? h : w;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = axis === 0 ? y : x;
      let v = a[y * w + x];
      for (let j = Math.max(0, i - radius); j <= Math.min(n - 1, i + radius); j++) {
        v = pick(v, axis === 0 ? a[j * w + x] : a[y * w + j]);
      }
      out[y * w + x] = v;
    }
    return { a: out, w, h };
  }

  function upsample(grid, w, h, block) {  // bilinear between block centres, edges held
    const axis = (nOut, nIn) => {
      const low = new Int32Array(nOut), high = new Int32Array(nOut), frac = new Float64Array(nOut);
      for (let i = 0; i < nOut; i++) {
        const pos = Math.min(Math.max((i + 0.5) / block - 0.5, 0), nIn - 1);
        low[i] = Math.floor(pos); high[i] = Math.min(low[i] + 1, nIn - 1); frac[i] = pos - low[i];
      }
      return [low, high, frac];
    };
    const [y0, y1, fy] = axis(h, grid.h), [x0, x1, fx] = axis(w, grid.w);
    const out = new Float64Array(w * h), g = grid.a, gw = grid.w;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const r0 = g[y0[y] * gw + x0[x]] * (1 - fy[y]) + g[y1[y] * gw + x0[x]] * fy[y];
        const r1 = g[y0[y] * gw + x1[x]] * (1 - fy[y]) + g[y1[y] * gw + x1[x]] * fy[y];
        out[y * w + x] = r0 * (1 - fx[x]) + r1 * fx[x];
      }
    }
    return out;
  }

  // Step 5: the paper under the ink -> { flat, sigma, wide } (wide: flat is float64).
  function paperRemoved(light, median) {
    const { a, w, h } = light;
    let lo = Infinity;
    for (const v of a) if (v < lo) lo = v;
    if (lo === median) {
      const flat = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) flat[i] = f32(a[i] - f32(median));
      return { flat, sigma: 0, wide: false };
    }
    const block = Math.ceil(Math.max(w, h) / C.GRID);
    let grid = block > 1 ? blockMean(light, block) : light;
    if (grid.a.length === 0) grid = { a: Float32Array.of(lo), w: 1, h: 1 };
    const radius = Math.ceil(C.OPENING * Math.max(grid.w, grid.h));
    let opened = slide(slide(grid, radius, 0, Math.min), radius, 1, Math.min);
    opened = slide(slide(opened, radius, 0, Math.max), radius, 1, Math.max);
    let flat;
    if (block === 1) {
      flat = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) flat[i] = f32(a[i] - opened.a[i]);
    } else {
      const surface = upsample(opened, w, h, block);
      flat = new Float64Array(a.length);
      for (let i = 0; i < a.length; i++) flat[i] = a[i] - surface[i];
    }
    const wide = block > 1;
    const centre = rank(flat, 0.5);
    const dev = new Float64Array(flat.length);
    for (let i = 0; i < flat.length; i++) {
      dev[i] = wide ? Math.abs(flat[i] - centre) : Math.abs(f32(flat[i] - f32(centre)));
    }
    return { flat, sigma: 1.4826 * rank(dev, 0.5), wide };
  }

  function otsu(values, wide) {  // step 6
    let top = 0;
    for (const v of values) if (v > top) top = v;
    if (top <= 0) return 0;
    const counts = new Float64Array(256), scale = 256 / top, scale32 = f32(scale);
    for (const v of values) {
      const b = Math.floor(wide ? v * scale : f32(v * scale32));
      counts[Math.min(b, 255)]++;
    }
    let w0 = 0, m0 = 0, total = 0, mean = 0;
    for (let k = 0; k < 256; k++) { total += counts[k]; mean += counts[k] * ((k + 0.5) * (top / 256)); }
    let best = -Infinity, arg = 0;
    for (let k = 0; k < 256; k++) {
      w0 += counts[k]; m0 += counts[k] * ((k + 0.5) * (top / 256));
      const w1 = total - w0;
      const between = (mean * w0 - m0 * total) ** 2 / Math.max(w0 * w1, 1e-12);
      if (between > best) { best = between; arg = k; }
    }
    return (arg + 1) * (top / 256);
  }

  // Step 7: 8-connected marks, labelled in raster order (as scipy.ndimage.label); keep the
  // largest and the marks near it; count the digit-sized marks left out.
  function selectDigit(mask, w, h) {
    const labels = new Int32Array(w * h), stack = [];
    const areas = [], boxes = [];
    let count = 0;
    for (let start = 0; start < w * h; start++) {
      if (!mask[start] || labels[start]) continue;
      count++;
      labels[start] = count;
      stack.push(start);
      let area = 0, t = h, b = -1, l = w, r = -1;
      while (stack.length) {
        const p = stack.pop(), y = (p / w) | 0, x = p - y * w;
        area++;
        if (y < t) t = y; if (y > b) b = y; if (x < l) l = x; if (x > r) r = x;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const q = yy * w + xx;
          if (mask[q] && !labels[q]) { labels[q] = count; stack.push(q); }
        }
      }
      areas.push(area);
      boxes.push([t, b + 1, l, r + 1]);
    }
    if (count <= 1) return { digit: mask, other: 0 };
    let main = 0;
    for (let i = 1; i < count; i++) if (areas[i] > areas[main]) main = i;
    let box = boxes[main].slice();
    const size = Math.max(box[1] - box[0], box[3] - box[2]);
    const gap = (a, c) => Math.max(Math.max(0, a[0] - c[1], c[0] - a[1]),
                                   Math.max(0, a[2] - c[3], c[2] - a[3]));
    const kept = new Set([main]);
    let grew = true;
    while (grew) {
      grew = false;
      for (let i = 0; i < count; i++) {
        if (!kept.has(i) && areas[i] >= C.SPECK * areas[main] && gap(box, boxes[i]) <= C.NEAR * size) {
          kept.add(i);
          const c = boxes[i];
          box = [Math.min(box[0], c[0]), Math.max(box[1], c[1]), Math.min(box[2], c[2]), Math.max(box[3], c[3])];
          grew = true;
        }
      }
    }
    let other = 0;
    for (let i = 0; i < count; i++) if (!kept.has(i) && areas[i] >= C.MARK * areas[main]) other++;
    const digit = new Uint8Array(w * h);
    for (let p = 0; p < w * h; p++) digit[p] = labels[p] && kept.has(labels[p] - 1) ? 1 : 0;
    return { digit, other };
  }

  function dilate(mask, w, h, radius) {  // chessboard distance <= radius
    const rows = new Uint8Array(w * h), out = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let v = 0;
      for (let j = Math.max(0, x - radius); j <= Math.min(w - 1, x + radius) && !v; j++) v = mask[y * w + j];
      rows[y * w + x] = v;
    }
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let v = 0;
      for (let j = Math.max(0, y - radius); j <= Math.min(h - 1, y + radius) && !v; j++) v = rows[j * w + x];
      out[y * w + x] = v;
    }
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

  // NumPy's float32 sum of a contiguous run (pairwise: eight lanes, then the rest in order).
  function pairwiseSum32(a, start, n) {
    if (n < 8) { let s = 0; for (let i = 0; i < n; i++) s = f32(s + a[start + i]); return s; }
    const r = [];
    for (let j = 0; j < 8; j++) r.push(a[start + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = f32(r[j] + a[start + i + j]);
    let s = f32(f32(f32(r[0] + r[1]) + f32(r[2] + r[3])) + f32(f32(r[4] + r[5]) + f32(r[6] + r[7])));
    for (; i < n; i++) s = f32(s + a[start + i]);
    return s;
  }

  // Shift by whole pixels so the centre of mass lands on (14, 14), never pushing ink off.
  // The sums are NumPy's (float32 row sums pairwise, column sums row by row, their total
  // pairwise): a symmetric digit sits exactly between two pixels, and only the same
  // rounding breaks that tie the same way.
  function centreOfMass(c) {
    const rows = new Float32Array(28), cols = new Float32Array(28);
    for (let y = 0; y < 28; y++) rows[y] = pairwiseSum32(c, 28 * y, 28);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) cols[x] = f32(cols[x] + c[y * 28 + x]);
    const total = pairwiseSum32(rows, 0, 28);
    let sy = 0, sx = 0, y0 = 28, y1 = -1, x0 = 28, x1 = -1;
    for (let i = 0; i < 28; i++) {
      sy += rows[i] * i; sx += cols[i] * i;  // exact in float64 whatever the order
      if (rows[i] !== 0) { y0 = Math.min(y0, i); y1 = Math.max(y1, i); }
      if (cols[i] !== 0) { x0 = Math.min(x0, i); x1 = Math.max(x1, i); }
    }
    let dy = roundHalfEven(14 - sy / total), dx = roundHalfEven(14 - sx / total);
    dy = Math.min(Math.max(dy, -y0), 27 - y1);
    dx = Math.min(Math.max(dx, -x0), 27 - x1);
    const out = new Float32Array(784);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
      const yy = y + dy, xx = x + dx;
      if (yy >= 0 && yy < 28 && xx >= 0 && xx < 28) out[yy * 28 + xx] = c[y * 28 + x];
    }
    return out;
  }

  // Gray levels (Float32Array, row-major) -> { image: 28x28 Uint8Array, contrast,
  // otherMarks, aspect }, as mnist_core.preprocess.prepare.
  function prepareGray(gray, width, height) {
    let lo = Infinity, hi = -Infinity;
    for (const v of gray) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (hi - lo < C.MIN_RANGE) throw new BlankImage("blank image: no digit found (uniform gray levels)");
    const factor = Math.ceil(Math.max(width, height) / C.WORK_SIDE);
    const work = factor > 1 ? blockMean({ a: gray, w: width, h: height }, factor)
                            : { a: gray, w: width, h: height };
    const { w, h } = work, n = w * h;
    const [darkest, lightest] = extremes3(work);
    const k = Math.floor((n - 1) / 2);
    const [paper, upper] = ranks(work.a, [k, n - 1 - k]);
    const darkInk = paper - darkest >= lightest - paper;
    const light = { a: new Float32Array(n), w, h };
    for (let i = 0; i < n; i++) light.a[i] = darkInk ? f32(255 - work.a[i]) : work.a[i];
    const { flat, sigma, wide } = paperRemoved(light, darkInk ? 255 - upper : paper);
    const positive = wide ? new Float64Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i++) positive[i] = Math.max(flat[i], 0);
    const threshold = Math.max(otsu(positive, wide), 4 * sigma);
    const mask = new Uint8Array(n);
    let any = false;
    for (let i = 0; i < n; i++) if (flat[i] > threshold) { mask[i] = 1; any = true; }
    if (!any) throw new BlankImage("blank image: no digit found (no ink stands out)");
    const { digit, other } = selectDigit(mask, w, h);
    let inkTop = -Infinity;
    for (let i = 0; i < n; i++) if (digit[i] && flat[i] > inkTop) inkTop = flat[i];
    const ink = Math.max(inkTop - 3 * sigma, threshold + 1);
    const floor = Math.min(3 * sigma, threshold / 2);
    const scale = 255 / Math.max(ink - floor, 1e-6);
    const near = dilate(digit, w, h, C.MARGIN);
    const out = wide ? new Float64Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v = wide ? (flat[i] - floor) * scale : f32(f32(flat[i] - f32(floor)) * f32(scale));
      out[i] = near[i] ? Math.min(Math.max(v, 0), 255) : 0;
    }
    // Step 9: MNIST's own steps.
    let r0 = h, r1 = -1, c0 = w, c1 = -1;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      if (out[y * w + x] > C.NOISE * 255) {
        if (y < r0) r0 = y; if (y > r1) r1 = y; if (x < c0) c0 = x; if (x > c1) c1 = x;
      }
    }
    const ch = r1 - r0 + 1, cw = c1 - c0 + 1;
    const crop = new Float32Array(ch * cw);
    for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) crop[y * cw + x] = out[(y + r0) * w + x + c0];
    const factor20 = 20 / Math.max(ch, cw);
    const bw = Math.max(1, roundHalfEven(cw * factor20)), bh = Math.max(1, roundHalfEven(ch * factor20));
    const box = (bw !== cw || bh !== ch) ? resizeLanczos(crop, cw, ch, bw, bh) : crop;
    const canvas = new Float32Array(784);
    const t = (28 - bh) >> 1, l = (28 - bw) >> 1;
    for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) {
      canvas[(t + y) * 28 + l + x] = Math.min(Math.max(box[y * bw + x], 0), 255);
    }
    const centred = centreOfMass(canvas);
    const image = new Uint8Array(784);
    for (let i = 0; i < 784; i++) image[i] = Math.min(Math.max(roundHalfEven(centred[i]), 0), 255);
    return { image, contrast: ink / Math.max(sigma, 1), otherMarks: other, aspect: cw / ch };
  }

  function prepareRGBA(data, w, h) { return prepareGray(rgbaToGray(data, w, h), w, h); }
  function preprocessRGBA(data, w, h) { return prepareRGBA(data, w, h).image; }

  return { configure, constants: C, prepareRGBA, preprocessRGBA, prepareGray, rgbaToGray, resizeLanczos,
           roundHalfEven, BlankImage };
})();
