#!/usr/bin/env node
// `npm test`: every test of the repository. Set-up first (the spark-jobs virtualenv, which also
// holds moto's server for the AWS CLI tests, the Iceberg jars, and Chromium for the report test),
// then jest (TypeScript: CDK, simulator, extractor, end to end), then pytest (spark-jobs). Both
// print their normal summary lines; the exit code is non-zero when either fails.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");
const root = path.resolve(__dirname, "..");
const extra = process.argv.slice(2);

const setup = spawnSync(process.execPath, [path.join(__dirname, "setup.js"), "--python", "--browser"], { stdio: "inherit", cwd: root });
if (setup.status !== 0) process.exit(1);
const jest = spawnSync(process.execPath, [path.join(root, "node_modules", "jest", "bin", "jest.js"), "--ci", ...extra], { stdio: "inherit", cwd: root });
const py = spawnSync(process.execPath, [path.join(__dirname, "pytest.js")], { stdio: "inherit", cwd: root });
process.exit(jest.status === 0 && py.status === 0 ? 0 : 1);
