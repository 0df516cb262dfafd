// Builds the demo page into the server's static folder: demo.js (one ES module bundling
// the page and @parley/client from its sources), demo.css and index.html as they are.
// Run by `npm run build:demo` (and `npm run build`).

import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "..", "server", "static");
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(here, "main.ts")],
  tsconfig: join(here, "..", "tsconfig.demo.json"),
  outfile: join(out, "demo.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  // Not minified: the microphone worklet is built from PcmChunker's source text at run
  // time, and readable output is part of what a demo is for.
  minify: false,
  legalComments: "none",
  logLevel: "warning",
});
for (const file of ["index.html", "demo.css"]) copyFileSync(join(here, file), join(out, file));
console.log(`demo page built into ${out}`);
