// End-to-end test of the web viewer in Debian's headless chromium, driven by playwright-core.
//
//   node tests/e2e/viewer.e2e.mjs --url http://127.0.0.1:PORT --key KEY --image phantom.png \
//        --out docs/images/viewer.png [--dicom image.dcm] [--chromium /usr/bin/chromium]
//
// KEY must be a curator key (the upload persists its prediction so the Cypher explanation exists).
// Walks what a user does: a request without a key shows the service's 401 detail; the key is
// saved and survives a reload; the image is uploaded with persist on; boxes and findings appear;
// the top finding's explanation subgraph (>= 3 nodes) and its Cypher (with MATCH) appear; then a
// DICOM upload without persisting (decoded in the page, subgraph from the response), the ontology
// search and a concept's edges, and the Cypher tab (a read query gives a table, a write query the
// service's 400). Every request must stay on the service's origin (nothing from a CDN).
// Saves OUT (the whole page with an explanation), OUT_explanation.png and OUT_ontology.png.
// Exit code 0 when every check holds; 1 with the failed check on stderr otherwise.
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    key: { type: "string" },
    image: { type: "string" },
    out: { type: "string", default: "docs/images/viewer.png" },
    dicom: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    timeout: { type: "string", default: "90000" }, // ms per wait: the first prediction loads the model
  },
});
for (const name of ["url", "key", "image"]) {
  if (!args[name]) {
    console.error(`missing --${name}\nusage: node viewer.e2e.mjs --url URL --key CURATOR_KEY --image FILE.png [--out PNG] [--dicom FILE.dcm]`);
    process.exit(2);
  }
}
if (!existsSync(args.chromium)) {
  console.error(`chromium not found at ${args.chromium}: run scripts/install_chromium.sh (as root)`);
  process.exit(2);
}
const timeout = Number(args.timeout);
const out = resolve(args.out);
const sibling = (suffix) => out.replace(/\.png$/i, "") + `_${suffix}.png`;
mkdirSync(dirname(out), { recursive: true });

const checks = [];
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  checks.push(message);
}

