// CPU seconds used by a child process and its descendants (a Python job and the JVM it starts),
// sampled from Linux /proc while it runs. On a machine other jobs keep busy, wall-clock times of
// one job swing by a factor of two between runs; the CPU it used swings far less, so benchmarks
// that compare settings of the same job judge by CPU time and report wall time as context.
import { spawn } from "node:child_process";
import * as fs from "node:fs";

/** Clock ticks per second of /proc/PID/stat times (USER_HZ: 100 on every Linux that matters). */
const TICKS_PER_SECOND = 100;

/** utime + stime of one process in seconds, from the text of /proc/PID/stat (pure). */
export function cpuSecondsFromStat(stat: string): number {
  // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error("unexpected /proc stat format");
  return (utime + stime) / TICKS_PER_SECOND;
}

function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** CPU seconds of each live process of the tree rooted at `pid`, by pid. */
export function treeCpuSeconds(pid: number): Map<number, number> {
  const seen = new Map<number, number>();
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    try {
      seen.set(p, cpuSecondsFromStat(fs.readFileSync(`/proc/${p}/stat`, "utf8")));
    } catch {
      continue; // exited
    }
    stack.push(...children(p));
  }
  return seen;
}

export function procAvailable(): boolean {
  return fs.existsSync("/proc/self/stat");
}

/**
 * Runs a command to completion, sampling its process tree's CPU every `intervalMs`; returns wall
 * seconds and the CPU seconds of every process seen (each at its last sample, so a process's last
 * interval before it exits is missed: at most `intervalMs` each). Rejects with the stderr tail
 * when the command fails.
 */
export function runMeasured(
  command: string,
  args: readonly string[],
  opts: { cwd: string; what: string; intervalMs?: number },
): Promise<{ wallSeconds: number; cpuSeconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(command, args, { cwd: opts.cwd, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const last = new Map<number, number>();
    const sample = () => {
      if (child.pid === undefined) return;
      for (const [pid, cpu] of treeCpuSeconds(child.pid)) last.set(pid, cpu);
    };
    const timer = setInterval(sample, opts.intervalMs ?? 200);
    child.on("error", (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearInterval(timer);
      const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0)
        return reject(new Error(`${opts.what} failed with exit code ${code}:\n${stderr.trim().split("\n").slice(-5).join("\n")}`));
      resolve({ wallSeconds, cpuSeconds: [...last.values()].reduce((a, b) => a + b, 0) });
    });
  });
}
