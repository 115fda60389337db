// The run report as one static HTML page with inline SVG charts (pure: report -> string). No
// scripts, no fonts, no CDN: the page opens offline from the work directory.
import type { MetricRecord } from "./metrics";
import type { RunReport } from "./report-analysis";
import { listRuns, stepTimes } from "./report-analysis";

export interface Bar {
  label: string;
  value: number;
  /** Text shown after the bar (default: the value). */
  text?: string;
  highlight?: boolean;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const num = (v: number, digits = 3) =>
  Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : Number(v.toPrecision(digits)).toString();

/** A horizontal bar chart as an SVG element (labels left, values right of the bars). */
export function svgBarChart(title: string, bars: readonly Bar[], unit: string): string {
  const width = 760;
  const labelWidth = 260;
  const valueWidth = 110;
  const row = 22;
  const top = 28;
  const height = top + Math.max(bars.length, 1) * row + 8;
  const max = Math.max(0, ...bars.map((b) => b.value));
  const scale = max > 0 ? (width - labelWidth - valueWidth) / max : 0;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${esc(title)}</title>`,
    `<text x="0" y="16" class="chart-title">${esc(title)}${unit ? ` (${esc(unit)})` : ""}</text>`,
  ];
  if (bars.length === 0) parts.push(`<text x="0" y="${top + 14}" class="muted">nothing recorded</text>`);
  bars.forEach((b, i) => {
    const y = top + i * row;
    const w = Math.max(b.value * scale, b.value > 0 ? 1 : 0);
    const label = b.label.length > 40 ? `${b.label.slice(0, 39)}…` : b.label;
    parts.push(
      `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end"><title>${esc(b.label)}</title>${esc(label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${row - 6}" class="${b.highlight ? "bar hot" : "bar"}"/>`,
      `<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 15}">${esc(b.text ?? num(b.value))}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

/**
 * Lines of one value per run (e.g. each step's seconds over the last runs) as an SVG element.
 * `series` maps a name to one value per run (undefined where the run lacks it).
 */
export function svgLineChart(
  title: string,
  runs: readonly string[],
  series: ReadonlyMap<string, (number | undefined)[]>,
  unit: string,
): string {
  const width = 760;
  const height = 240;
  const left = 60;
  const right = 170;
  const top = 28;
  const bottom = 40;
  const values = [...series.values()].flat().filter((v): v is number => v !== undefined);
  const max = Math.max(0, ...values) || 1;
  const x = (i: number) => left + (runs.length > 1 ? (i * (width - left - right)) / (runs.length - 1) : (width - left - right) / 2);
  const y = (v: number) => top + (height - top - bottom) * (1 - v / max);
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${esc(title)}</title>`,
    `<text x="0" y="16" class="chart-title">${esc(title)} (${esc(unit)})</text>`,
    `<line x1="${left}" y1="${y(0)}" x2="${width - right}" y2="${y(0)}" class="axis"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${y(0)}" class="axis"/>`,
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end">${esc(num(max))}</text>`,
    `<text x="${left - 6}" y="${y(0) + 4}" text-anchor="end">0</text>`,
  ];
  runs.forEach((run, i) => {
    const short = run.length > 14 ? `…${run.slice(-13)}` : run;
    parts.push(
      `<text x="${x(i)}" y="${height - bottom + 16}" text-anchor="middle" class="muted"><title>${esc(run)}</title>${esc(short)}</text>`,
    );
  });
  [...series.entries()].forEach(([name, vals], k) => {
    const color = palette[k % palette.length];
    const points = vals.map((v, i) => (v === undefined ? undefined : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean);
    if (points.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(" ")}"/>`);
    vals.forEach((v, i) => {
      if (v !== undefined)
        parts.push(
          `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${name}: ${num(v)} ${unit}`)}</title></circle>`,
        );
    });
    parts.push(
      `<rect x="${width - right + 12}" y="${top + k * 18}" width="10" height="10" fill="${color}"/>`,
      `<text x="${width - right + 28}" y="${top + k * 18 + 9}">${esc(name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

function htmlTable(header: string[], rows: string[][]): string {
  const head = header.map((h) => `<th>${esc(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("\n");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const ratio = (r: number | undefined) => (r === undefined ? "-" : `${r.toFixed(2)}×`);
const opt = (v: number | undefined, digits = 3) => (v === undefined ? "-" : num(v, digits));

/** The Spark stages of a run: the longest `n` stage durations, labelled with step and stage. */
function sparkStageBars(rows: readonly MetricRecord[], runId: string, n = 15): Bar[] {
  return rows
    .filter((r) => r.runId === runId && r.name === "spark.stage.duration")
    .sort((a, b) => b.value - a.value)
    .slice(0, n)
    .map((r) => ({
      label: `${r.step} #${String(r.attributes.stage_id ?? "?")} ${String(r.attributes.label ?? r.attributes.stage_name ?? "")}`.trim(),
      value: r.value,
    }));
}

/** The page: stage timings, throughput, counts per layer, slowest operations, comparison, history. */
export function renderReportHtml(report: RunReport, rows: readonly MetricRecord[], generatedAt = new Date()): string {
  const { run } = report;
  const stepBars = report.steps.map((s) => ({
    label: s.step,
    value: s.seconds,
    text: `${num(s.seconds)} s (${(s.share * 100).toFixed(0)}%)`,
    highlight: report.bottleneck?.step === s.step,
  }));
  const tputBars = report.steps.filter((s) => s.throughput !== undefined).map((s) => ({ label: s.step, value: s.throughput as number }));
  // Spark stage counts are sums over stages (in the Spark section); the layer counts are the rest.
  const countBars = report.counts
    .filter((c) => !c.name.startsWith("spark."))
    .map((c) => ({ label: `${c.step}: ${c.name}`, value: c.value }));
  const slowBars = report.slowest.map((o) => ({ label: `${o.step}: ${o.name}`, value: o.seconds, text: `${num(o.seconds)} s` }));
  const sparkBars = sparkStageBars(rows, run.runId);

  // History: each step's seconds over the last ten runs.
  const history = listRuns(rows).slice(-10);
  const series = new Map<string, (number | undefined)[]>();
  history.forEach((h, i) => {
    for (const s of stepTimes(rows, h.runId)) {
      if (!series.has(s.step)) series.set(s.step, new Array(history.length).fill(undefined));
      (series.get(s.step) as (number | undefined)[])[i] = s.seconds;
    }
  });

  const b = report.bottleneck;
  const sections = [
    `<h1>Pipeline run ${esc(run.runId)}</h1>`,
    `<p class="muted">started ${esc(run.startedAt)} · steps ${esc(run.steps.join(" → "))} · ${run.records} metric records · generated ${esc(generatedAt.toISOString())}</p>`,
    b
      ? `<p class="callout">Bottleneck: <b>${esc(b.step)}</b>, ${num(b.seconds)} s, ${(b.share * 100).toFixed(0)}% of the run's step time.</p>`
      : `<p class="callout">No step recorded a runtime.</p>`,
    `<h2>Stage timings</h2>`,
    svgBarChart("Time per step", stepBars, "seconds"),
    `<h2>Throughput per stage</h2>`,
    svgBarChart("Records per second", tputBars, "records/s"),
    `<h2>Counts per layer</h2>`,
    svgBarChart("Counts", countBars, "count"),
    `<h2>Slowest operations</h2>`,
    svgBarChart("Five slowest operations (RUNTIME)", slowBars, "seconds"),
    htmlTable(
      ["seconds", "step", "operation", "attributes"],
      report.slowest.map((o) => [num(o.seconds), o.step, o.name, JSON.stringify(o.attributes)]),
    ),
  ];
  if (sparkBars.length) sections.push(`<h2>Spark stages</h2>`, svgBarChart("Longest Spark stages", sparkBars, "seconds"));
  sections.push(`<h2>Compared with the previous run</h2>`);
  if (report.previousRun) {
    sections.push(
      `<p class="muted">previous run ${esc(report.previousRun.runId)}, started ${esc(report.previousRun.startedAt)}; a time ratio below 1 is faster, a throughput ratio above 1 is better.</p>`,
      htmlTable(
        ["step", "seconds", "previous seconds", "time ratio", "records/s", "previous records/s", "throughput ratio"],
        report.comparison.map((c) => [
          c.step,
          opt(c.seconds),
          opt(c.previousSeconds),
          ratio(c.timeRatio),
          opt(c.throughput),
          opt(c.previousThroughput),
          ratio(c.throughputRatio),
        ]),
      ),
    );
  } else {
    sections.push(`<p class="muted">This is the first run in this work directory.</p>`);
  }
  if (history.length > 1) {
    sections.push(
      `<h2>Run history</h2>`,
      svgLineChart(
        "Time per step, last runs",
        history.map((h) => h.runId),
        series,
        "seconds",
      ),
    );
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Pipeline run ${esc(run.runId)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 900px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.muted { color: #666; } .callout { background: #fff4e5; padding: 8px 12px; border-left: 4px solid #ff9800; }
svg text { font: 12px system-ui, sans-serif; fill: #222; } svg .chart-title { font-weight: bold; }
svg .muted { fill: #666; } .bar { fill: #4e79a7; } .bar.hot { fill: #e15759; } .axis { stroke: #999; }
table { border-collapse: collapse; margin-top: 8px; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
td { font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
${sections.join("\n")}
</body>
</html>
`;
}
