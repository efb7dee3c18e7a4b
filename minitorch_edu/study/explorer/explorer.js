/* The explorer page: step through recorded training steps, forward and back.

   The recording is the JSON in <script id="minitorch-edu-trace"> (schema: docs/explorer.md).
   Its `timeline` is the list of steps, in the order they happened; `current` is the index
   of the one shown. Everything on the page is drawn from those two:

     timeline (left)    every step, coloured by phase; click one, or use the keys
     graph (middle)     the forward graph, the current op highlighted (graph.js)
     step (right)       the current step: what it does, its formula, its tensors
     element (middle)   the element last clicked in any tensor: its value, its gradient,
                        the chain rule that made the gradient, and its optimizer update;
                        under DistributedDataParallel also every rank's gradient of it, the
                        bucket it travelled in and their average

   Keys: ArrowRight / ArrowLeft one step, Home / End the first and last step. */
"use strict";

const Explorer = (() => {
  const trace = JSON.parse(document.getElementById("minitorch-edu-trace").textContent);
  const timeline = trace.timeline;
  const PHASES = {
    forward: "forward op",
    loss: "loss",
    backward: "backward",
    accumulate: "sum over uses",
    hook: "hook",
    deliver: "into .grad",
    "all-reduce": "average over ranks",
    update: "optimizer update",
  };
  let current = 0;
  let selection = null; // {node, index}: the element followed in the element panel
  const $ = (id) => document.getElementById(id);
  const format = Tensors.format;

  // ---------------------------------------------------------------- small helpers
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function trainingStepOf(entry) {
    return trace.training_steps[entry.training_step - 1];
  }

  function graphNode(step, id) {
    return trace.graphs[step.graph].nodes.find((node) => node.id === id) || null;
  }

  function updateOf(step, name) {
    return step.updates.find((update) => update.parameter === name) || null;
  }

  function isParameter(id) {
    return trace.parameters.some((p) => p.name === id);
  }

  // ---------------------------------------------------------------- moving
  function go(index) {
    if (!timeline.length) return;
    current = Math.max(0, Math.min(timeline.length - 1, index));
    const entry = timeline[current];
    const step = trainingStepOf(entry);
    $("step").dataset.currentStep = String(current);
    $("position").textContent = `step ${current + 1} / ${timeline.length}`;
    $("training").textContent =
      `training step ${step.number} of ${trace.training_steps.length} · loss ${format(Tensors.number(step.loss), 6)}`;
    for (const row of document.querySelectorAll("#timeline .row.current")) row.classList.remove("current");
    const row = document.querySelector(`#timeline .row[data-index="${current}"]`);
    if (row) {
      row.classList.add("current");
      const box = row.getBoundingClientRect(), view = $("timeline").getBoundingClientRect();
      if (box.top < view.top + 30 || box.bottom > view.bottom) row.scrollIntoView({ block: "center" });
    }
    drawStep(entry, step);
    if (Graph.ready) Graph.show(step.graph, entry, progress(entry));
    drawElement();
  }

  // Which graph nodes have run forward, and which backward, at the current moment.
  function progress(entry) {
    const step = trainingStepOf(entry);
    const forward = new Set(), backward = new Set();
    for (let i = step.first; i < current; i++) {
      const e = timeline[i];
      if (e.phase === "forward" || e.phase === "loss") forward.add(e.node);
      if (e.phase === "backward") backward.add(e.node);
    }
    return { forward, backward };
  }

  function bindKeys() {
    document.addEventListener("keydown", (event) => {
      if (event.target.closest && event.target.closest("input, textarea, select")) return;
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      const moves = { ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0, End: timeline.length - 1 };
      if (event.key in moves) {
        event.preventDefault();
        go(moves[event.key]);
      }
    });
    $("first").addEventListener("click", () => go(0));
    $("previous").addEventListener("click", () => go(current - 1));
    $("next").addEventListener("click", () => go(current + 1));
    $("last").addEventListener("click", () => go(timeline.length - 1));
  }

  // ---------------------------------------------------------------- the timeline
  function rowText(entry) {
    switch (entry.phase) {
      case "backward": return entry.op;
      case "deliver": return `→ ${entry.node}.grad`;
      case "update": return `${entry.op} · ${entry.parameter}`;
      case "accumulate": return `Σ d${entry.node} (${entry.inputs.length} uses)`;
      case "hook": return `hook on d${entry.node}`;
      case "all-reduce": return `all-reduce ${entry.node} (${entry.bucket.world_size} ranks)`;
      default: return entry.op;
    }
  }

  function drawTimeline() {
    const nav = $("timeline");
    const legend = $("legend");
    nav.textContent = "";
    for (const step of trace.training_steps) {
      const head = element("div", "training-step", `Training step ${step.number} `);
      head.append(element("span", "muted", `loss ${format(Tensors.number(step.loss), 5)}`));
      nav.append(head);
      for (let i = step.first; i < step.end; i++) {
        const entry = timeline[i];
        const row = element("div", "row");
        row.dataset.index = String(i);
        row.dataset.phase = entry.phase;
        row.title = `${PHASES[entry.phase]}: ${rowText(entry)}${entry.module ? " in " + entry.module : ""}`;
        row.append(element("span", "number", String(i + 1)), element("span", "dot " + entry.phase));
        const what = element("span", "what", rowText(entry) + " ");
        if (entry.module && entry.phase !== "update" && entry.phase !== "deliver") {
          what.append(element("span", "where", entry.module));
        }
        row.append(what);
        row.addEventListener("click", () => go(i));
        nav.append(row);
      }
    }
    nav.prepend(legend);
    const present = new Set(timeline.map((e) => e.phase));
    for (const [phase, text] of Object.entries(PHASES)) {
      if (present.has(phase)) legend.append(element("span", "chip " + phase, text));
    }
  }

  // ---------------------------------------------------------------- the current step
  function describe(entry, step) {
    const optimizer = trace.optimizer.type;
    switch (entry.phase) {
      case "forward":
        return `Forward: ${entry.op} computes ${entry.node} from its inputs. Its backward formula (used on the way back) is below. Click any cell to follow that element.`;
      case "loss":
        return `The loss: ${entry.op} turns the model's output into the one number that backward starts from.`;
      case "backward":
        return `Backward through ${entry.node}: the gradient of the loss with respect to its output comes in, and the formula gives one gradient per input. Each goes on to the op (or leaf) that made that input.`;
      case "accumulate":
        return `${entry.node} was used ${entry.inputs.length} times, so its gradient is the sum of what each use sent back (the engine adds them as they arrive).`;
      case "hook":
        return `A hook registered on ${entry.node} sees the summed gradient and may replace it before it goes on.`;
      case "deliver":
        return `The finished gradient reaches the leaf ${entry.node} and is added into ${entry.node}.grad.`;
      case "all-reduce":
        return `DistributedDataParallel: every gradient of ${entry.node} (${entry.bucket.names.join(", ")}) is final on this rank, so the bucket is sent while backward goes on. Each of the ${entry.bucket.world_size} ranks computed its gradients on its own share of the batch; all_reduce sums them and every rank keeps the average, g ← (1/N) Σ_r g_r. Click an element to see its value on every rank.`;
      case "update":
        return `${optimizer} updates ${entry.parameter}: every element follows the rule below, with its own gradient and state. Click an element to see the rule with its numbers.`;
      default:
        return "";
    }
  }

  function drawStep(entry, step) {
    const panel = $("step");
    panel.textContent = "";
    const head = element("div", "step-head");
    head.append(element("span", "chip " + entry.phase, PHASES[entry.phase]));
    head.append(element("h2", "", entry.phase === "update" ? entry.parameter : (entry.phase === "deliver" ? entry.node + ".grad" : entry.op)));
    head.append(element("span", "where", `${entry.module ? entry.module + " · " : ""}training step ${entry.training_step} · #${entry.index + 1}`));
    panel.append(head);
    panel.append(element("p", "explain", describe(entry, step)));
    const op = (trace.ops || {})[entry.op.replace(/Backward$/, "")] || {};
    if (entry.phase === "update") drawUpdateRule(panel, updateOf(step, entry.parameter));
    else if (entry.phase === "forward" || entry.phase === "loss") {
      if (op.forward) formulaBox(panel, "what it computes", op.forward);
      formulaBox(panel, "its backward (used on the way back)", backwardText(op, entry.formula));
    } else if (entry.phase === "backward") {
      formulaBox(panel, "backward formula: one gradient per input, from grad (the gradient of its output)", backwardText(op, entry.formula));
    } else if (entry.formula) formulaBox(panel, "formula", entry.formula);
    if (entry.options) {
      const options = element("div", "options");
      for (const [key, value] of Object.entries(entry.options)) options.append(element("span", "option", `${key}=${value}`));
      panel.append(options);
    }
    const [inTitle, outTitle] = {
      forward: ["inputs", "output"], loss: ["inputs", "output"],
      backward: ["gradient in (of its output)", "gradients out (one per input)"],
      accumulate: ["what each use sent back", "their sum"], hook: ["before the hooks", "after the hooks"],
      deliver: ["delivered", ".grad after"], update: ["before the update", "after the update"],
      "all-reduce": ["each rank's own gradients", "their average, kept by every rank"],
    }[entry.phase];
    section(panel, inTitle, entry.inputs, entry, "input");
    section(panel, outTitle, entry.outputs, entry, "output");
  }

  function formulaBox(panel, label, text) {
    const box = element("div", "formula");
    box.append(element("span", "label", label), document.createTextNode(text));
    panel.append(box);
  }

  function backwardText(op, fallback) {
    if (op.backward && typeof op.backward === "object") {
      return Object.entries(op.backward).map(([name, formula]) => `d${name} = ${formula}`).join("\n");
    }
    return op.backward || fallback;
  }

  // "x: relu4": the input's name in the op's formula, then the tensor's label.
  function inputName(entry, side, position, value) {
    const op = (trace.ops || {})[entry.op.replace(/Backward$/, "")] || {};
    const names = op.inputs || [];
    if ((entry.phase === "forward" || entry.phase === "loss") && side === "input" && names[position]) {
      return `${names[position]} = ${value.name}`;
    }
    if (entry.phase === "backward" && side === "output" && names[position]) {
      return `d${names[position]} = ${value.name}`;
    }
    return value.name;
  }

  function section(panel, title, values, entry, side) {
    if (!values || !values.length) return;
    panel.append(element("h3", "", title));
    values.forEach((value, position) => {
      if (value.tensor === undefined) {
        const line = element("div", "tensor");
        line.append(element("span", "tensor-name", value.name + " = "), element("span", "scalar", value.value === null ? "None" : String(value.value)));
        panel.append(line);
        return;
      }
      const node = nodeForValue(entry, side, position, value);
      let note = "";
      if (side === "output" && entry.summed_to && entry.summed_to[position]) {
        note = `broadcast in the forward pass: the engine sums it to ${Tensors.shapeText(entry.summed_to[position])} before passing it on`;
      }
      const selected = selection && node === selection.node && Tensors.sameShape(Tensors.get(value.tensor).shape, nodeShape(node) || []) ? selection.index : null;
      const view = Tensors.view(value.tensor, { name: value.name, note, selected, pick: (index) => select(node, index, value.tensor) });
      const label = inputName(entry, side, position, value);
      if (label !== value.name) view.querySelector(".tensor-name").textContent = label;
      panel.append(view);
    });
  }

  // The graph node a shown tensor belongs to (its value or its gradient).
  function nodeForValue(entry, side, position, value) {
    if (value.node) return value.node;  // a parameter's part of an all-reduced bucket
    if (entry.phase === "forward" || entry.phase === "loss") return value.name;
    if (entry.phase === "backward" && side === "output") return value.name.replace(/^d/, "");
    return entry.node;
  }

  function nodeShape(id) {
    const step = trainingStepOf(timeline[current]);
    const node = graphNode(step, id);
    return node ? node.shape : null;
  }

  function drawUpdateRule(panel, update) {
    if (!update) return;
    if (update.skipped) {
      panel.append(element("p", "note", update.skipped));
      return;
    }
    const box = element("div", "formula");
    box.append(element("span", "label", `${trace.optimizer.type}, the lines this step takes${update.step ? ` (t = ${update.step})` : ""}`));
    box.append(document.createTextNode(update.lines.map((l) => l.formula + (l.condition ? `    [${l.condition}]` : "")).join("\n")));
    panel.append(box);
    const hyper = update.hyperparameters.map((h) => `${h.symbol === h.name ? h.name : `${h.symbol} (${h.name})`} = ${format(Tensors.number(h.value))}`);
    if (hyper.length) panel.append(element("p", "note", "hyperparameters: " + hyper.join(", ")));
    if (update.not_taken.length) panel.append(element("p", "note", "not taken: " + update.not_taken.join("; ")));
  }

  // ---------------------------------------------------------------- the element
  function select(node, index, tensor) {
    const shape = nodeShape(node);
    if (!shape || !Tensors.sameShape(shape, Tensors.get(tensor).shape)) {
      selection = { node, index, shape: Tensors.get(tensor).shape };
    } else selection = { node, index, shape };
    go(current);
    $("element").scrollTop = 0;
  }

  function drawElement() {
    const panel = $("element");
    panel.textContent = "";
    if (!selection) {
      panel.append(element("p", "empty", "Click any cell of a tensor (an activation, a gradient, a parameter) to follow that element: its value, its gradient, the chain rule that made the gradient, and for a parameter its update by the optimizer."));
      return;
    }
    const step = trainingStepOf(timeline[current]);
    const { node, index } = selection;
    const info = graphNode(step, node);
    const head = element("div", "element-head");
    const title = element("h2", "", `${node}${Tensors.indexText(index)}`);
    title.dataset.node = node;
    title.dataset.index = JSON.stringify(index);
    head.append(title);
    const input = element("input");
    input.value = index.join(",");
    input.title = "type another index (comma separated) and press Enter";
    input.setAttribute("aria-label", "element index");
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      const typed = input.value.split(",").map((part) => parseInt(part.trim(), 10));
      const shape = selection.shape;
      if (typed.length === shape.length && typed.every((v, d) => Number.isInteger(v) && v >= 0 && v < shape[d])) {
        selection = { ...selection, index: typed };
        go(current);
      } else input.setCustomValidity("outside the shape " + Tensors.shapeText(shape));
      input.reportValidity();
    });
    head.append(input, element("span", "muted", `training step ${step.number}`));
    panel.append(head);
    if (isParameter(node)) drawParameterElement(panel, step, node, index);
    else drawActivationElement(panel, step, node, index, info);
  }

  function facts(panel, rows) {
    const table = element("table", "facts");
    for (const [label, value, className] of rows) {
      const tr = table.insertRow();
      tr.append(element("th", "", label));
      const td = element("td", className || "", value === null || value === undefined ? "–" : format(value, 8));
      if (typeof value === "number") td.dataset.value = String(value);
      tr.append(td);
    }
    panel.append(table);
  }

  function drawParameterElement(panel, step, name, index) {
    const update = updateOf(step, name);
    const value = update ? Tensors.at(Tensors.get(update.before), index) : null;
    const gradient = update && update.grad !== null ? Tensors.at(Tensors.get(update.grad), index) : null;
    const after = update ? Tensors.at(Tensors.get(update.after), index) : null;
    facts(panel, [
      ["value before the update", value, "element-value"],
      [`gradient d loss / d ${name}${Tensors.indexText(index)}`, gradient, "element-grad"],
      ["value after the update", after, "element-after"],
    ]);
    const reduced = (step.all_reduce || {})[name];
    if (reduced) {
      const own = drawAcrossRanks(panel, reduced, name, index);
      drawChainRule(panel, step, name, index, own);
    } else drawChainRule(panel, step, name, index, gradient);
    if (update) drawElementUpdate(panel, update, index);
    drawHistory(panel, name, index, step.number);
  }

  // DistributedDataParallel: the element on every rank, the bucket, the average. Returns this
  // rank's own gradient, which is what the chain rule below adds up to.
  function drawAcrossRanks(panel, reduced, name, index) {
    const n = reduced.world_size;
    const local = reduced.local.map((tensor) => Tensors.at(Tensors.get(tensor), index));
    const average = Tensors.at(Tensors.get(reduced.average), index);
    panel.append(element("h3", "", "across the ranks"));
    const box = element("div", "ranks");
    const size = Tensors.get(reduced.local[0]).shape.reduce((a, b) => a * b, 1);
    const slot = reduced.offset + Tensors.flatIndex(Tensors.get(reduced.local[0]).shape, index);
    box.append(element("div", "note", `rode in bucket ${reduced.bucket} of ${reduced.buckets} (${reduced.bucket_names.join(", ")}), at slot ${slot} of it (${name} fills slots ${reduced.offset} to ${reduced.offset + size - 1})`));
    const table = element("table", "facts");
    local.forEach((value, rank) => {
      const tr = table.insertRow();
      tr.className = "rank";
      tr.append(element("th", "", `rank ${rank} computed g_${rank}${rank === reduced.rank ? " (this page's rank)" : ""}`));
      const td = element("td", "", format(value, 8));
      td.dataset.value = String(value);
      tr.append(td);
    });
    const tr = table.insertRow();
    tr.className = "average";
    tr.append(element("th", "", `average (1/${n}) (${local.map((_, r) => "g_" + r).join(" + ")})`));
    const td = element("td", "", format(average, 8));
    td.dataset.value = String(average);
    tr.append(td);
    box.append(table);
    box.append(element("div", "note", `Every rank keeps the average: it is the gradient the update uses. The chain rule below is this rank's own, on its share of the batch: it adds up to g_${reduced.rank}.`));
    panel.append(box);
    return local[reduced.rank];
  }

  function drawActivationElement(panel, step, node, index, info) {
    const values = step.values[node] || { uses: [] };
    const value = values.value !== undefined ? Tensors.at(Tensors.get(values.value), index) : null;
    const gradient = values.grad !== undefined ? Tensors.at(Tensors.get(values.grad), index) : null;
    facts(panel, [
      ["value", value, "element-value"],
      [`gradient d loss / d ${node}${Tensors.indexText(index)}`, gradient, "element-grad"],
    ]);
    if (info && info.kind !== "op" && values.grad === undefined) {
      panel.append(element("p", "note", `${node} does not require grad: no gradient is computed for it.`));
      return;
    }
    if (node === trace.graphs[step.graph].output) {
      panel.append(element("p", "note", "This is the loss: backward starts here, with d loss / d loss = 1."));
      return;
    }
    drawChainRule(panel, step, node, index, gradient);
  }

  // d loss / d x[i] = sum over the uses of x of each use's share; each share split by
  // sample (a parameter) or by the channel or feature of the layer using it (an
  // activation), for every element, and term by term for the elements explained when the
  // page was recorded.
  function drawChainRule(panel, step, node, index, gradient) {
    panel.append(element("h3", "", "chain rule"));
    const chain = element("div", "chain");
    panel.append(chain);
    const values = step.values[node] || { uses: [] };
    const uses = values.uses || [];
    if (!uses.length) {
      chain.append(element("p", "note", "No gradient reached this element in the recorded backward pass."));
      return;
    }
    const shares = uses.map((use) => Tensors.at(Tensors.get(use.share), index));
    const where = `${node}${Tensors.indexText(index)}`;
    const head = element("div", "", `d loss / d ${where} = ${format(gradient, 8)}`);
    head.className = "total-line";
    chain.append(head);
    const beforeHooks = values.before_hooks !== undefined && values.before_hooks !== null
      ? Tensors.at(Tensors.get(values.before_hooks), index) : gradient;
    chain.append(element("div", "note", uses.length === 1
      ? `${node} is used once, so its gradient is that use's share (what the node's backward gave this input):`
      : `${node} is used ${uses.length} times: its gradient is the sum of the uses' shares (what each node's backward gave it):`));
    chain.append(partsTable(["use", "share"], uses.map((use, i) => [
      `via ${use.node} (${use.op}, input ${use.position})`, shares[i]]), "uses", beforeHooks));
    if (values.hooks) {
      chain.append(element("div", "note", `then the hooks on ${node} (${values.hooks}) turned that sum, ${format(beforeHooks, 8)}, into the gradient passed on, ${format(gradient, 8)}.`));
    }
    uses.forEach((use, i) => elementwiseTerm(chain, step, use, node, index, shares[i]));
    const record = (step.gradients || {})[node];
    if (!record) return;
    const explained = record.explained.find((e) => Tensors.sameShape(e.index, index));
    uses.forEach((use, i) => {
      const samples = record.by_sample.find((u) => u.node === use.node && u.position === use.position);
      const detail = explained && explained.elements[0].uses.find((u) => u.node === use.node && u.input_position === use.position);
      // an activation's elementwise use: its one term is shown above
      if (!samples && !detail) return;
      const box = element("div", "use");
      const anyDetail = record.explained.map((e) => e.elements[0].uses.find((u) => u.node === use.node && u.input_position === use.position)).find(Boolean);
      box.append(element("div", "use-title", `via ${use.node} (${use.op}${samples ? ", input " + samples.input_name : ""}): ${format(shares[i], 8)}`));
      if (anyDetail && anyDetail.local_formula) {
        const local = element("div", "local");
        local.append(element("span", "label", "local derivative: "), document.createTextNode(anyDetail.local_formula));
        box.append(local);
      }
      if (samples) drawSamples(box, samples, index, shares[i], selection.shape, step);
      if (detail) drawTerms(box, detail, where);
      else box.append(termsNote(node, record));
      chain.append(box);
    });
  }

  // Through an elementwise op, a share has one term: the user's upstream gradient at the
  // same element times the local derivative its formula data declares.
  function elementwiseTerm(chain, step, use, node, index, share) {
    const op = (trace.ops || {})[use.op] || {};
    const user = step.values[use.node];
    if (!op.elementwise || !user || user.grad === undefined) return;
    const upstreamTensor = Tensors.get(user.grad);
    if (!Tensors.sameShape(upstreamTensor.shape, selection.shape)) return;
    const upstream = Tensors.at(upstreamTensor, index);
    const name = (op.inputs || [])[use.position];
    const local = name && op.local ? op.local[name] : null;
    const line = element("div", "term-line");
    const localText = upstream !== 0 ? format(share / upstream, 6) : "…";
    line.textContent = `via ${use.node}, elementwise: one term, d${use.node}${Tensors.indexText(index)} × local${local ? ` (${local})` : ""} = ${format(upstream, 6)} × ${localText} = ${format(share, 7)}`;
    if (upstream === 0) line.textContent += `  (no gradient reached ${use.node} here)`;
    chain.append(line);
  }

  function termsNote(node, record) {
    const note = element("div", "note", `Term by term (upstream gradient × local derivative for each output element) the page holds the elements chosen when it was recorded; for ${node}: `);
    record.explained.forEach((e, i) => {
      const link = element("a", "jump", Tensors.indexText(e.index));
      link.addEventListener("click", () => {
        selection = { ...selection, index: e.index };
        go(current);
      });
      if (i) note.append(", ");
      note.append(link);
    });
    note.append(` (the largest gradients, and any named with --element ${node}[...] or explore(elements=...)).`);
    return note;
  }

  // The name of index `dim` of a node's output elements j, from its op's formula data
  // ("n, o, y, x": o), or j[dim].
  function partName(step, node, op, dim) {
    const spec = (((trace.ops || {})[op] || {}).indices || {}).out;
    const info = graphNode(step, node);
    if (!spec || !info) return `j[${dim}]`;
    return indexNames(spec.split(",").map((n) => n.trim()), info.shape.length)[dim];
  }

  // The names of j's indices for an output of `rank` dims, "..." filled in: ["n", "o"] for
  // "..., o" at rank 2; j[d] where the formula data names none.
  function indexNames(names, rank) {
    const open = names.indexOf("...");
    if (open >= 0) {
      const fill = Math.max(rank - (names.length - 1), 0);
      names = [...names.slice(0, open), ...Array(fill).fill(null), ...names.slice(open + 1)];
    }
    if (names.length !== rank) names = [];
    return Array.from({ length: rank }, (_, d) => names[d] || `j[${d}]`);
  }

  function rankOf(group) {
    if (group.terms.length) return group.terms[0].output_index.length;
    for (const sub of group.groups) {
      const rank = rankOf(sub);
      if (rank) return rank;
    }
    return 0;
  }

  // One use's share split into parts that add up to it: by sample n of the node's output
  // (a parameter), or by its index `dim` (an activation: the channel or output feature).
  function drawSamples(box, samples, index, share, shape, step) {
    const dim = samples.dim || 0;
    const name = dim === 0 ? "sample" : partName(step, samples.node, samples.op, dim);
    const label = (k) => (dim === 0 ? `sample ${k}` : `${name} = ${k}`);
    const offset = Tensors.flatIndex(shape, index);
    if (samples.elements !== undefined && offset >= samples.elements) {
      box.append(element("div", "note", `split by ${name}: kept for the first ${samples.elements} elements only (those the page embeds), not for this one.`));
      return;
    }
    let rows = [], rest = null;
    if (samples.samples !== undefined) {
      const tensor = Tensors.get(samples.samples);
      const stride = tensor.shape.slice(1).reduce((a, b) => a * b, 1);
      for (let n = 0; n < samples.count; n++) rows.push([label(n), tensor.values[n * stride + offset]]);
    } else {  // many parts: the largest parts of this element, and the rest summed
      const which = Tensors.get(samples.top.samples), parts = Tensors.get(samples.top.values);
      const stride = which.shape.slice(1).reduce((a, b) => a * b, 1);
      for (let k = 0; k < which.shape[0]; k++) {
        rows.push([label(which.values[k * stride + offset]), parts.values[k * stride + offset]]);
      }
      const restTensor = Tensors.get(samples.top.rest);
      rest = [samples.count - which.shape[0], restTensor.values[offset]];
    }
    const zeros = rows.filter((row) => row[1] === 0).length;
    if (dim !== 0 && (rest || zeros > 1)) {  // an activation's element may reach few channels
      rows = rows.filter((row) => row[1] !== 0);
      rest = rest ? [rest[0] + zeros, rest[1]] : [zeros, 0];
    }
    if (rest) {
      const what = dim === 0 ? `${rest[0]} samples` : (rest[0] === 1 ? `value of ${name}` : `${rest[0]} values of ${name}`);
      rows.push([`${rows.length ? "the other" : "all"} ${what}${rest[1] === 0 ? " (each 0)" : ""}`, rest[1]]);
    }
    const node = samples.node;
    box.append(element("div", "note", dim === 0
      ? `split by sample: sample n's part is the node's backward with the gradient it received kept at sample n (zero elsewhere); backward is linear in that gradient, so the parts add up to the share.`
      : `split by ${name} (index ${dim} of ${node}'s elements j, ${samples.count} in all): part ${name} = k is ${node}'s backward with the gradient it received, d${node}, kept where j[${dim}] = k (zero elsewhere); backward is linear in that gradient, so the parts add up to the share.`));
    box.append(partsTable([dim === 0 ? "sample" : name, "part"], rows, dim === 0 ? "sample" : "part", share));
  }

  // The terms of a share, grouped (per sample, then per channel...), as the explanation
  // recorded them: each level's listed parts and the rest add up to the level's value.
  function drawTerms(box, detail, where) {
    if (!detail.parts) {
      box.append(element("div", "note", `not split into terms: ${detail.note}`));
      return;
    }
    box.append(element("div", "note", `term by term: the share is the sum over the elements j of ${detail.node} of d${detail.node}[j] (upstream gradient) × d ${detail.node}[j] / d ${where} (local derivative): ${detail.term_count} nonzero terms, grouped by ${detail.group_names.filter((n) => n !== "...").join(", ") || "j"}.`));
    const tree = element("div", "terms");
    tree.dataset.grouping = "terms";
    drawGroup(tree, detail.parts, detail);
    box.append(tree);
  }

  function drawGroup(container, group, detail) {
    const list = element("div", "group-parts");
    list.dataset.value = String(Tensors.number(group.value));
    let sum = 0;
    const names = indexNames(detail.group_names, rankOf(detail.parts));
    for (const sub of group.groups) {
      const value = Tensors.number(sub.value);
      sum += value;
      const part = element("details", "part");
      part.dataset.value = String(value);
      // the indices this level fixes (a level that would not split is skipped: n and o)
      const fixed = sub.index.slice(group.index.length).map((v, d) => `${names[group.index.length + d]} = ${v}`).join(", ");
      const summary = element("summary", "", `${fixed}: ${format(value, 7)}  (${sub.count} term${sub.count === 1 ? "" : "s"})`);
      part.append(summary);
      if (sub.opened) drawGroup(part, sub, detail);
      else part.append(element("div", "note", "not opened (max_groups / max_terms when recorded)"));
      list.append(part);
    }
    for (const term of group.terms) {
      const value = Tensors.number(term.product);
      sum += value;
      const row = element("div", "part term");
      row.dataset.value = String(value);
      const local = term.expression && term.expression !== format(Tensors.number(term.local), 6)
        ? `${term.expression}${term.numbers && term.numbers !== term.expression ? " = " + term.numbers : ""} = ${format(Tensors.number(term.local), 6)}`
        : format(Tensors.number(term.local), 6);
      row.textContent = `j = ${Tensors.indexText(term.output_index)}: d${detail.node}[j] × local = ${format(Tensors.number(term.upstream), 6)} × (${local}) = ${format(value, 7)}`;
      list.append(row);
    }
    if (group.left_out) {
      const value = Tensors.number(group.left_out_sum);
      sum += value;
      const rest = element("div", "part rest");
      rest.dataset.value = String(value);
      rest.textContent = group.groups.length
        ? `… ${group.left_out} more groups (${group.left_out_count} terms) adding ${format(value, 7)}`
        : `… ${group.left_out} more terms adding ${format(value, 7)}`;
      list.append(rest);
    }
    const total = Tensors.number(group.value);
    const check = element("div", "group-sum");
    check.append(document.createTextNode(`= ${format(sum, 7)} `));
    check.append(agreement(sum, total, group));
    list.append(check);
    container.append(list);
  }

  function agreement(sum, total, parts) {
    const agree = Math.abs(sum - total) <= 1e-5 * Math.abs(total) + 1e-9;
    return element("span", agree ? "ok" : "bad", agree ? "✓ adds up" : `≠ ${format(total, 7)}`);
  }

  // A table of parts that add up to `total`, with bars, the sum, and the check.
  function partsTable(headings, rows, grouping, total) {
    const table = element("table");
    table.dataset.grouping = grouping;
    const headRow = table.insertRow();
    for (const heading of [...headings.slice(0, 2), "", ...headings.slice(2)]) headRow.append(element("th", "", heading));
    let sum = 0, largest = 0;
    for (const row of rows) largest = Math.max(largest, Math.abs(row[1] || 0));
    for (const [label, value, extra] of rows) {
      const tr = table.insertRow();
      tr.className = "part";
      tr.dataset.value = String(value);
      sum += value;
      tr.append(element("td", "", label), element("td", "", format(value, 7)));
      const bar = element("td");
      const width = largest > 0 ? Math.round(80 * Math.abs(value) / largest) : 0;
      const span = element("span", "bar " + (value < 0 ? "neg" : "pos"));
      span.style.width = width + "px";
      bar.append(span);
      tr.append(bar);
      if (extra !== undefined) tr.append(element("td", "", extra));
    }
    const totalRow = table.insertRow();
    totalRow.className = "total";
    totalRow.dataset.value = String(sum);
    totalRow.append(element("td", "", "sum"), element("td", "", format(sum, 7)));
    const check = element("td");
    let magnitude = 0;
    for (const row of rows) magnitude += Math.abs(row[1] || 0);
    // float32 parts: their sum may differ from the total by rounding, relative to the parts
    const agree = total !== null && Math.abs(sum - total) <= 1e-5 * magnitude + 1e-12;
    check.append(element("span", agree ? "ok" : "bad", total === null ? "" : (agree ? "✓ adds up" : `≠ ${format(total, 7)}`)));
    totalRow.append(check);
    return table;
  }

  // ---------------------------------------------------------------- the update, one element
  function operand(x, index) {
    if (x.tensor !== undefined) return Tensors.at(Tensors.get(x.tensor), index);
    return Tensors.number(x.value);
  }

  function substitute(template, numbers) {
    const alone = /^\{\d+\}$/.test(template.trim());
    return template.replace(/\{(\d+)\}/g, (_, i) => {
      const text = format(numbers[Number(i)], 6);
      return text.startsWith("-") && !alone ? `(${text})` : text;
    });
  }

  function drawElementUpdate(panel, update, index) {
    panel.append(element("h3", "", `${trace.optimizer.type} update of this element${update.step ? ` (t = ${update.step})` : ""}`));
    if (update.skipped) {
      panel.append(element("p", "note", update.skipped));
      return;
    }
    const rule = element("div", "rule");
    let last = null;
    for (const line of update.lines) {
      const numbers = line.numbers.map((x) => operand(x, index));
      const value = operand(line.value, index);
      const box = element("div", "line");
      box.append(element("div", "", line.formula));
      if (line.condition) box.lastChild.append(element("span", "cond", `   [${line.condition}]`));
      const stages = substitute(line.template, numbers).split(update.stage);
      for (const stage of stages) box.append(element("div", "work", "= " + stage));
      if (stages[stages.length - 1] !== format(value, 6)) {
        const result = element("div", "work", "= " + format(value, 8));
        result.dataset.value = String(value);
        box.append(result);
      }
      box.dataset.symbol = line.symbol;
      box.dataset.value = String(value);
      rule.append(box);
      last = value;
    }
    panel.append(rule);
    const actual = Tensors.at(Tensors.get(update.after), index);
    const agree = last !== null && Math.abs(last - actual) <= 1e-6 * Math.max(Math.abs(last), Math.abs(actual)) + 1e-12;
    const check = element("p", "note", `the real optimizer.step() left ${format(actual, 8)} `);
    check.append(element("span", agree ? "ok" : "bad", agree ? "✓ the same" : "✗ differs"));
    panel.append(check);
  }

  // ---------------------------------------------------------------- state across steps
  function stateSymbol(key, steps, name) {
    for (const step of steps) {
      const update = updateOf(step, name);
      const line = update && update.lines.find((l) => l.state === key);
      if (line) return line.symbol.replace(/_t$/, "");
    }
    return key === "step" ? "t" : key;
  }

  function drawHistory(panel, name, index, now) {
    const steps = trace.training_steps;
    const keys = [];
    for (const step of steps) {
      const update = updateOf(step, name);
      for (const key of Object.keys((update && update.state_after) || {})) if (!keys.includes(key)) keys.push(key);
    }
    const scalars = ["c1", "c2"].filter((symbol) => steps.some((s) => {
      const update = updateOf(s, name);
      return update && update.lines.some((l) => l.symbol === symbol);
    }));
    panel.append(element("h3", "", "optimizer state across the recorded steps"));
    const box = element("div", "history");
    const table = element("table");
    const head = table.insertRow();
    const columns = [["step", null], ["g", "grad"], ...keys.map((k) => [`${stateSymbol(k, steps, name)} (${k})`, k]), ...scalars.map((s) => [s, s]), ["θ after", "after"]];
    for (const [label] of columns) head.append(element("th", "", label));
    const series = new Map(columns.slice(1).filter(([, key]) => key !== "step").map(([label]) => [label, []]));
    for (const step of steps) {
      const update = updateOf(step, name);
      const tr = table.insertRow();
      if (step.number === now) tr.className = "now";
      tr.append(element("td", "", String(step.number)));
      for (const [label, key] of columns.slice(1)) {
        let value = null;
        if (update) {
          if (key === "grad") value = update.grad === null ? null : Tensors.at(Tensors.get(update.grad), index);
          else if (key === "after") value = Tensors.at(Tensors.get(update.after), index);
          else if (key === "c1" || key === "c2") {
            const line = update.lines.find((l) => l.symbol === key);
            value = line ? operand(line.value, index) : null;
          } else if (update.state_after[key]) value = operand(update.state_after[key], index);
        }
        if (series.has(label)) series.get(label).push(value);
        const td = element("td", "", value === null ? "–" : format(value, 6));
        if (value !== null) td.dataset.value = String(value);
        td.dataset.column = key;
        tr.append(td);
      }
    }
    box.append(table);
    if (steps.length > 1) box.append(sparklines(series, now));
    else box.append(element("p", "note", "Record more than one step (--steps K) to watch the state change from step to step."));
    panel.append(box);
  }

  function sparklines(series, now) {
    const width = 128, height = 42, pad = 5;
    const holder = element("div");
    holder.style.display = "flex";
    holder.style.flexWrap = "wrap";
    holder.style.gap = "10px";
    holder.style.marginTop = "6px";
    for (const [label, values] of series) {
      const known = values.filter((v) => v !== null && Number.isFinite(v));
      if (known.length < 2) continue;
      const low = Math.min(...known), high = Math.max(...known);
      const x = (i) => pad + (i * (width - 2 * pad)) / (values.length - 1);
      const y = (v) => height - pad - (high > low ? ((v - low) * (height - 2 * pad)) / (high - low) : (height - 2 * pad) / 2);
      const points = values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter(Boolean).join(" ");
      const figure = element("div");
      figure.innerHTML = `<svg width="${width}" height="${height}" role="img"><rect x="0" y="0" width="${width}" height="${height}" rx="4" fill="#f9fafb"/><polyline fill="none" stroke="#4b5563" stroke-width="1.5" points="${points}"/>` +
        values.map((v, i) => (v === null ? "" : `<circle cx="${x(i)}" cy="${y(v)}" r="${i + 1 === now ? 4 : 2.5}" fill="${i + 1 === now ? "#ea580c" : "#4b5563"}"/>`)).join("") + `</svg>`;
      figure.append(element("div", "note", label));
      figure.lastChild.style.margin = "0";
      holder.append(figure);
    }
    return holder;
  }

  // ---------------------------------------------------------------- the graph's clicks
  function nodeClicked(id) {
    const entry = timeline[current];
    const step = trainingStepOf(entry);
    const candidates = [];
    for (let i = step.first; i < step.end; i++) if (timeline[i].node === id) candidates.push(i);
    if (!candidates.length) {
      const node = graphNode(step, id);
      if (node) selection = { node: id, index: node.shape.map(() => 0), shape: node.shape };
      go(current);
      return;
    }
    const backwards = ["backward", "accumulate", "hook", "deliver"].includes(entry.phase);
    const preferred = candidates.find((i) => (["backward", "deliver"].includes(timeline[i].phase)) === backwards);
    go(preferred !== undefined ? preferred : candidates[0]);
  }

  // ---------------------------------------------------------------- start
  // Graphviz (vendor/viz-global.js) is embedded zlib-compressed: inflate it and run it
  // from a blob: URL, which never leaves the page.
  async function loadGraphviz() {
    const holder = document.getElementById("graphviz-source");
    const source = await Tensors.inflate(holder.textContent.trim());
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = resolve;
      script.onerror = () => reject(new Error("the embedded Graphviz did not load"));
      document.head.append(script);
    });
    URL.revokeObjectURL(url);
  }

  async function start() {
    $("title").textContent = "· " + trace.title;
    const graphviz = loadGraphviz();
    await Tensors.load(trace);
    drawTimeline();
    bindKeys();
    go(0);
    try {
      await graphviz;
      await Graph.init(trace, { node: nodeClicked });
      Graph.ready = true;
      go(current);
    } catch (error) {
      $("graph").textContent = "The graph could not be laid out: " + error;
      console.warn(error);
    }
    document.documentElement.dataset.ready = "true";
    document.documentElement.dataset.readyMs = String(Math.round(performance.now()));
  }

  return { start, go, get current() { return current; }, get selection() { return selection; }, trace };
})();

Explorer.start();
