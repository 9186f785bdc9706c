// Anatomy-VLM web viewer: plain JavaScript over the service's JSON API (no build step, no CDN).
//
// Predict tab: upload an image (POST /predict), draw it with the region boxes, list the findings
// with their probabilities; clicking a finding highlights its top regions and draws its
// explanation subgraph (Prediction -> ROIs -> Anatomy -> knowledge nodes, edge width by weight)
// with the Cypher that produced it (GET /predictions/{id}/explanation; persisted predictions
// only: otherwise the subgraph comes from the predict response itself).
// Ontology tab: GET /concepts?q= and GET /concepts/{id}. Cypher tab: POST /cypher.
// All text from the service is put into the page with textContent, never parsed as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const KEY_STORAGE = "anatomy-vlm.api-key";

  // The API lives where the page is served from ("/" or a prefix); a page opened as
  // /static/index.html still talks to the service root.
  const API_BASE = (() => {
    let path = location.pathname.slice(0, location.pathname.lastIndexOf("/") + 1);
    if (path.endsWith("/static/")) path = path.slice(0, -"static/".length);
    return path;
  })();

  const state = {
    prediction: null, // the POST /predict response
    picture: null, // a canvas holding the decoded upload, or null when the browser cannot show it
    scale: 1, // canvas pixels per image pixel
    selected: -1, // index of the selected finding
    explainToken: 0, // drops explanation responses that arrive after another finding was picked
    query: null, // the explanation query shown (for Copy and "Open in Cypher tab")
  };

  // -- HTTP ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  /** The service's `{"detail": ...}` as one line (FastAPI's validation errors are a list). */
  function formatDetail(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => (d && d.msg ? `${(d.loc || []).join(".")}: ${d.msg}` : JSON.stringify(d)))
        .join("; ");
    }
    return JSON.stringify(detail);
  }

  async function api(path, { method = "GET", body, json } = {}) {
    const headers = { Accept: "application/json" };
    const key = $("api-key").value.trim();
    if (key) headers["X-API-Key"] = key;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(API_BASE + path, { method, headers, body });
    } catch (err) {
      throw new ApiError(0, `cannot reach the service at ${location.origin}${API_BASE} (${err.message})`);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      let detail;
      if (data && typeof data === "object" && "detail" in data) detail = formatDetail(data.detail);
      else if (typeof data === "string" && data) detail = data.slice(0, 400);
      else detail = response.statusText || "no detail given";
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  function showError(context, err) {
    let message;
    if (err instanceof ApiError) {
      const hint =
        err.status === 401 ? " (enter an API key above and press Save)"
        : err.status === 403 ? " (this key's role is too low for that; persisting and curation need a curator key)"
        : "";
      message = `${context}: ${err.status ? `HTTP ${err.status}: ` : ""}${err.detail}${hint}`;
    } else {
      message = `${context}: ${err && err.message ? err.message : err}`;
    }
    $("error-text").textContent = message;
    $("error").hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error-text").textContent = "";
  }

  // -- small DOM helpers --------------------------------------------------------------------
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null) continue;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  const percent = (p) => `${(100 * p).toFixed(p >= 0.995 || p < 0.001 ? 0 : 1)}%`;
  const shortNumber = (x) => (Number.isInteger(x) ? String(x) : Number(x).toPrecision(3));
  const truncate = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  /** A prediction id holds slashes (image/run/prediction/finding): encode each segment. */
  const encodePath = (id) => id.split("/").map(encodeURIComponent).join("/");

  function cellValue(value) {
    if (value === null || value === undefined) return el("span", { className: "muted", text: "null" });
    if (typeof value === "number") return shortNumber(value);
    if (typeof value === "string" || typeof value === "boolean") return String(value);
    return el("code", { text: JSON.stringify(value) });
  }

  /** A table of `columns` and `rows` (each row a list in column order, or an object by column). */
  function resultTable(columns, rows) {
    const head = el("tr", {}, columns.map((c) => el("th", { text: c })));
    const body = rows.map((row) =>
      el(
        "tr",
        {},
        columns.map((c, i) => {
          const value = Array.isArray(row) ? row[i] : row[c];
          return el("td", { className: typeof value === "number" ? "num" : undefined }, cellValue(value));
        }),
      ),
    );
    return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
  }

  // -- tabs and the key ---------------------------------------------------------------------
  function switchTab(name) {
    for (const tab of document.querySelectorAll(".tab")) {
      const active = tab.dataset.tab === name;
      tab.classList.toggle("active", active);
      tab.setAttribute("aria-selected", String(active));
      $(`tab-${tab.dataset.tab}`).hidden = !active;
    }
    if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  }

  function initKey() {
    const saved = localStorage.getItem(KEY_STORAGE);
    if (saved) {
      $("api-key").value = saved;
      $("key-state").textContent = "key loaded";
    }
    $("key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const key = $("api-key").value.trim();
      if (key) localStorage.setItem(KEY_STORAGE, key);
      else localStorage.removeItem(KEY_STORAGE);
      $("key-state").textContent = key ? "key saved" : "key cleared";
      clearError();
    });
  }

  async function checkReady() {
    const box = $("ready");
    try {
      const response = await fetch(`${API_BASE}ready`, { headers: { Accept: "application/json" } });
      const data = await response.json();
      const mark = (ok) => (ok ? "✓" : "✗");
      const parts = [`graph ${mark(data.graph)}`, `model ${mark(data.model)}`];
      if (data.variant) parts.push(`variant ${data.variant}`);
      if (data.graph_version) parts.push(`graph ${String(data.graph_version).slice(0, 12)}`);
      if (data.model_name) parts.push(data.model_name);
      box.textContent = (response.ok ? "" : "not ready: ") + parts.join(" · ");
      box.className = `ready ${response.ok ? "ok" : "bad"}`;
    } catch (err) {
      box.textContent = "service unreachable";
      box.className = "ready bad";
    }
  }

  // -- images: decode the upload for display ------------------------------------------------
  async function decodePicture(file) {
    const bytes = await file.arrayBuffer();
    try {
      const bitmap = await createImageBitmap(new Blob([bytes], { type: file.type || "image/png" }));
      const canvas = document.createElement("canvas");
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      canvas.getContext("2d").drawImage(bitmap, 0, 0);
      return canvas;
    } catch {
      // Not something the browser decodes: try DICOM.
    }
    try {
      const image = decodeDicom(bytes);
      if (!image) return null;
      const canvas = document.createElement("canvas");
      canvas.width = image.width;
      canvas.height = image.height;
      canvas.getContext("2d").putImageData(image, 0, 0);
      return canvas;
    } catch {
      return null;
    }
  }

  /**
   * The first frame of an uncompressed little-endian DICOM (implicit or explicit VR) as ImageData,
   * windowed like a viewer would (window centre/width when given, else min..max) and with
   * MONOCHROME1 inverted. Returns null for what it does not handle (compressed or big-endian
   * transfer syntaxes): the boxes are then drawn over a blank of the image's size.
   */
  function decodeDicom(buffer) {
    const dv = new DataView(buffer);
    const size = buffer.byteLength;
    if (size < 132 || String.fromCharCode(...new Uint8Array(buffer, 128, 4)) !== "DICM") return null;
    const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);
    const text = (offset, length) =>
      new TextDecoder("latin1").decode(new Uint8Array(buffer, offset, length)).replace(/[\0 ]+$/, "").trim();
    let transferSyntax = "";
    const isExplicit = (group, pos) => {
      if (group === 0x0002) return true;
      if (transferSyntax) return transferSyntax !== "1.2.840.10008.1.2";
      const a = dv.getUint8(pos + 4), b = dv.getUint8(pos + 5);
      return a >= 65 && a <= 90 && b >= 65 && b <= 90;
    };
    const read = (pos) => {
      const group = dv.getUint16(pos, true), element = dv.getUint16(pos + 2, true);
      if (group === 0xfffe) return { group, element, vr: "", length: dv.getUint32(pos + 4, true), value: pos + 8 };
      if (isExplicit(group, pos)) {
        const vr = String.fromCharCode(dv.getUint8(pos + 4), dv.getUint8(pos + 5));
        if (LONG_VRS.has(vr)) return { group, element, vr, length: dv.getUint32(pos + 8, true), value: pos + 12 };
        return { group, element, vr, length: dv.getUint16(pos + 6, true), value: pos + 8 };
      }
      return { group, element, vr: "", length: dv.getUint32(pos + 4, true), value: pos + 8 };
    };
    // Past one element; undefined-length sequences are walked item by item (they nest).
    const skip = (item) => {
      if (item.length !== 0xffffffff) return item.value + item.length;
      let pos = item.value;
      while (pos + 8 <= size) {
        const inner = read(pos);
        if (inner.group === 0xfffe && inner.element === 0xe0dd) return pos + 8; // sequence end
        if (inner.group === 0xfffe && inner.element === 0xe000) {
          if (inner.length !== 0xffffffff) {
            pos = inner.value + inner.length;
            continue;
          }
          pos = inner.value;
          while (pos + 8 <= size) {
            const child = read(pos);
            if (child.group === 0xfffe && child.element === 0xe00d) {
              pos += 8;
              break;
            }
            pos = skip(child);
          }
          continue;
        }
        return size;
      }
      return size;
    };

    const tags = {};
    let pixel = null;
    let pos = 132;
    while (pos + 8 <= size) {
      const item = read(pos);
      const tag = ((item.group << 16) | item.element) >>> 0;
      if (tag === 0x7fe00010) {
        pixel = item;
        break;
      }
      if (item.length !== 0xffffffff && item.value + item.length <= size) {
        if (tag === 0x00020010) transferSyntax = text(item.value, item.length);
        else if (item.group === 0x0028) tags[tag] = item;
      }
      pos = skip(item);
    }
    const supported = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", ""];
    if (!pixel || pixel.length === 0xffffffff || !supported.includes(transferSyntax)) return null;

    const us = (tag, fallback) => (tags[tag] ? dv.getUint16(tags[tag].value, true) : fallback);
    const ds = (tag) => (tags[tag] ? parseFloat(text(tags[tag].value, tags[tag].length).split("\\")[0]) : NaN);
    const rows = us(0x00280010, 0), cols = us(0x00280011, 0);
    const samples = us(0x00280002, 1), bits = us(0x00280100, 16), signed = us(0x00280103, 0) === 1;
    const photometric = tags[0x00280004] ? text(tags[0x00280004].value, tags[0x00280004].length) : "MONOCHROME2";
    const n = rows * cols;
    if (!n || (bits !== 8 && bits !== 16) || pixel.value + n * samples * (bits / 8) > size) return null;
    const out = new ImageData(cols, rows);

    if (samples === 3 && bits === 8) { // interleaved RGB
      for (let i = 0; i < n; i++) {
        out.data.set([dv.getUint8(pixel.value + 3 * i), dv.getUint8(pixel.value + 3 * i + 1),
          dv.getUint8(pixel.value + 3 * i + 2), 255], 4 * i);
      }
      return out;
    }
    if (samples !== 1) return null;
    const slope = Number.isFinite(ds(0x00281053)) ? ds(0x00281053) : 1;
    const intercept = Number.isFinite(ds(0x00281052)) ? ds(0x00281052) : 0;
    const values = new Float32Array(n);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const raw = bits === 8 ? dv.getUint8(pixel.value + i)
        : signed ? dv.getInt16(pixel.value + 2 * i, true) : dv.getUint16(pixel.value + 2 * i, true);
      const v = raw * slope + intercept;
      values[i] = v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    let center = ds(0x00281050), width = ds(0x00281051);
    if (!Number.isFinite(center) || !Number.isFinite(width) || width <= 0) {
      center = (lo + hi) / 2;
      width = Math.max(hi - lo, 1e-6);
    }
    const invert = photometric === "MONOCHROME1";
    for (let i = 0; i < n; i++) {
      let g = Math.round(255 * Math.min(1, Math.max(0, (values[i] - (center - width / 2)) / width)));
      if (invert) g = 255 - g;
      out.data[4 * i] = out.data[4 * i + 1] = out.data[4 * i + 2] = g;
      out.data[4 * i + 3] = 255;
    }
    return out;
  }

  // -- predict ------------------------------------------------------------------------------
  async function onPredict(ev) {
    ev.preventDefault();
    clearError();
    const file = $("file").files[0];
    if (!file) {
      showError("Predict", new Error("choose a PNG, JPEG or DICOM file first"));
      return;
    }
    const persist = $("persist").checked;
    const topK = Math.max(1, parseInt($("top-k").value, 10) || 3);
    const form = new FormData();
    form.append("file", file, file.name);
    $("upload").disabled = true;
    $("predict-state").textContent = `predicting ${file.name}…`;
    try {
      const [prediction, picture] = await Promise.all([
        api(`predict?persist=${persist}&top_k=${topK}`, { method: "POST", body: form }),
        decodePicture(file),
      ]);
      state.prediction = prediction;
      state.picture = picture;
      state.selected = -1;
      $("explanation").hidden = true;
      $("predict-state").textContent =
        `${prediction.findings.length} findings, ${prediction.regions.length} regions` +
        (prediction.persisted ? " · stored in the graph" : " · not stored");
      $("image-meta").textContent =
        `${file.name} · ${prediction.width}×${prediction.height} px · image ${prediction.image_id}` +
        ` · model ${prediction.model} · graph ${String(prediction.graph_version || "").slice(0, 12)}` +
        ` · variant ${prediction.variant}` + (picture ? "" : " · (the browser cannot display this file: boxes over a blank)");
      renderFindings();
      drawImage();
    } catch (err) {
      $("predict-state").textContent = "";
      showError("Predict", err);
    } finally {
      $("upload").disabled = false;
    }
  }

  function renderFindings() {
    const list = $("findings");
    list.replaceChildren();
    const findings = state.prediction ? state.prediction.findings : [];
    if (!findings.length) {
      list.append(el("li", { className: "muted", text: "no findings above the probability threshold" }));
      return;
    }
    findings.forEach((f, i) => {
      const bar = el("div", { className: "bar" }, el("span", { style: `width:${(100 * f.probability).toFixed(1)}%` }));
      const button = el(
        "button",
        {
          className: `finding${i === state.selected ? " selected" : ""}`,
          type: "button",
          "data-finding": f.finding_id,
          title: `${f.finding_id} · ${f.prediction_id || ""}`,
          onclick: () => selectFinding(i),
        },
        el("span", { className: "name", text: f.name || f.finding_id }),
        el("span", { className: "prob", text: percent(f.probability) }),
        bar,
      );
      list.append(el("li", {}, button));
    });
  }

  // Region colours: a fixed hue per region index so the same region keeps its colour.
  const regionColour = (i, alpha) => `hsla(${(i * 137.5) % 360}, 85%, 60%, ${alpha})`;

  function drawImage() {
    const prediction = state.prediction;
    const canvas = $("canvas");
    if (!prediction) return;
    const W = prediction.width, H = prediction.height;
    // Small images are drawn larger so boxes and labels stay legible; huge ones smaller.
    const scale = Math.min(1600 / Math.max(W, H), Math.max(1, 640 / Math.max(W, H)));
    state.scale = scale;
    canvas.width = Math.round(W * scale);
    canvas.height = Math.round(H * scale);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#222";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (state.picture) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(state.picture, 0, 0, canvas.width, canvas.height);
    }

    const finding = state.selected >= 0 ? prediction.findings[state.selected] : null;
    // a finding's evidence names regions; their boxes are the regions' own (one record, one box per ROI)
    const highlighted = new Map((finding ? finding.evidence : []).map((r) => [r.region, r]));
    const showAll = $("show-all").checked || !finding;
    const showLabels = $("show-labels").checked;
    const labels = [];
    let drawn = 0;
    const font = Math.max(11, Math.round(canvas.width / 55));
    prediction.regions.forEach((region, i) => {
      const top = highlighted.get(region.id);
      if (!top && !showAll) return;
      const [x1, y1, x2, y2] = region.box.map((v) => v * scale);
      const presence = region.presence ?? 1;
      if (top) {
        ctx.lineWidth = Math.max(3, canvas.width / 150);
        ctx.strokeStyle = "rgba(255, 196, 0, 0.95)";
        ctx.fillStyle = `rgba(255, 196, 0, ${0.1 + 0.35 * Math.min(1, top.weight)})`;
        ctx.fillRect(x1, y1, x2 - x1, y2 - y1);
      } else {
        ctx.lineWidth = Math.max(1, canvas.width / 500);
        ctx.strokeStyle = regionColour(i, finding ? 0.25 : 0.35 + 0.6 * presence);
      }
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      drawn += 1;
      if (top) labels.push([`${region.name} · ${top.weight.toFixed(2)}`, x1, y1, "rgba(255, 196, 0, 0.95)"]);
      else if (showLabels) labels.push([region.name, x1, y1, regionColour(i, 0.9)]);
    });
    ctx.font = `${font}px system-ui, "DejaVu Sans", sans-serif`;
    ctx.textBaseline = "top";
    const placed = []; // label rectangles so far: a label that would cover one moves down a line
    for (const [text, x, y, colour] of labels) {
      const w = ctx.measureText(text).width + 6, h = font + 4;
      const tx = Math.min(Math.max(0, x), canvas.width - w);
      let ty = Math.max(0, y - h);
      while (ty + h < canvas.height && placed.some(([px, py, pw]) => tx < px + pw && px < tx + w && ty < py + h && py < ty + h)) ty += h + 1;
      placed.push([tx, ty, w]);
      ctx.fillStyle = "rgba(0, 0, 0, 0.65)";
      ctx.fillRect(tx, ty, w, font + 4);
      ctx.fillStyle = colour;
      ctx.fillText(text, tx + 3, ty + 2);
    }
    canvas.dataset.boxes = String(drawn); // what the end-to-end test waits for
  }

  function onCanvasHover(ev) {
    const prediction = state.prediction;
    if (!prediction) return;
    const canvas = $("canvas");
    const rect = canvas.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) * canvas.width) / rect.width / state.scale;
    const y = ((ev.clientY - rect.top) * canvas.height) / rect.height / state.scale;
    let best = null;
    for (const r of prediction.regions) {
      const [x1, y1, x2, y2] = r.box;
      if (x < x1 || x > x2 || y < y1 || y > y2) continue;
      const area = (x2 - x1) * (y2 - y1);
      if (!best || area < best.area) best = { region: r, area };
    }
    $("hover-region").textContent = best
      ? `${best.region.name} (presence ${percent(best.region.presence ?? 1)})` : "";
  }

  // -- explanation --------------------------------------------------------------------------
  async function selectFinding(index) {
    const prediction = state.prediction;
    const finding = prediction.findings[index];
    state.selected = index;
    const token = ++state.explainToken;
    for (const button of document.querySelectorAll("#findings .finding")) {
      button.classList.toggle("selected", button.dataset.finding === finding.finding_id);
    }
    drawImage();
    const section = $("explanation");
    section.hidden = false;
    section.dataset.state = "loading";
    $("explanation-title").textContent = `Why ${finding.name || finding.finding_id} (p = ${finding.probability.toFixed(3)})`;
    setCypher(null);
    $("subgraph").replaceChildren();

    if (!prediction.persisted) {
      drawSubgraph(localSubgraph(prediction, finding), finding.finding_id);
      $("explanation-source").textContent = "from the predict response (top regions and attended nodes)";
      $("cypher-text").replaceChildren(
        el("span", { className: "note", text:
          "The Cypher explanation needs a persisted prediction: tick \"persist\" (curator key) and predict again. " +
          "The graph above is drawn from the predict response." }),
      );
      section.dataset.state = "ready";
      return;
    }
    $("explanation-source").textContent = `GET /predictions/${finding.prediction_id}/explanation…`;
    try {
      const explanation = await api(`predictions/${encodePath(finding.prediction_id)}/explanation`);
      if (token !== state.explainToken) return;
      drawSubgraph(explanation.subgraph, finding.finding_id);
      $("explanation-source").textContent = `from the graph: ${explanation.prediction_id}`;
      setCypher(explanation.query);
      const box = $("explanation-rows-box");
      const columns = explanation.columns || [];
      const rows = explanation.rows || [];
      box.hidden = !columns.length;
      box.querySelector("summary").textContent = `${rows.length} rows returned by the query`;
      $("explanation-rows").replaceChildren(resultTable(columns, rows));
      section.dataset.state = "ready";
    } catch (err) {
      if (token !== state.explainToken) return;
      // Still show what the predict response knows, and say why the graph could not explain it.
      drawSubgraph(localSubgraph(prediction, finding), finding.finding_id);
      $("explanation-source").textContent = "from the predict response (the graph explanation failed)";
      section.dataset.state = "error";
      showError("Explanation", err);
    }
  }

  function setCypher(query) {
    const params = query && query.parameters ? query.parameters : {};
    $("cypher-text").textContent = query ? query.text.trim() : "";
    $("cypher-params").textContent = query ? `// ${query.name || "query"} parameters\n${JSON.stringify(params, null, 2)}` : "";
    $("copy-cypher").disabled = !query;
    $("open-cypher").disabled = !query;
    $("copy-state").textContent = "";
    $("explanation-rows-box").hidden = true;
    state.query = query;
  }

  async function copyCypher() {
    const query = state.query;
    if (!query) return;
    // A Cypher comment carries the parameters so the copy is self-describing.
    const text = `// parameters: ${JSON.stringify(query.parameters || {})}\n${query.text.trim()}\n`;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard permission (plain http, headless): the old way.
      const area = el("textarea", { style: "position:fixed;opacity:0" });
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    $("copy-state").textContent = "copied";
  }

  function openInCypherTab() {
    const query = state.query;
    if (!query) return;
    $("cypher-query").value = query.text.trim();
    $("cypher-parameters").value = JSON.stringify(query.parameters || {}, null, 2);
    switchTab("cypher");
  }

  /**
   * The explanation subgraph built from the predict response alone (when nothing was stored):
   * Prediction -EVIDENCE-> ROI -DEPICTS-> Anatomy, ROI -ATTENDED-> knowledge node, Prediction
   * -PREDICTS-> Finding. Anatomy nodes take the region id, as the graph's Anatomy ids do.
   */
  function localSubgraph(prediction, finding) {
    const nodes = new Map();
    const edges = [];
    const add = (id, label, name) => {
      if (!nodes.has(id)) nodes.set(id, { id, label, name });
      return id;
    };
    const regionOf = (id) => prediction.regions.find((r) => r.id === id) || {};
    const regionName = (id) => regionOf(id).name || id.replace(/_/g, " ");
    const pid = add(finding.prediction_id || `prediction:${finding.finding_id}`, "Prediction",
      `${finding.name || finding.finding_id} ${percent(finding.probability)}`);
    add(finding.finding_id, "Finding", finding.name || finding.finding_id);
    edges.push({ source: pid, target: finding.finding_id, type: "PREDICTS", weight: null });
    for (const top of finding.evidence || []) {
      const roi = add(`roi:${top.region}`, "ROI", regionName(top.region));
      edges.push({ source: pid, target: roi, type: "EVIDENCE", weight: top.weight });
      add(top.region, "Anatomy", regionName(top.region));
      edges.push({ source: roi, target: top.region, type: "DEPICTS", weight: null });
      for (const node of regionOf(top.region).attention || []) {
        add(node.id, "Concept", node.name || node.id);
        edges.push({ source: roi, target: node.id, type: "ATTENDED", weight: node.weight });
      }
    }
    return { nodes: [...nodes.values()], edges };
  }

  const NODE_COLOURS = {
    Prediction: "#fde68a", Image: "#fed7aa", ROI: "#bfdbfe", Anatomy: "#bbf7d0", Finding: "#fecaca",
    Disease: "#e9d5ff", Attribute: "#fef3c7", Device: "#cffafe", Concept: "#e5e7eb",
  };
  const EDGE_STYLES = {
    EVIDENCE: { colour: "#2563eb" }, ATTENDED: { colour: "#ea580c" },
    DEPICTS: { colour: "#6b7280", dash: "5 4" }, PREDICTS: { colour: "#059669", dash: "6 4" },
    FOR_IMAGE: { colour: "#9ca3af", dash: "2 4" },
  };
  const COLUMNS = ["Prediction", "ROIs", "Anatomy", "Knowledge nodes"];
  // Prediction -> ROIs (and the Image they belong to) -> Anatomy -> everything else.
  const columnOf = (node) => ({ Prediction: 0, ROI: 1, Image: 1, Anatomy: 2 })[node.label] ?? 3;

  function drawLegend(labels, types) {
    const legend = $("legend");
    legend.replaceChildren();
    for (const label of labels) {
      legend.append(el("span", {}, el("i", { style: `background:${NODE_COLOURS[label] || NODE_COLOURS.Concept}` }), label));
    }
    for (const type of types) {
      const style = EDGE_STYLES[type] || { colour: "#6b7280" };
      legend.append(el("span", {}, el("i", { style: `background:${style.colour};height:3px;vertical-align:3px` }), type));
    }
    legend.append(el("span", { text: "edge width ∝ weight (within its type)" }));
  }

  /**
   * Layered SVG drawing of `{nodes, edges}`: one column per layer, nodes in a column ordered by
   * the mean position of their neighbours in earlier columns (fewer crossings), edges as curves
   * whose width grows with their weight. `focusId` (the predicted finding) goes on top of its column.
   */
  function drawSubgraph(graph, focusId) {
    const host = $("subgraph");
    host.replaceChildren();
    const nodes = (graph && graph.nodes) || [];
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const edges = ((graph && graph.edges) || []).filter((e) => byId.has(e.source) && byId.has(e.target));
    if (!nodes.length) {
      host.append(el("p", { className: "muted", text: "the explanation has no nodes" }));
      return;
    }
    const columns = [[], [], [], []];
    for (const node of nodes) columns[columnOf(node)].push(node);
    const position = new Map(); // id -> index within its column
    const weightInto = (id) => Math.max(0, ...edges.filter((e) => e.target === id).map((e) => e.weight ?? 0));
    columns.forEach((column, c) => {
      const score = new Map();
      for (const node of column) {
        const parents = edges
          .filter((e) => e.target === node.id && byId.has(e.source) && columnOf(byId.get(e.source)) < c)
          .map((e) => position.get(e.source))
          .filter((p) => p !== undefined);
        const barycentre = parents.length ? parents.reduce((a, b) => a + b, 0) / parents.length : Infinity;
        score.set(node.id, [node.id === focusId ? -1 : 0, node.label === "Image" ? 1 : 0, c === 1 ? 0 : barycentre,
          -weightInto(node.id), node.name || node.id]);
      }
      column.sort((a, b) => {
        const sa = score.get(a.id), sb = score.get(b.id);
        for (let i = 0; i < sa.length; i++) {
          if (sa[i] < sb[i]) return -1;
          if (sa[i] > sb[i]) return 1;
        }
        return 0;
      });
      column.forEach((node, i) => position.set(node.id, i));
    });

    const used = columns.map((col, i) => [col, i]).filter(([col]) => col.length);
    const NODE_W = 180, NODE_H = 30, ROW = 46, GAP = 120, TOP = 50, LEFT = 16;
    const rows = Math.max(...used.map(([col]) => col.length));
    const width = LEFT * 2 + used.length * NODE_W + (used.length - 1) * GAP;
    const height = TOP + rows * ROW + 16;
    const xy = new Map();
    const gapsOf = new Map(); // drawn column index -> the y of each gap between (and around) its nodes
    used.forEach(([column, c], k) => {
      const x = LEFT + k * (NODE_W + GAP);
      const offset = ((rows - column.length) * ROW) / 2;
      column.forEach((node, i) => xy.set(node.id, { x, y: TOP + offset + i * ROW }));
      gapsOf.set(k, Array.from({ length: column.length + 1 }, (_, i) => TOP + offset + i * ROW - (ROW - NODE_H) / 2));
    });

    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "explanation subgraph", "data-nodes": nodes.length, "data-edges": edges.length });
    used.forEach(([, c], k) => {
      root.append(svg("text", { class: "column-title", x: LEFT + k * (NODE_W + GAP), y: 16, text: COLUMNS[c] }));
    });

    // Edge widths are scaled within each type: evidence and attention weights live on different scales.
    const maxWeight = {};
    for (const e of edges) if (e.weight != null) maxWeight[e.type] = Math.max(maxWeight[e.type] || 0, Math.abs(e.weight));
    const edgeLayer = svg("g", { class: "edges" });
    const labelLayer = svg("g", { class: "edge-labels" });
    const seenPairs = new Map();
    for (const e of edges) {
      const a = xy.get(e.source), b = xy.get(e.target);
      const style = EDGE_STYLES[e.type] || { colour: "#6b7280" };
      const weighted = e.weight != null && maxWeight[e.type] > 0;
      const strokeWidth = weighted ? 1.2 + 7 * (Math.abs(e.weight) / maxWeight[e.type]) : 1.3;
      const pairKey = `${e.source}|${e.target}`;
      const nth = seenPairs.get(pairKey) || 0; // parallel edges between one pair bow apart
      seenPairs.set(pairKey, nth + 1);
      let d, lx, ly;
      if (a.x === b.x) { // same column (e.g. Prediction and Image): bow out to the left
        const x = a.x, y1 = a.y + NODE_H / 2, y2 = b.y + NODE_H / 2;
        d = `M${x},${y1} C${x - 50},${y1} ${x - 50},${y2} ${x},${y2}`;
        lx = x - 38;
        ly = (y1 + y2) / 2;
      } else if (Math.abs(columnOf(byId.get(e.target)) - columnOf(byId.get(e.source))) > 2 && e.type === "PREDICTS") {
        // Prediction -> predicted finding spans every column: route it over the top.
        const x1 = a.x + NODE_W / 2, x2 = b.x + NODE_W / 2, y = 24;
        d = `M${x1},${a.y} C${x1},${y} ${x1},${y} ${(x1 + x2) / 2},${y} S${x2},${y} ${x2},${b.y}`;
        lx = (x1 + x2) / 2;
        ly = y - 2;
      } else {
        const [from, to] = a.x < b.x ? [a, b] : [b, a];
        const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2;
        const bow = nth * 14;
        // An edge that skips columns passes each one through the gap between two of its nodes
        // nearest to the straight line (like a layered layout's dummy nodes), not under a node.
        const points = [[x1, y1]];
        for (const [k, gaps] of gapsOf) {
          const gx = LEFT + k * (NODE_W + GAP);
          if (gx <= x1 || gx >= x2) continue;
          const t = (gx - x1) / (x2 - x1 + 1e-9);
          const ideal = y1 + t * (y2 - y1);
          const gy = gaps.reduce((best, g) => (Math.abs(g - ideal) < Math.abs(best - ideal) ? g : best), gaps[0]);
          points.push([gx - 6, gy], [gx + NODE_W + 6, gy]);
        }
        points.push([x2, y2]);
        const bend = points.length > 2 ? 0 : bow;
        d = `M${x1},${y1}`;
        for (let i = 1; i < points.length; i++) {
          const [px, py] = points[i - 1], [qx, qy] = points[i];
          const mx = (px + qx) / 2;
          // Odd segments bend from column to column; even ones run straight through a gap.
          d += i % 2 === 0 ? ` L${qx},${qy}` : ` C${mx},${py + bend} ${mx},${qy + bend} ${qx},${qy}`;
        }
        const [px, py] = points[0], [qx, qy] = points[1];
        lx = px + (qx - px) * 0.35;
        ly = py + (qy - py) * 0.35 - 3 + bow / 2;
      }
      const title = `${byId.get(e.source).name || e.source} -[${e.type}${e.weight != null ? ` ${shortNumber(e.weight)}` : ""}]-> ${byId.get(e.target).name || e.target}`;
      edgeLayer.append(svg("path", {
        class: `edge edge-${e.type}`, d, stroke: style.colour, "stroke-width": strokeWidth.toFixed(2),
        "stroke-opacity": weighted ? 0.75 : 0.6, "stroke-dasharray": style.dash, "data-weight": e.weight ?? "",
      }, svg("title", { text: title })));
      if (weighted) labelLayer.append(svg("text", { class: "edge-label", x: lx, y: ly, text: Number(e.weight).toFixed(2) }));
    }
    root.append(edgeLayer, labelLayer);

    const nodeLayer = svg("g", { class: "nodes" });
    for (const node of nodes) {
      const { x, y } = xy.get(node.id);
      const name = node.name || node.id;
      const clickable = ["Anatomy", "Finding", "Disease", "Concept", "Attribute", "Device"].includes(node.label);
      const group = svg("g", {
        class: "node", transform: `translate(${x},${y})`, "data-id": node.id, "data-label": node.label,
        style: clickable ? "cursor:pointer" : null,
        onclick: clickable ? () => { switchTab("ontology"); openConcept(node.id); } : null,
      },
      svg("title", { text: `${node.label}: ${node.id}${clickable ? " (click: open in the ontology)" : ""}` }),
      svg("rect", { width: NODE_W, height: NODE_H, rx: 6, fill: NODE_COLOURS[node.label] || NODE_COLOURS.Concept,
        "stroke-width": node.id === focusId ? 2.5 : 1 }),
      svg("text", { x: 8, y: 13, text: truncate(name, 26) }),
      svg("text", { class: "kind", x: 8, y: 25, text: node.label }));
      nodeLayer.append(group);
    }
    root.append(nodeLayer);
    host.append(root);
    drawLegend([...new Set(nodes.map((n) => n.label))], [...new Set(edges.map((e) => e.type))]);
  }

  // -- ontology -----------------------------------------------------------------------------
  let searchTimer = 0;
  async function searchConcepts(ev) {
    if (ev) ev.preventDefault();
    clearTimeout(searchTimer);
    const q = $("concept-q").value.trim();
    const kind = $("concept-kind").value;
    const params = new URLSearchParams({ q, limit: "50" });
    if (kind) params.set("kind", kind);
    $("concept-state").textContent = "searching…";
    try {
      const concepts = await api(`concepts?${params}`);
      const list = $("concept-results");
      list.replaceChildren();
      for (const c of concepts) {
        list.append(el("li", {}, el("button", {
          type: "button", className: "concept", "data-id": c.id, title: (c.synonyms || []).join("; "),
          onclick: () => openConcept(c.id),
        }, el("span", { text: c.name || c.id }), el("span", { className: "kind-badge", text: c.kind }),
        el("span", { className: "muted small", text: c.id }))));
      }
      $("concept-state").textContent = `${concepts.length} concept${concepts.length === 1 ? "" : "s"}`;
    } catch (err) {
      $("concept-state").textContent = "";
      showError("Concept search", err);
    }
  }

  async function openConcept(id) {
    clearError();
    const detail = $("concept-detail");
    detail.dataset.state = "loading";
    for (const b of document.querySelectorAll("#concept-results .concept")) b.classList.toggle("selected", b.dataset.id === id);
    try {
      const data = await api(`concepts/${encodeURIComponent(id)}`);
      const concept = data.concept || {};
      const fields = Object.entries(concept).filter(([k]) => !["name"].includes(k));
      const show = (v) => (Array.isArray(v) ? v.join("; ") : v && typeof v === "object" ? JSON.stringify(v) : String(v ?? ""));
      const link = (target) => (target === id ? el("strong", { text: target })
        : el("button", { type: "button", className: "link", onclick: () => openConcept(target), text: target }));
      const edges = data.edges || [];
      const table = el("table", {},
        el("thead", {}, el("tr", {}, ["type", "start", "end", "weight", "source"].map((h) => el("th", { text: h })))),
        el("tbody", {}, edges.map((e) => el("tr", {},
          el("td", { text: e.type }), el("td", {}, link(e.start)), el("td", {}, link(e.end)),
          el("td", { className: "num" }, e.weight == null ? "" : shortNumber(e.weight)),
          el("td", { text: e.source ?? "" })))));
      detail.replaceChildren(
        el("h2", {}, concept.name || id, " ", el("span", { className: "kind-badge", text: concept.kind || "" })),
        el("dl", {}, fields.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: show(v) })])),
        el("h3", { text: `${edges.length} edge${edges.length === 1 ? "" : "s"}` }),
        el("div", { className: "table-wrap" }, table),
      );
      detail.dataset.state = "ready";
    } catch (err) {
      detail.dataset.state = "error";
      showError(`Concept ${id}`, err);
    }
  }

  // -- cypher -------------------------------------------------------------------------------
  async function runCypher(ev) {
    if (ev) ev.preventDefault();
    clearError();
    const query = $("cypher-query").value;
    let parameters;
    try {
      parameters = JSON.parse($("cypher-parameters").value.trim() || "{}");
      if (!parameters || typeof parameters !== "object" || Array.isArray(parameters)) throw new Error("not an object");
    } catch (err) {
      showError("Cypher", new Error(`the parameters must be a JSON object, e.g. {"id": "pleural_effusion"} (${err.message})`));
      return;
    }
    const limit = Math.max(1, parseInt($("cypher-limit").value, 10) || 100);
    $("cypher-state").textContent = "running…";
    $("cypher-table").replaceChildren(); // no stale table while the new query runs
    $("cypher-run").disabled = true;
    try {
      const result = await api("cypher", { method: "POST", json: { query, parameters, limit } });
      $("cypher-table").replaceChildren(resultTable(result.columns || [], result.rows || []));
      $("cypher-state").textContent =
        `${(result.rows || []).length} rows${result.truncated ? ` (truncated at the limit of ${limit})` : ""}`;
    } catch (err) {
      $("cypher-state").textContent = "";
      $("cypher-table").replaceChildren();
      showError("Cypher", err);
    } finally {
      $("cypher-run").disabled = false;
    }
  }

  // -- wiring -------------------------------------------------------------------------------
  function init() {
    initKey();
    for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => switchTab(tab.dataset.tab));
    const fromHash = location.hash.slice(1);
    if (["predict", "ontology", "cypher"].includes(fromHash)) switchTab(fromHash);
    $("error-close").addEventListener("click", clearError);
    $("upload-form").addEventListener("submit", onPredict);
    $("show-labels").addEventListener("change", drawImage);
    $("show-all").addEventListener("change", drawImage);
    $("canvas").addEventListener("mousemove", onCanvasHover);
    $("canvas").addEventListener("mouseleave", () => { $("hover-region").textContent = ""; });
    $("copy-cypher").addEventListener("click", copyCypher);
    $("open-cypher").addEventListener("click", openInCypherTab);
    $("concept-form").addEventListener("submit", searchConcepts);
    $("concept-q").addEventListener("input", () => {
      clearTimeout(searchTimer);
      if ($("concept-q").value.trim().length >= 2) searchTimer = setTimeout(searchConcepts, 300);
    });
    $("cypher-form").addEventListener("submit", runCypher);
    $("cypher-query").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) runCypher(ev);
    });
    checkReady();
  }

  init();
})();
