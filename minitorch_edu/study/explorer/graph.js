/* The graph panel: the forward graph of a training step, laid out by Graphviz (compiled to
   WebAssembly, vendored in vendor/viz-global.js with its licence), with modules drawn as
   boxes around their ops that collapse into one box and expand again.

   The recording gives, per graph, nodes {id, kind: op|parameter|input|constant, op, formula,
   module, shape} and edges {from, to, position, shape}. From them and the set of collapsed
   modules this file writes DOT text, lets Graphviz draw it as SVG, and then only changes
   CSS classes to show the current step (no new layout per step). */
"use strict";

const Graph = (() => {
  let viz = null;
  let trace = null;
  let modules = new Map(); // path -> {path, type, text}
  const collapsed = new Set();
  let shown = { number: -1, key: "" };
  let zoom = 0.9;
  let natural = { width: 0, height: 0 };
  let callbacks = {};
  let lastEntry = null;

  async function init(data, handlers) {
    trace = data;
    callbacks = handlers;
    modules = new Map(trace.modules.map((m) => [m.path, m]));
    viz = await Viz.instance();
    drawToggles();
    document.getElementById("zoom-in").addEventListener("click", () => setZoom(zoom * 1.25));
    document.getElementById("zoom-out").addEventListener("click", () => setZoom(zoom / 1.25));
    document.getElementById("zoom-fit").addEventListener("click", fit);
  }

  // ---------------------------------------------------------------- modules
  function ancestors(path) {
    if (!path) return [];
    const parts = path.split(".");
    return parts.map((_, i) => parts.slice(0, i + 1).join("."));
  }

  // The box a node is drawn in: its own, or the outermost collapsed module around it.
  function visibleId(node) {
    for (const path of ancestors(node.module)) {
      if (collapsed.has(path)) return "module:" + path;
    }
    return node.id;
  }

  function usedModules() {
    const used = new Set();
    for (const graph of trace.graphs) {
      for (const node of graph.nodes) ancestors(node.module).forEach((p) => used.add(p));
    }
    return trace.modules.filter((m) => used.has(m.path));
  }

  function drawToggles() {
    const bar = document.getElementById("modules");
    bar.textContent = "";
    for (const module of usedModules()) {
      const button = document.createElement("button");
      button.className = "module-toggle";
      button.dataset.module = module.path;
      button.title = `${module.text}: click to ${collapsed.has(module.path) ? "expand" : "collapse"}`;
      button.setAttribute("aria-expanded", String(!collapsed.has(module.path)));
      button.textContent = (collapsed.has(module.path) ? "▸ " : "▾ ") + module.path;
      button.addEventListener("click", () => toggle(module.path));
      bar.append(button);
    }
  }

  function toggle(path) {
    if (collapsed.has(path)) collapsed.delete(path);
    else collapsed.add(path);
    drawToggles();
    shown.key = "";
    if (lastEntry) show(lastEntry.graph, lastEntry.entry, lastEntry.state);
  }

  function collapse(path, yes) {
    if (collapsed.has(path) !== yes) toggle(path);
  }

  // ---------------------------------------------------------------- DOT
  function escape(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function quote(text) {
    return '"' + String(text).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }

  function wrap(text, width, lines) {
    const words = String(text).split(/\s+/);
    const result = [];
    let line = "";
    for (const word of words) {
      if (line && line.length + word.length + 1 > width) {
        result.push(line);
        line = word;
      } else line = line ? line + " " + word : word;
    }
    if (line) result.push(line);
    if (result.length > lines) return [...result.slice(0, lines - 1), result[lines - 1] + " …"];
    return result;
  }

  function shapeText(shape) {
    return "[" + shape.join(", ") + "]";
  }

  function nodeLine(node) {
    const op = (trace.ops || {})[node.op] || {};
    const attributes = { id: "node-" + node.id, tooltip: node.kind === "op" ? `backward: ${node.formula}` : node.id };
    let label;
    if (node.kind === "op") {
      // What the op computes (its formula data's forward line), else its backward formula.
      const formula = wrap(op.forward || node.formula || "", 46, 3).map(escape).join('<BR ALIGN="LEFT"/>');
      label = `<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">` +
        `<TR><TD ALIGN="LEFT"><B>${escape(node.op)}</B></TD><TD ALIGN="RIGHT"><FONT COLOR="#6b7280">${escape(node.id)}  </FONT></TD></TR>` +
        (formula ? `<TR><TD ALIGN="LEFT" COLSPAN="2"><FONT POINT-SIZE="8" FACE="Courier" COLOR="#374151">${formula}<BR ALIGN="LEFT"/></FONT></TD></TR>` : "") +
        `</TABLE>>`;
      if (!node.recorded) attributes.style = '"rounded,filled,dashed"';
    } else {
      label = `<<B>${escape(node.id)}</B><BR/><FONT POINT-SIZE="9" COLOR="#4b5563">${escape(shapeText(node.shape))}</FONT>>`;
      attributes.fillcolor = node.kind === "parameter" ? '"#dbeafe"' : (node.kind === "input" ? '"#fef9c3"' : '"#f3f4f6"');
      attributes.shape = node.kind === "parameter" ? "box" : "note";
    }
    const rest = Object.entries(attributes)
      .map(([key, value]) => `${key}=${typeof value === "string" && value.startsWith('"') ? value : quote(value)}`)
      .join(", ");
    return `${quote(node.id)} [label=${label}, ${rest}];`;
  }

  function moduleLine(path) {
    const module = modules.get(path) || { type: "", text: path };
    const label = `<<B>${escape(path)}</B><BR/><FONT POINT-SIZE="8" COLOR="#4b5563">${wrap(module.text, 40, 2).map(escape).join("<BR/>")}</FONT><BR/><FONT POINT-SIZE="8" COLOR="#6366f1">collapsed: click to open</FONT>>`;
    return `${quote("module:" + path)} [label=${label}, id=${quote("module-" + path)}, fillcolor="#eef2ff", color="#6366f1", penwidth=1.6, peripheries=2, tooltip=${quote(module.text)}];`;
  }

  function dot(graph) {
    const lines = [
      "digraph explorer {",
      '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.38, bgcolor="transparent", pad=0.15];',
      '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=10, color="#6b7280", margin="0.08,0.04"];',
      '  edge [fontname="Helvetica", fontsize=8.5, color="#9ca3af", fontcolor="#6b7280", arrowsize=0.7];',
    ];
    // Nodes by the expanded module they sit in; collapsed modules become one node.
    const byModule = new Map();
    const place = (path, line) => {
      if (!byModule.has(path)) byModule.set(path, []);
      byModule.get(path).push(line);
    };
    const seenModules = new Set();
    for (const node of graph.nodes) {
      const visible = visibleId(node);
      if (visible.startsWith("module:")) {
        const path = visible.slice(7);
        if (!seenModules.has(path)) {
          seenModules.add(path);
          place(parentOf(path), moduleLine(path));
        }
      } else place(node.module || "", nodeLine(node));
    }
    const output = graph.nodes.find((n) => n.id === graph.output);
    place("", `"output:loss" [label=<<B>loss</B><BR/><FONT POINT-SIZE="9">${escape(shapeText(output ? output.shape : []))}</FONT>>, id="node-output", fillcolor="#dcfce7", color="#16a34a"];`);
    writeClusters("", byModule, lines, "  ");
    // Edges between visible boxes, once per pair, labelled with the shape carried.
    const edges = new Map();
    for (const edge of graph.edges) {
      const from = visibleId(nodeOf(graph, edge.from)), to = visibleId(nodeOf(graph, edge.to));
      if (from === to) continue;
      const key = from + "\u0000" + to;
      if (!edges.has(key)) edges.set(key, { from, to, shape: edge.shape, position: edge.position, count: 0 });
      edges.get(key).count += 1;
    }
    for (const edge of edges.values()) {
      const label = shapeText(edge.shape);
      lines.push(`  ${quote(edge.from)} -> ${quote(edge.to)} [label=${quote(" " + label)}, id=${quote("edge-" + edge.from + "->" + edge.to)}];`);
    }
    lines.push(`  ${quote(visibleId(output || { id: graph.output, module: "" }))} -> "output:loss" [id="edge-output"];`);
    lines.push("}");
    return lines.join("\n");
  }

  function nodeOf(graph, id) {
    return graph.nodes.find((n) => n.id === id) || { id, module: "" };
  }

  function parentOf(path) {
    const cut = path.lastIndexOf(".");
    return cut < 0 ? "" : path.slice(0, cut);
  }

  // Nested clusters for expanded modules: the nodes of `path`, then each child module's box.
  function writeClusters(path, byModule, lines, indent) {
    for (const line of byModule.get(path) || []) lines.push(indent + line);
    const children = [...byModule.keys()].filter((p) => p && parentOf(p) === path);
    // A module whose ops sit deeper (a Sequential with no op of its own) still gets a box.
    const deeper = [...byModule.keys()].filter((p) => p.startsWith(path ? path + "." : "") && p !== path);
    for (const candidate of deeper) {
      let ancestor = candidate;
      while (ancestor && parentOf(ancestor) !== path) ancestor = parentOf(ancestor);
      if (ancestor && !children.includes(ancestor)) children.push(ancestor);
    }
    for (const child of children.sort()) {
      const module = modules.get(child) || { type: "", text: child };
      const colour = child === "loss" ? "#99f6e4" : "#c7d2fe";
      lines.push(`${indent}subgraph ${quote("cluster_" + child)} {`);
      lines.push(`${indent}  id=${quote("cluster-" + child)}; label=${quote(child + " · " + module.type)}; labeljust=l; style="rounded,dashed"; color=${quote(colour)}; fontcolor="#4f46e5"; fontsize=10; margin=8;`);
      writeClusters(child, byModule, lines, indent + "  ");
      lines.push(`${indent}}`);
    }
  }

  // ---------------------------------------------------------------- drawing
  function render(graphNumber) {
    const key = graphNumber + "|" + [...collapsed].sort().join(",");
    if (shown.key === key) return;
    const container = document.getElementById("graph");
    const svg = viz.renderSVGElement(dot(trace.graphs[graphNumber]));
    container.textContent = "";
    container.append(svg);
    natural = { width: parseFloat(svg.getAttribute("width")), height: parseFloat(svg.getAttribute("height")) };
    shown = { number: graphNumber, key };
    setZoom(zoom);
    for (const title of svg.querySelectorAll("title")) title.remove(); // our own tooltips instead
    for (const node of svg.querySelectorAll("g.node")) {
      node.addEventListener("click", () => {
        const id = node.id;
        if (id.startsWith("module-")) toggle(id.slice(7));
        else if (id.startsWith("node-") && callbacks.node) callbacks.node(id.slice(5));
      });
    }
    for (const cluster of svg.querySelectorAll("g.cluster")) {
      const path = cluster.id.slice("cluster-".length);
      for (const part of cluster.querySelectorAll(":scope > text, :scope > path, :scope > polygon")) {
        part.addEventListener("click", () => toggle(path));
      }
      cluster.dataset.module = path;
    }
  }

  function setZoom(value) {
    zoom = Math.max(0.2, Math.min(3, value));
    const svg = document.querySelector("#graph svg");
    if (!svg) return;
    svg.style.width = natural.width * zoom * 4 / 3 + "px";
    svg.style.height = natural.height * zoom * 4 / 3 + "px";
  }

  function fit() {
    const container = document.getElementById("graph");
    setZoom(Math.min((container.clientWidth - 20) / (natural.width * 4 / 3), (container.clientHeight - 20) / (natural.height * 4 / 3)));
  }

  /* Show graph `graphNumber` with timeline entry `entry` current. `state` says, per graph
     node id, whether its forward has run and whether its backward has, at that moment. */
  function show(graphNumber, entry, state) {
    lastEntry = { graph: graphNumber, entry, state };
    render(graphNumber);
    const svg = document.querySelector("#graph svg");
    if (!svg) return;
    const graph = trace.graphs[graphNumber];
    for (const element of svg.querySelectorAll(".current, .done-forward, .done-backward, .flow, .feed, .forward, .backward, .loss, .deliver, .update, .accumulate, .hook")) {
      element.classList.remove("current", "done-forward", "done-backward", "flow", "feed", "forward", "backward", "loss", "deliver", "update", "accumulate", "hook");
    }
    const find = (id) => svg.querySelector(`[id="${CSS.escape(id)}"]`);
    for (const node of graph.nodes) {
      const element = find(boxId(visibleId(node)));
      if (!element) continue;
      if (state.backward.has(node.id)) element.classList.add("done-backward");
      else if (state.forward.has(node.id)) element.classList.add("done-forward");
    }
    const current = graph.nodes.find((n) => n.id === entry.node) || { id: entry.node, module: entry.module || "" };
    const visible = visibleId(current);
    const element = find(boxId(visible));
    if (element) {
      element.classList.add("current", entry.phase);
      ensureVisible(element);
    }
    const edgeClass = ["forward", "loss"].includes(entry.phase) ? "feed" : (["backward", "accumulate", "hook"].includes(entry.phase) ? "flow" : null);
    if (edgeClass) {
      for (const edge of svg.querySelectorAll("g.edge")) {
        if (edge.id.endsWith("->" + visible)) edge.classList.add(edgeClass);
      }
    }
  }

  function boxId(visible) {
    return visible.startsWith("module:") ? "module-" + visible.slice(7) : "node-" + visible;
  }

  function ensureVisible(element) {
    const container = document.getElementById("graph");
    const box = element.getBoundingClientRect(), view = container.getBoundingClientRect();
    if (box.top < view.top || box.bottom > view.bottom || box.left < view.left || box.right > view.right) {
      container.scrollTop += box.top - view.top - view.height / 2 + box.height / 2;
      container.scrollLeft += box.left - view.left - view.width / 2 + box.width / 2;
    }
  }

  return { init, show, toggle, collapse, dot, collapsed };
})();
