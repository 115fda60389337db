#!/usr/bin/env node
// Runs pytest for spark-jobs inside its virtualenv. --sof-report writes the official
// SQL-on-FHIR v2 report (spark-jobs/test_report.json) from the suite run.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");
const root = path.resolve(__dirname, "..");
const sparkJobs = path.join(root, "spark-jobs");
const python = path.join(sparkJobs, ".venv", "bin", "python");
const args = process.argv.slice(2);
let pytestArgs = ["-m", "pytest"];
if (args.includes("--sof-report")) pytestArgs.push("tests/test_sof_suite.py", "--sof-report", path.join(sparkJobs, "test_report.json"));
pytestArgs = pytestArgs.concat(args.filter((a) => a !== "--sof-report"));
const r = spawnSync(python, pytestArgs, { stdio: "inherit", cwd: sparkJobs });
// pytest exits 5 when it collected nothing: that is a failure of the suite, not a pass.
process.exit(r.status ?? 1);