const origin = new URL(args.url).origin;
const browser = await chromium.launch({
  executablePath: args.chromium,
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
});
let failed = false;
const pageErrors = [];
const offOrigin = [];
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/status of 4\d\d/.test(msg.text())) pageErrors.push(`console: ${msg.text()}`);
  });
  // Nothing may come from outside the service (no CDN): such requests are refused and recorded.
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("data:") || url.startsWith("blob:") || new URL(url).origin === origin) return route.continue();
    offOrigin.push(url);
    return route.abort();
  });

  // 1. The page loads and reports the service's readiness.
  await page.goto(args.url, { waitUntil: "load" });
  await page.waitForFunction(() => !document.getElementById("ready").textContent.includes("checking"));
  const ready = await page.textContent("#ready");
  check(/graph ✓/.test(ready) && /model ✓/.test(ready), `the readiness line says graph and model are up (${ready})`);

  // 2. Without a key the service's 401 detail is shown.
  await page.evaluate(() => localStorage.clear());
  await page.fill("#api-key", "");
  await page.setInputFiles("#file", resolve(args.image));
  await page.click("#upload");
  await page.waitForSelector("#error:not([hidden])");
  const noKey = await page.textContent("#error-text");
  check(noKey.includes("401"), `an upload without a key shows HTTP 401 and its detail (${noKey.trim()})`);

  // 3. The key is saved in localStorage and survives a reload.
  await page.fill("#api-key", args.key);
  await page.click("#save-key");
  await page.reload({ waitUntil: "load" });
  check((await page.inputValue("#api-key")) === args.key, "the API key is kept in localStorage across a reload");

  // 4. Upload with persist: boxes over the image and the findings with probabilities.
  await page.setInputFiles("#file", resolve(args.image));
  await page.check("#persist");
  await page.click("#upload");
  await page.waitForSelector("#canvas[data-boxes]");
  await page.waitForSelector("#findings .finding");
  check(await page.isHidden("#error"), "the persisted upload gives no error");
  const boxes = Number(await page.getAttribute("#canvas", "data-boxes"));
  check(boxes > 0, `region boxes are drawn over the image (${boxes})`);
  const probabilities = await page.$$eval("#findings .finding .prob", (els) => els.map((e) => parseFloat(e.textContent)));
  check(probabilities.length > 0, `findings are listed (${probabilities.length})`);
  check(probabilities.every((p) => p >= 0 && p <= 100), "every probability is a percentage");
  check(probabilities.every((p, i) => i === 0 || probabilities[i - 1] >= p), "findings are most probable first");
  const barWidths = await page.$$eval("#findings .finding .bar span", (els) => els.map((e) => parseFloat(e.style.width)));
  check(Math.abs(barWidths[0] - probabilities[0]) < 0.6, "the top finding's bar matches its probability");
  check((await page.textContent("#predict-state")).includes("stored in the graph"), "the prediction was persisted");
  const canvasPixels = () => page.evaluate(() => document.getElementById("canvas").toDataURL());
  const unlabelled = await canvasPixels();
  await page.check("#show-labels");
  check((await canvasPixels()) !== unlabelled, "the labels toggle draws the region names");
  await page.uncheck("#show-labels");

  // 5. The top finding's explanation: subgraph from the graph, and the Cypher that produced it.
  const topName = (await page.textContent("#findings .finding .name")).trim();
  await page.click("#findings .finding >> nth=0");
  await page.waitForSelector('#explanation[data-state="ready"], #explanation[data-state="error"]');
  const explainState = await page.getAttribute("#explanation", "data-state");
  check(explainState === "ready", `the explanation loads (${explainState}; ${await page.textContent("#error-text")})`);
  const nodeCount = await page.locator("#subgraph svg g.node").count();
  const edgeCount = await page.locator("#subgraph svg path.edge").count();
  check(nodeCount >= 3, `the explanation subgraph has >= 3 nodes (${nodeCount})`);
  check(edgeCount >= 2, `the explanation subgraph has edges (${edgeCount})`);
  const labels = await page.$$eval("#subgraph svg g.node", (els) => els.map((e) => e.dataset.label));
  check(labels.includes("Prediction") && labels.includes("ROI"), `the subgraph holds the Prediction and its ROIs (${[...new Set(labels)]})`);
  const cypher = await page.textContent("#cypher-text");
  check(cypher.trim().length > 0 && /\bMATCH\b/.test(cypher), "the Cypher text is shown and contains MATCH");
  const params = await page.textContent("#cypher-params");
  check(params.includes("prediction_id"), "the Cypher parameters name the prediction");
  const highlighted = await page.$$eval("#findings .finding.selected", (els) => els.length);
  check(highlighted === 1, "the clicked finding is marked selected");
  await page.click("#copy-cypher");
  await page.waitForFunction(() => document.getElementById("copy-state").textContent === "copied");
  check(true, "the copy button copies the Cypher");
  await page.screenshot({ path: out, fullPage: true });
  await page.locator("#explanation").screenshot({ path: sibling("explanation") });
  check(true, `screenshots saved (${out})`);

  // 5b. The explanation's query reruns in the Cypher tab.
  await page.click("#open-cypher");
  await page.click("#cypher-run");
  await page.waitForSelector("#cypher-table table");
  const rerunRows = await page.locator("#cypher-table tbody tr").count();
  check(rerunRows > 0, `the explanation's Cypher reruns in the Cypher tab (${rerunRows} rows)`);
  await page.click('.tab[data-tab="predict"]');

  // 6. DICOM, not persisted: decoded in the page; the subgraph comes from the predict response.
  if (args.dicom) {
    await page.uncheck("#persist");
    await page.evaluate(() => document.getElementById("canvas").removeAttribute("data-boxes"));
    await page.setInputFiles("#file", resolve(args.dicom));
    await page.click("#upload");
    await page.waitForSelector("#canvas[data-boxes]");
    check(await page.isHidden("#error"), "the DICOM upload gives no error");
    const meta = await page.textContent("#image-meta");
    check(!meta.includes("cannot display"), "the page decodes the DICOM for display");
    const spread = await page.evaluate(() => {
      const c = document.getElementById("canvas");
      const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let lo = 255, hi = 0;
      for (let i = 0; i < data.length; i += 4) { lo = Math.min(lo, data[i]); hi = Math.max(hi, data[i]); }
      return hi - lo;
    });
    check(spread > 50, `the DICOM's pixels are drawn (grey range ${spread})`);
    await page.click("#findings .finding >> nth=0");
    await page.waitForSelector('#explanation[data-state="ready"]');
    const localNodes = await page.locator("#subgraph svg g.node").count();
    check(localNodes >= 3, `an unpersisted finding is drawn from the response (${localNodes} nodes)`);
    check((await page.textContent("#cypher-text")).includes("needs a persisted prediction"),
      "an unpersisted finding says the Cypher needs persistence");
  }

  // 7. Ontology: search, open a concept with its edges.
  await page.click('.tab[data-tab="ontology"]');
  await page.fill("#concept-q", "effusion");
  await page.click("#concept-search");
  await page.waitForSelector("#concept-results .concept");
  const results = await page.locator("#concept-results .concept").count();
  check(results > 0, `the ontology search finds concepts for "effusion" (${results})`);
  await page.click("#concept-results .concept >> nth=0");
  await page.waitForSelector('#concept-detail[data-state="ready"]');
  const conceptEdges = await page.locator("#concept-detail tbody tr").count();
  check(conceptEdges > 0, `the concept is shown with its edges (${conceptEdges})`);
  await page.screenshot({ path: sibling("ontology"), fullPage: true });

  // 8. Cypher tab: a read query gives a table; a write query gives the service's 400 detail.
  await page.click('.tab[data-tab="cypher"]');
  await page.fill("#cypher-query", "MATCH (c:Concept) RETURN c.id AS id, c.name AS name ORDER BY id LIMIT 5");
  await page.fill("#cypher-parameters", "{}");
  await page.click("#cypher-run");
  await page.waitForSelector("#cypher-table table");
  const cypherRows = await page.locator("#cypher-table tbody tr").count();
  const headers = await page.$$eval("#cypher-table th", (els) => els.map((e) => e.textContent));
  check(cypherRows > 0 && headers.join() === "id,name", `a read query gives a table (${cypherRows} rows; ${headers})`);
  await page.fill("#cypher-query", "CREATE (x:ViewerTest {id: 'x'}) RETURN x");
  await page.click("#cypher-run");
  await page.waitForSelector("#error:not([hidden])");
  const writeError = await page.textContent("#error-text");
  check(writeError.includes("400"), `a write query shows the service's 400 detail (${writeError.trim()})`);
  // Ends on the tab with the explanation, for anyone looking at the browser.
  await page.click('.tab[data-tab="predict"]');

  check(pageErrors.length === 0, `no script errors in the page (${pageErrors.join(" | ")})`);
  check(offOrigin.length === 0, `no request leaves the service's origin (${offOrigin.join(", ")})`);
  console.log(JSON.stringify({ ok: true, top_finding: topName, boxes, findings: probabilities.length,
    subgraph_nodes: nodeCount, subgraph_edges: edgeCount, screenshot: out, checks }, null, 1));
} catch (err) {
  failed = true;
  console.error(String(err && err.stack ? err.stack : err));
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join(" | ")}`);
  console.error(`checks passed before the failure:\n  ${checks.join("\n  ")}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
