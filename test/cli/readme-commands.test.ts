// The README's CLI table is documentation users copy from: every command it lists must exist,
// with the options it shows, so the docs cannot go stale.
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
