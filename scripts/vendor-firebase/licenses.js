// Writes the LICENSE notice for the vendored bundle: every npm package esbuild put into it, its
// version and licence, and the full text of any licence file the package ships.
// Usage: node licenses.js META_JSON NODE_MODULES > LICENSE
const fs = require("fs");
const path = require("path");

const [metaFile, modules] = process.argv.slice(2);
const inputs = Object.keys(JSON.parse(fs.readFileSync(metaFile, "utf8")).inputs);
const names = [...new Set(inputs.map((p) => p.match(/node_modules\/((@[^/]+\/)?[^/]+)/)?.[1]))]
  .filter(Boolean)
  .sort();

const out = [
  "notifier/static/vendor/firebase/firebase-messaging.js bundles these npm packages:",
  "",
];
const texts = [];
for (const name of names) {
  const dir = path.join(modules, name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  out.push(`- ${name} ${pkg.version}: ${pkg.license}`);
  const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (file) texts.push(`---- ${name} ----\n\n${fs.readFileSync(path.join(dir, file), "utf8")}`);
}
out.push("", "Apache-2.0: https://www.apache.org/licenses/LICENSE-2.0", "", ...texts);
process.stdout.write(out.join("\n") + "\n");
