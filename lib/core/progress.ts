// The progress display of a pipeline run, fed the same events by a local run (in-process state
// machine, worker pool, local Spark) and by a cloud run (execution history, GetJobRun, SQS depth).
// Producers call `sink.emit(event)`; they never print. The renderer decides how it looks:
//   - TtyProgressRenderer: the current state, a bar per resource type, job lines (interactive)
//   - LineProgressRenderer: one line per change (logs, CI, a terminal that is not a TTY)
//   - QuietProgressRenderer: nothing (`--json`: the command prints one JSON summary at the end)
// Events carry ids, counts and timings only: never resource content (no PHI in progress output).
import { MultiBar, Presets, type SingleBar } from "cli-progress";

export type ProgressEvent =
  /** The run started or ended. */
  | { kind: "run"; status: "started" | "succeeded" | "failed" | "aborted" | "timed-out"; runId: string; detail?: string; at?: number }
  /** A state of the state machine was entered or left. */
  | { kind: "state"; name: string; status: "entered" | "succeeded" | "failed"; detail?: string; at?: number }
  /** A counter of one group (e.g. group "extract", key "Observation"): done so far, total if known. */
  | { kind: "counter"; group: string; key: string; done: number; total?: number; unit?: string }
  /** A Spark job (EMR Serverless job run, or local Spark): its state and, if known, stage progress. */
  | { kind: "job"; name: string; id?: string; state: string; completedTasks?: number; totalTasks?: number; detail?: string }
  /** Depth of a work queue (messages waiting and in flight). */
  | { kind: "queue"; name: string; visible: number; inFlight: number }
  /** Anything else worth a line (e.g. "waiting 120 s for the export"). */
  | { kind: "note"; text: string };

export interface ProgressSink {
  emit(event: ProgressEvent): void;
  /** Stops any redrawing; the sink must not be used afterwards. */
  close(): void;
}

export interface ProgressOptions {
  /** `--json`: print nothing while running. */
  json?: boolean;
  /** Where to draw (default process.stderr, so stdout stays for results). */
  stream?: NodeJS.WriteStream;
  /** Force the kind of renderer (default: TTY bars when the stream is a TTY, else lines). */
  mode?: "tty" | "lines" | "quiet";
}

/** The renderer that suits the options and the terminal. */
export function createProgressRenderer(options: ProgressOptions = {}): ProgressSink {
  const stream = options.stream ?? process.stderr;
  const mode = options.mode ?? (options.json ? "quiet" : stream.isTTY ? "tty" : "lines");
  if (mode === "quiet") return new QuietProgressRenderer();
  if (mode === "tty") return new TtyProgressRenderer(stream);
  return new LineProgressRenderer(stream);
}

/** Records events and prints nothing (`--json`); tests read `events`. */
export class QuietProgressRenderer implements ProgressSink {
  readonly events: ProgressEvent[] = [];
  emit(event: ProgressEvent): void {
    this.events.push(event);
  }
  close(): void {}
}

function describe(event: ProgressEvent): string | undefined {
  switch (event.kind) {
    case "run":
      return `run ${event.runId} ${event.status}${event.detail ? `: ${event.detail}` : ""}`;
    case "state":
      return `${event.status === "entered" ? "→" : event.status === "succeeded" ? "✓" : "✗"} ${event.name}${event.detail ? ` (${event.detail})` : ""}`;
    case "job": {
      const tasks = event.totalTasks ? ` ${event.completedTasks ?? 0}/${event.totalTasks} tasks` : "";
      return `  job ${event.name}${event.id ? ` ${event.id}` : ""}: ${event.state}${tasks}${event.detail ? ` (${event.detail})` : ""}`;
    }
    case "queue":
      return `  queue ${event.name}: ${event.visible} waiting, ${event.inFlight} in flight`;
    case "counter":
      return `  ${event.group} ${event.key}: ${event.done}${event.total !== undefined ? `/${event.total}` : ""}${event.unit ? ` ${event.unit}` : ""}`;
    case "note":
      return `  ${event.text}`;
  }
}

/**
 * One line per change, for logs. Counters are throttled to one line per key per 5 s, and repeated
 * identical job/queue lines are dropped, so a long run does not flood a log.
 */
