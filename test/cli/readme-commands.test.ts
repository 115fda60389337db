// The README's CLI table is documentation users copy from: every command it lists must exist,
// with the options it shows, so the docs cannot go stale.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { buildProgram } from "../../lib/cli/main";

const readme = fs.readFileSync(path.join(__dirname, "../../README.md"), "utf8");
const table = readme.slice(readme.indexOf("| command | what it does |"), readme.indexOf("## Configuration"));
const rows = table
  .split("\n")
  .filter((l) => l.startsWith("| `"))
  .map((l) => l.slice(3, l.indexOf("`", 3)));

describe("README CLI table", () => {
  const program = buildProgram();
  const commands = new Map(program.commands.map((c) => [c.name(), c]));

  it("lists every command the CLI has", () => {
    const listed = new Set(rows.map((r) => r.split(" ")[0]));
    expect([...commands.keys()].filter((c) => !listed.has(c))).toEqual([]);
  });

  it.each(rows.map((r) => [r.split(" ")[0], r]))("`%s` exists with the options the README shows", (name, usage) => {
    const command = commands.get(name);
    expect(command).toBeDefined();
    expect(command!.description().length).toBeGreaterThan(10);
    const longFlags = new Set(command!.options.map((o) => o.long));
    const shown = [...usage.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]);
    expect(shown.filter((flag) => !longFlags.has(flag))).toEqual([]);
  });
});

// Every command line the README shows (code blocks and inline), for the CLI and for the Python
// jobs, names a command or module that exists and only options it has: copied examples work.
describe("README command examples", () => {
  const program = buildProgram();
  const commands = new Map(program.commands.map((c) => [c.name(), c]));
  const globalFlags = new Set(program.options.map((o) => o.long));
  const flagsOf = (text: string): string[] => [...text.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]);
  // An invocation ends at a backtick, a comment or the end of the line.
  const invocations = (prefix: RegExp): string[] =>
    readme.split("\n").flatMap((line) => [...line.matchAll(new RegExp(`${prefix.source}[^\`#\\n]*`, "g"))].map((m) => m[0].trim()));

  const cli = invocations(/npx fhir-pipeline /);
  it("finds the CLI examples", () => expect(cli.length).toBeGreaterThanOrEqual(8));

  it.each(cli.filter((c) => !c.endsWith("--help")).map((c) => [c]))("%s", (line) => {
    const name = line.split(/\s+/)[2];
    const command = commands.get(name);
    expect(command).toBeDefined();
    const known = new Set([...command!.options.map((o) => o.long), ...globalFlags, "--help"]);
    expect(flagsOf(line).filter((flag) => !known.has(flag))).toEqual([]);
  });

  // The Python jobs are asked for their own --help (the venv `npm test` sets up), so an option
  // the README shows must be one argparse really accepts.
  const python = invocations(/python -m fhir_lakehouse\.[\w.]+/);
  const venvPython = path.join(__dirname, "../../spark-jobs/.venv/bin/python");
  it.each(python.map((c) => [c]))(
    "%s",
    (line) => {
      const module = /python -m (fhir_lakehouse\.[\w.]+)/.exec(line)![1];
      const help = spawnSync(venvPython, ["-m", module, "--help"], { cwd: path.join(__dirname, "../../spark-jobs"), encoding: "utf8" });
      expect({ module, status: help.status, stderr: help.stderr.slice(-500) }).toEqual({ module, status: 0, stderr: "" });
      expect(flagsOf(line).filter((flag) => !help.stdout.includes(flag))).toEqual([]);
    },
    60_000,
  );
});
