/* Tensors on the page: decoding the embedded numbers, formatting them, and drawing them.

   Every tensor of the recording is one entry of `trace.tensors`:
     {shape: [8, 6, 8, 8], dtype: "float32", offset: 4096, count: 3072, summary: {...}}
   Its `count` numbers (fewer than the shape holds when only the first ones were embedded)
   lie at byte `offset` of one buffer, `trace.blob`, stored zlib-compressed in base64.
   `Tensors.load(trace)` inflates that buffer once; `Tensors.get(number)` is then a typed
   array over it, in row-major order.

   A tensor is shown as numbers when it is small, otherwise as a heatmap: the tensor is
   viewed as a grid of tiles, each tile a matrix, [N, C, H, W] -> N rows of C tiles of H x W
   cells (a matrix is one tile; a vector is wrapped into rows). Hover a cell for its value,
   click it to select the element. */
"use strict";

const Tensors = (() => {
  const ARRAYS = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint8: Uint8Array };
  let entries = [];
  let buffer = null;
  const decoded = new Map();

  // base64 -> bytes -> inflated (the browser's own zlib: DecompressionStream).
  async function inflate(base64) {
    const text = atob(base64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer();
  }

  async function load(trace) {
    entries = trace.tensors;
    decoded.clear();
    buffer = await inflate(trace.blob.data);
    if (buffer.byteLength !== trace.blob.bytes) throw new Error("the embedded numbers are damaged");
  }

  function decode(entry) {
    const shape = entry.shape;
    const numel = shape.reduce((a, b) => a * b, 1);
    const result = { shape, dtype: entry.dtype, numel, summary: entry.summary || null, values: null, stored: 0 };
    if (entry.count !== undefined) {
      result.values = new ARRAYS[entry.dtype](buffer, entry.offset, entry.count);
      result.stored = entry.count;
    }
    if (!result.summary && result.values) result.summary = summarise(result.values);
    return result;
  }

  function get(number) {
    if (number === null || number === undefined) return null;
    if (!decoded.has(number)) decoded.set(number, decode(entries[number]));
    return decoded.get(number);
  }

  function summarise(values) {
    let min = Infinity, max = -Infinity, sum = 0, squares = 0;
    for (const v of values) {
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      squares += v * v;
    }
    return { min, max, mean: values.length ? sum / values.length : 0, norm: Math.sqrt(squares) };
  }

  // ---------------------------------------------------------------- numbers and indices
  function format(x, digits = 6) {
    if (x === null || x === undefined) return "–";
    if (typeof x === "string") return x;
    if (typeof x === "boolean") return String(x);
    if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : (x > 0 ? "inf" : "-inf");
    if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
    if (x === 0) return "0";
    let text = x.toPrecision(digits);
    if (text.includes("e")) {
      const [mantissa, exponent] = text.split("e");
      text = mantissa.replace(/\.?0+$/, "") + "e" + exponent.replace("+", "");
    } else if (text.includes(".")) {
      text = text.replace(/\.?0+$/, "");
    }
    return text === "-0" ? "0" : text;
  }

  function number(x) {
    if (x === "nan") return NaN;
    if (x === "inf") return Infinity;
    if (x === "-inf") return -Infinity;
    return x;
  }

  function flatIndex(shape, index) {
    let flat = 0;
    for (let d = 0; d < shape.length; d++) flat = flat * shape[d] + index[d];
    return flat;
  }

  function unflatten(shape, flat) {
    const index = new Array(shape.length);
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d] = flat % shape[d];
      flat = Math.floor(flat / shape[d]);
    }
    return index;
  }

  function at(tensor, index) {
    if (!tensor || !tensor.values) return null;
    const flat = flatIndex(tensor.shape, index);
    return flat < tensor.stored ? tensor.values[flat] : null;
  }

  function indexText(index) {
    return "[" + index.join(", ") + "]";
  }

  function shapeText(shape) {
    return "[" + shape.join(", ") + "]";
  }

  function sameShape(a, b) {
    return a.length === b.length && a.every((size, d) => size === b[d]);
  }

  // ---------------------------------------------------------------- colours
  // Diverging: blue for negative, near-white for 0, red for positive, scaled by max |x|.
  const NEGATIVE = [33, 102, 172], ZERO = [247, 247, 247], POSITIVE = [178, 24, 43];

  function colour(v, scale) {
    if (!Number.isFinite(v)) return [250, 204, 21];
    const t = scale > 0 ? Math.max(-1, Math.min(1, v / scale)) : 0;
    const end = t < 0 ? NEGATIVE : POSITIVE;
    const a = Math.sqrt(Math.abs(t));  // a square root keeps small values visible
    return [0, 1, 2].map((i) => Math.round(ZERO[i] + (end[i] - ZERO[i]) * a));
  }

  // ---------------------------------------------------------------- layout of a heatmap
  // How an index maps to a cell. The shape is seen as [n, c, h, w]: n * c tiles of h x w
  // cells, c tiles to a row when c > 1 (a row per sample of an [N, C, H, W] batch), else as
  // many as fit in the panel's width. A vector is wrapped into rows of 32.
  const WIDTH = 500;

  function layout(shape) {
    let n = 1, c = 1, h = 1, w = 1, wrap = 0;
    if (shape.length === 1) {
      w = shape[0];
      if (w > 64) { wrap = 32; h = Math.ceil(w / wrap); w = wrap; }
    } else if (shape.length === 2) { [h, w] = shape; }
    else if (shape.length === 3) { [c, h, w] = shape; }
    else if (shape.length > 3) {
      n = shape.slice(0, shape.length - 3).reduce((a, b) => a * b, 1);
      [c, h, w] = shape.slice(shape.length - 3);
    }
    const tiles = n * c;
    let cell;
    if (tiles === 1) cell = Math.max(3, Math.min(18, Math.floor(WIDTH / w), Math.floor(640 / h)));
    else {
      cell = Math.max(3, Math.min(12, Math.floor(64 / Math.max(h, w))));
      // a row of c tiles (one per channel) shrinks to fit the panel, down to 3 px cells
      if (c > 1 && shape.length > 3) cell = Math.max(3, Math.min(cell, Math.floor((WIDTH / c - 3) / w)));
    }
    const gap = tiles > 1 ? Math.max(3, Math.round(cell * 0.8)) : 0;
    const fit = Math.max(1, Math.floor((WIDTH + gap) / (w * cell + gap)));
    const columns = c > 1 && shape.length > 3 ? c : Math.min(tiles, fit);
    const rows = Math.ceil(tiles / columns);
    return { n, c, h, w, wrap, cell, gap, columns, rows, tiles };
  }

  // Where an element is drawn: its cell's top left corner, in CSS pixels.
  function cellOf(shape, index, view) {
    const flat = flatIndex(shape, index);
    let tile = 0, row = 0, column = 0;
    if (view.wrap) { row = Math.floor(flat / view.wrap); column = flat % view.wrap; }
    else {
      column = flat % view.w;
      row = Math.floor(flat / view.w) % view.h;
      tile = Math.floor(flat / (view.w * view.h));
    }
    const x = (tile % view.columns) * (view.w * view.cell + view.gap) + column * view.cell;
    const y = Math.floor(tile / view.columns) * (view.h * view.cell + view.gap) + row * view.cell;
    return { x, y };
  }

  function indexAt(shape, view, x, y) {
    const tileWidth = view.w * view.cell + view.gap, tileHeight = view.h * view.cell + view.gap;
    const tileColumn = Math.floor(x / tileWidth), tileRow = Math.floor(y / tileHeight);
    const column = Math.floor((x - tileColumn * tileWidth) / view.cell);
    const row = Math.floor((y - tileRow * tileHeight) / view.cell);
    if (tileColumn >= view.columns || column >= view.w || row >= view.h || column < 0 || row < 0) return null;
    const tile = tileRow * view.columns + tileColumn;
    if (tile >= view.tiles) return null;
    const flat = view.wrap ? row * view.wrap + column : (tile * view.h + row) * view.w + column;
    const numel = shape.reduce((a, b) => a * b, 1);
    if (flat >= numel) return null;
    return unflatten(shape, flat);
  }

  // ---------------------------------------------------------------- the view
  const tooltip = () => document.getElementById("tooltip");

  function showTip(event, text) {
    const tip = tooltip();
    tip.textContent = text;
    tip.style.display = "block";
    tip.style.left = event.clientX + 14 + "px";
    tip.style.top = event.clientY + 12 + "px";
  }

  function hideTip() {
    tooltip().style.display = "none";
  }

  /* A tensor's view: head (name, shape, summary) and its numbers or heatmap.
     options: {name, note, pick(index), selected: index or null} */
  function view(entry, options) {
    const tensor = get(entry);
    const box = document.createElement("div");
    box.className = "tensor";
    box.dataset.tensor = entry;
    if (options.name) box.dataset.name = options.name;
    const head = document.createElement("div");
    head.className = "tensor-head";
    head.innerHTML = `<span class="tensor-name"></span><span class="tensor-shape"></span><span class="tensor-summary"></span>`;
    head.children[0].textContent = options.name || "";
    if (!tensor) {
      head.children[1].textContent = "None";
      box.append(head);
      return box;
    }
    head.children[1].textContent = `${tensor.dtype}${shapeText(tensor.shape)}`;
    const s = tensor.summary;
    if (s && tensor.numel > 1) {
      head.children[2].textContent =
        `min ${format(number(s.min), 4)} · max ${format(number(s.max), 4)} · mean ${format(number(s.mean), 4)} · norm ${format(number(s.norm), 4)}`;
    }
    box.append(head);
    if (options.note) {
      const note = document.createElement("div");
      note.className = "note";
      note.textContent = options.note;
      box.append(note);
    }
    if (!tensor.values) {
      box.append(noteLine("only the summary was kept for this tensor"));
      return box;
    }
    if (tensor.stored < tensor.numel) {
      box.append(noteLine(`the first ${tensor.stored} of its ${tensor.numel} elements are embedded (as max_elements says); the summary is of all of them`));
    }
    if (tensor.numel <= 1) box.append(scalarView(tensor, options));
    else if (tensor.numel <= 24 && tensor.shape.length <= 2) box.append(tableView(tensor, options));
    else box.append(...heatmapView(tensor, options));
    return box;
  }

  function noteLine(text) {
    const note = document.createElement("div");
    note.className = "tensor-note";
    note.textContent = text;
    return note;
  }

  function scalarView(tensor, options) {
    const span = document.createElement("span");
    span.className = "scalar value";
    const value = tensor.values[0];
    span.textContent = format(value, 8);
    span.dataset.value = String(value);
    span.dataset.index = "[]";
    span.title = "click to select this element";
    const index = tensor.shape.map(() => 0);
    span.addEventListener("click", () => options.pick && options.pick(index));
    return span;
  }

  function tableView(tensor, options) {
    const table = document.createElement("table");
    table.className = "numbers";
    const rows = tensor.shape.length === 2 ? tensor.shape[0] : 1;
    const columns = tensor.shape.length === 2 ? tensor.shape[1] : tensor.numel;
    for (let r = 0; r < rows; r++) {
      const tr = table.insertRow();
      for (let c = 0; c < columns; c++) {
        const index = tensor.shape.length === 2 ? [r, c] : [c];
        const value = tensor.values[r * columns + c];
        const td = tr.insertCell();
        td.textContent = format(value, 5);
        td.dataset.value = String(value);
        td.dataset.index = JSON.stringify(index);
        td.title = `${indexText(index)} = ${format(value, 8)}`;
        if (options.selected && flatIndex(tensor.shape, options.selected) === r * columns + c) td.className = "selected";
        td.addEventListener("click", () => options.pick && options.pick(index));
      }
    }
    return table;
  }

  function heatmapView(tensor, options) {
    const shape = tensor.shape;
    const geometry = layout(shape);
    const width = geometry.columns * (geometry.w * geometry.cell + geometry.gap) - geometry.gap;
    const height = geometry.rows * (geometry.h * geometry.cell + geometry.gap) - geometry.gap;
    const canvas = document.createElement("canvas");
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(width * ratio));
    canvas.height = Math.max(1, Math.round(height * ratio));
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    canvas.dataset.shape = JSON.stringify(shape);
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `heatmap of ${options.name || "a tensor"}, shape ${shapeText(shape)}`);
    const context = canvas.getContext("2d");
    context.scale(ratio, ratio);
    let scale = 0;
    for (let i = 0; i < tensor.stored; i++) {
      const a = Math.abs(tensor.values[i]);
      if (Number.isFinite(a) && a > scale) scale = a;
    }
    context.fillStyle = "#e5e7eb";
    for (let t = 0; t < geometry.tiles; t++) {
      const x = (t % geometry.columns) * (geometry.w * geometry.cell + geometry.gap);
      const y = Math.floor(t / geometry.columns) * (geometry.h * geometry.cell + geometry.gap);
      context.fillRect(x, y, geometry.w * geometry.cell, geometry.h * geometry.cell);
    }
    for (let flat = 0; flat < tensor.stored; flat++) {
      const index = unflatten(shape, flat);
      const { x, y } = cellOf(shape, index, geometry);
      const [r, g, b] = colour(tensor.values[flat], scale);
      context.fillStyle = `rgb(${r},${g},${b})`;
      context.fillRect(x, y, geometry.cell, geometry.cell);
    }
    if (options.selected) {
      const { x, y } = cellOf(shape, options.selected, geometry);
      context.strokeStyle = "#111827";
      context.lineWidth = Math.max(1.5, geometry.cell / 5);
      context.strokeRect(x - 1, y - 1, geometry.cell + 2, geometry.cell + 2);
    }
    // Where an element is drawn (CSS pixels from the canvas's top left corner): the tests
    // click there, as a person would.
    canvas.pointOf = (index) => {
      const { x, y } = cellOf(shape, index, geometry);
      return { x: x + geometry.cell / 2, y: y + geometry.cell / 2 };
    };
    const elementAt = (event) => {
      const box = canvas.getBoundingClientRect();
      return indexAt(shape, geometry, event.clientX - box.left, event.clientY - box.top);
    };
    canvas.addEventListener("mousemove", (event) => {
      const index = elementAt(event);
      if (!index) return hideTip();
      const value = at(tensor, index);
      showTip(event, `${options.name || ""}${indexText(index)} = ${value === null ? "not embedded" : format(value, 7)}`);
    });
    canvas.addEventListener("mouseleave", hideTip);
    canvas.addEventListener("click", (event) => {
      const index = elementAt(event);
      if (index && options.pick) options.pick(index);
    });
    const holder = document.createElement("div");
    holder.className = "heat";
    holder.append(canvas);
    const legend = document.createElement("div");
    legend.className = "scale";
    legend.innerHTML = `<span></span><span class="bar"></span><span></span><span class="muted"></span>`;
    legend.children[0].textContent = format(-scale, 3);
    legend.children[2].textContent = format(scale, 3);
    legend.children[3].textContent = describeTiles(shape, geometry);
    return [holder, legend];
  }

  function describeTiles(shape, geometry) {
    const tile = `${geometry.h}×${geometry.w}`;
    if (shape.length >= 4 && geometry.c > 1) return `rows: dim 0 (${geometry.n}) · tiles: dim ${shape.length - 3} (${geometry.c}) · each tile ${tile}`;
    if (shape.length >= 4) return `${geometry.tiles} tiles of ${tile}, one per index of the first dim`;
    if (shape.length === 3) return `${geometry.c} tiles of ${tile}`;
    if (geometry.wrap) return `wrapped in rows of ${geometry.wrap}`;
    return "";
  }

  return { load, inflate, get, format, number, at, flatIndex, unflatten, indexText, shapeText, sameShape, view, layout, cellOf };
})();
