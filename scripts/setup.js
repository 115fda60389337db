#!/usr/bin/env node
// Idempotent set-up used by `npm test`, `npm run demo` and friends, so a fresh clone needs no
// other step: installs npm packages when missing, and with --python the spark-jobs virtualenv and
// the Iceberg/SQLite jars (downloaded once from Maven Central into spark-jobs/.jars, never committed).
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const https = require("node:https");

const root = path.resolve(__dirname, "..");
const sparkJobs = path.join(root, "spark-jobs");
const venv = path.join(sparkJobs, ".venv");
const venvPython = path.join(venv, "bin", "python");
const jarsDir = path.join(sparkJobs, ".jars");
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed with exit code ${r.status}`);
}

function lockStamp() {
  const lock = path.join(root, "package-lock.json");
  return fs.existsSync(lock) ? fs.statSync(lock).mtimeMs.toString() : "none";
}

function ensureNpm() {
  const stamp = path.join(root, "node_modules", ".setup-stamp");
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === lockStamp()) return;
  log("installing npm packages (npm ci)");
  run("npm", ["ci", "--no-audit", "--no-fund"]);
  fs.writeFileSync(stamp, lockStamp());
}

function pythonExe() {
  for (const candidate of ["python3.11", "python3"]) {
    const r = spawnSync(candidate, ["-c", "import sys; print(sys.version_info >= (3, 11))"], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim() === "True") return candidate;
  }
  throw new Error("Python 3.11+ is required for spark-jobs (python3.11 or python3 on PATH)");
}

function ensureVenv() {
  const pyproject = path.join(sparkJobs, "pyproject.toml");
  const stamp = path.join(venv, ".setup-stamp");
  const want = fs.statSync(pyproject).mtimeMs.toString();
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === want) return;
  if (!fs.existsSync(venvPython)) {
    log("creating the spark-jobs virtualenv");
    run(pythonExe(), ["-m", "venv", venv]);
    run(venvPython, ["-m", "pip", "install", "-q", "--upgrade", "pip"]);
  }
  log("installing spark-jobs and its dependencies into the virtualenv");
  run(venvPython, ["-m", "pip", "install", "-q", "-e", `${sparkJobs}[dev]`]);
  fs.writeFileSync(stamp, want);
}

function download(url, dest) {
  return new Promise((resolve, reject) => {
    https
      .get(url, (res) => {
        if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) {
          res.resume();
          download(res.headers.location, dest).then(resolve, reject);
          return;
        }
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`GET ${url} answered ${res.statusCode}`));
          return;
        }
        const tmp = `${dest}.part`;
        const out = fs.createWriteStream(tmp);
        res.pipe(out);
        out.on("finish", () => {
          fs.renameSync(tmp, dest);
          resolve();
        });
        out.on("error", reject);
      })
      .on("error", reject);
  });
}

async function ensureJars() {
  const runtime = JSON.parse(fs.readFileSync(path.join(sparkJobs, "runtime.json"), "utf8"));
  fs.mkdirSync(jarsDir, { recursive: true });
  for (const coord of runtime.jars) {
    const [group, artifact, version] = coord.split(":");
    const file = `${artifact}-${version}.jar`;
    const dest = path.join(jarsDir, file);
    if (fs.existsSync(dest)) continue;
    const url = `https://repo1.maven.org/maven2/${group.replace(/\./g, "/")}/${artifact}/${version}/${file}`;
    log(`downloading ${coord} from Maven Central`);
    await download(url, dest);
  }
}

// Headless Chromium for the report's browser test (Debian package; CI is a fresh machine). Only
// installed when missing and when running as root (apt-get needs it); otherwise says how.
function ensureChromium() {
  const exe = "/usr/bin/chromium";
  if (fs.existsSync(exe)) return;
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new Error(`${exe} is missing: install Debian's chromium package (apt-get install -y chromium) as root`);
  }
  log("installing chromium (apt-get) for the report's browser test");
  run("apt-get", ["update", "-q"], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  run("apt-get", ["install", "-y", "-q", "chromium"], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}

function ensureJava() {
  const r = spawnSync("java", ["-version"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error("Java 17 is required for local Spark (java on PATH)");
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes("--help")) {
    process.stdout.write(
      "usage: node scripts/setup.js [--python] [--browser]\n  installs npm packages if missing; with --python also the spark-jobs virtualenv and jars;\n  with --browser Debian's chromium (headless report test)\n",
    );
    return;
  }
  ensureNpm();
  if (args.includes("--python")) {
    ensureJava();
    ensureVenv();
    await ensureJars();
  }
  if (args.includes("--browser")) ensureChromium();
}

main().catch((err) => {
  process.stderr.write(`[setup] ${err.message}\n`);
  process.exit(1);
});
