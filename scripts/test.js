#!/usr/bin/env node
// `npm test`: every test of the repository. jest first (TypeScript: CDK, simulator, extractor,
// end to end), then pytest (spark-jobs). Both print their normal summary lines; the exit code
// is non-zero when either fails.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");
const root = path.resolve(__dirname, "..");
const extra = process.argv.slice(2);

const jest = spawnSync(process.execPath, [path.join(root, "node_modules", "jest", "bin", "jest.js"), "--ci", ...extra], { stdio: "inherit", cwd: root });
const setup = spawnSync(process.execPath, [path.join(__dirname, "setup.js"), "--python"], { stdio: "inherit", cwd: root });
let py = { status: 1 };
if (setup.status === 0) py = spawnSync(process.execPath, [path.join(__dirname, "pytest.js")], { stdio: "inherit", cwd: root });
process.exit(jest.status === 0 && setup.status === 0 && py.status === 0 ? 0 : 1);
