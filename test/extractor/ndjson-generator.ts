// Writes a large NDJSON file of realistic resources (the simulator's population, ids varied so
// every line is a distinct resource) without holding it in memory. Used by the bounded-memory
// test and the extract benchmark.
import * as fs from "node:fs";
import { Population, serializeResource } from "../../lib/simulator/population";

/** Resource lines of a few simulated patients (the templates). */
export function templateLines(patients = 40, seed = 7): string[] {
  const pop = new Population({ patients, seed, longIds: true });
  const out: string[] = [];
  for (let i = 0; i < patients; i++) for (const r of pop.patient(i).resources) out.push(serializeResource(r, false));
  return out;
}

/** Writes about `bytes` of NDJSON to `file`; returns the number of lines per resource type. */
export async function writeNdjson(file: string, bytes: number, templates = templateLines()): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const fd = fs.openSync(file, "w");
  try {
    let written = 0;
    let copy = 0;
    const buf: string[] = [];
    let bufLen = 0;
    while (written < bytes) {
      for (const t of templates) {
        // a distinct id per copy: "id":"X" -> "id":"X-c{copy}"
        const at = t.indexOf('"id":"') + 6;
        const end = t.indexOf('"', at);
        const line = `${t.slice(0, end)}-c${copy}${t.slice(end)}\n`;
        buf.push(line);
        bufLen += line.length;
        const type = t.slice(17, t.indexOf('"', 17));
        counts[type] = (counts[type] ?? 0) + 1;
        if (bufLen >= 1 << 20) {
          fs.writeSync(fd, buf.join(""));
          written += bufLen;
          buf.length = 0;
          bufLen = 0;
          if (written >= bytes) break;
        }
      }
      copy++;
    }
    if (bufLen > 0) fs.writeSync(fd, buf.join(""));
  } finally {
    fs.closeSync(fd);
  }
  return counts;
}
