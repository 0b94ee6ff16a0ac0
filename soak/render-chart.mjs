// Renders a Vega-Lite spec (JSON file) to SVG, headlessly: vega's View with the "none" renderer and
// toSVG(), no browser, no canvas. ESM because vega and vega-lite are ESM-only.
// usage: node soak/render-chart.mjs <spec.json> <out.svg>
import { readFileSync, writeFileSync } from "node:fs";
import * as vega from "vega";
import * as vegaLite from "vega-lite";

const [specPath, outPath] = process.argv.slice(2);
if (!specPath || !outPath) {
  process.stderr.write("usage: node soak/render-chart.mjs <spec.json> <out.svg>\n");
  process.exit(2);
}
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const compiled = vegaLite.compile(spec).spec;
const view = new vega.View(vega.parse(compiled), { renderer: "none" });
const svg = await view.toSVG();
view.finalize();
writeFileSync(outPath, svg);
