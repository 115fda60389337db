#!/usr/bin/env node
// Entry of the `fhir-pipeline` CLI: loads the TypeScript sources through tsx, so the CLI needs no
// build step. The commands live in lib/cli/.
"use strict";
require("tsx/cjs");
require("../lib/cli/main.ts").main(process.argv).catch((err) => {
  process.stderr.write(`fhir-pipeline: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