export class LineProgressRenderer implements ProgressSink {
  private last = new Map<string, string>();
  private lastCounterAt = new Map<string, number>();
  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly now: () => number = Date.now,
  ) {}

  emit(event: ProgressEvent): void {
    const line = describe(event);
    if (!line) return;
    if (event.kind === "job" || event.kind === "queue") {
      const key = `${event.kind}:${event.name}`;
      if (this.last.get(key) === line) return;
      this.last.set(key, line);
    }
    if (event.kind === "counter") {
      const key = `${event.group}:${event.key}`;
      const t = this.now();
      const done = event.total !== undefined && event.done >= event.total;
      if (!done && t - (this.lastCounterAt.get(key) ?? -Infinity) < 5000) return;
      this.lastCounterAt.set(key, t);
    }
    this.stream.write(line + "\n");
  }
  close(): void {}
}

/**
 * Interactive display: a status line (run and current state), a bar per counter key with its rate
 * (e.g. resources/s per type during extraction), a bar per Spark job (tasks) or its state.
 */
export class TtyProgressRenderer implements ProgressSink {
  private readonly multibar: MultiBar;
  private readonly status: SingleBar;
  private readonly bars = new Map<string, { bar: SingleBar; startedAt: number }>();
  private runLabel = "";
  private stateLabel = "";

  constructor(stream: NodeJS.WriteStream) {
    this.multibar = new MultiBar(
      {
        stream,
        clearOnComplete: false,
        hideCursor: true,
        format: "{label} |{bar}| {value}/{total} {info}",
        barsize: 30,
        autopadding: true,
        emptyOnZero: true,
      },
      Presets.shades_classic,
    );
    this.status = this.multibar.create(1, 0, { label: "run", info: "" }, { format: "{label} {info}" });
  }

  private bar(key: string, label: string, total: number, format?: string): SingleBar {
    let entry = this.bars.get(key);
    if (!entry) {
      const payload = { label: label.padEnd(22).slice(0, 22), info: "" };
      entry = { bar: this.multibar.create(Math.max(total, 1), 0, payload, format ? { format } : undefined), startedAt: Date.now() };
      this.bars.set(key, entry);
    }
    return entry.bar;
  }

  private refreshStatus(): void {
    this.status.update(0, { label: "run", info: `${this.runLabel}${this.stateLabel ? `  state: ${this.stateLabel}` : ""}` });
  }

  emit(event: ProgressEvent): void {
    switch (event.kind) {
      case "run":
        this.runLabel = `${event.runId} ${event.status}${event.detail ? `: ${event.detail}` : ""}`;
        this.refreshStatus();
        return;
      case "state":
        if (event.status === "entered") this.stateLabel = event.name;
        else if (event.status === "failed") this.stateLabel = `${event.name} failed${event.detail ? ` (${event.detail})` : ""}`;
        this.refreshStatus();
        return;
      case "counter": {
        const key = `counter:${event.group}:${event.key}`;
        const total = event.total ?? Math.max(event.done, 1);
        const bar = this.bar(key, `${event.group} ${event.key}`, total);
        const entry = this.bars.get(key)!;
        const seconds = Math.max((Date.now() - entry.startedAt) / 1000, 0.001);
        bar.setTotal(Math.max(total, event.done, 1));
        bar.update(event.done, { info: `${Math.round(event.done / seconds)} ${event.unit ?? "resources"}/s` });
        return;
      }
      case "job": {
        const key = `job:${event.name}`;
        const total = event.totalTasks ?? 1;
        const bar = this.bar(key, `job ${event.name}`, total);
        bar.setTotal(Math.max(total, 1));
        const done = event.totalTasks ? (event.completedTasks ?? 0) : /SUCCESS|SUCCEEDED|COMPLETE/i.test(event.state) ? 1 : 0;
        bar.update(done, { info: `${event.state}${event.detail ? ` ${event.detail}` : ""}` });
        return;
      }
      case "queue": {
        const bar = this.bar(`queue:${event.name}`, `queue ${event.name}`, 1, "{label} {info}");
        bar.update(0, { info: `${event.visible} waiting, ${event.inFlight} in flight` });
        return;
      }
      case "note":
        this.multibar.log(`${event.text}\n`);
        return;
    }
  }

  close(): void {
    this.multibar.stop();
  }
}
