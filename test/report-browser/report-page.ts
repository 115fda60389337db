/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// Opens a run report (DIR/report/index.html) in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) and reads back what the browser actually rendered: every SVG chart
// with its title, its bars' rendered sizes and its data labels. Shared by the report's browser
// test and the end-to-end pipeline test.
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const ROOT = path.resolve(__dirname, "..", "..");

/** Installs Chromium when missing (scripts/setup.js --browser: apt-get, as root). Idempotent. */
export function ensureChromium(): void {
  execFileSync(process.execPath, [path.join(ROOT, "scripts", "setup.js"), "--browser"], {
    stdio: ["ignore", "inherit", "inherit"],
    cwd: ROOT,
  });
}

export interface RenderedChart {
  title: string;
  /** Rendered size of the <svg> element (CSS pixels). */
  width: number;
  height: number;
  /** Bars (rect.bar) with their rendered widths, and line-chart points (circle). */
  barWidths: number[];
  points: number;
  polylines: number;
  /** Text shown inside the chart (labels and values). */
  texts: string[];
  /** The chart says it has nothing to show. */
  empty: boolean;
}

export interface RenderedReport {
  title: string;
  headings: string[];
  charts: RenderedChart[];
  /** Requests the page made to anything but its own file (must be none: viewable offline). */
  externalRequests: string[];
  consoleErrors: string[];
}

/** Loads the page with the network cut off and returns what was rendered. */
export async function renderReport(file: string): Promise<RenderedReport> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage();
    const externalRequests: string[] = [];
    const consoleErrors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    const url = pathToFileURL(file).href;
    await page.route("**/*", (route) => {
      if (route.request().url() === url) return route.continue();
      externalRequests.push(route.request().url());
      return route.abort();
    });
    await page.goto(url, { waitUntil: "load" });
    const result = await page.evaluate(() => {
      const charts = [...document.querySelectorAll("svg")].map((svg) => {
        const box = svg.getBoundingClientRect();
        const bars = [...svg.querySelectorAll("rect.bar")].map((r) => (r as SVGGraphicsElement).getBoundingClientRect().width);
        // A label's own text, without its <title> tooltip.
        const ownText = (t: Element) =>
          [...t.childNodes]
            .filter((n) => n.nodeType === Node.TEXT_NODE)
            .map((n) => n.textContent ?? "")
            .join("")
            .trim();
        const texts = [...svg.querySelectorAll(":scope > text")].map(ownText).filter(Boolean);
        return {
          title: svg.getAttribute("aria-label") ?? "",
          width: box.width,
          height: box.height,
          barWidths: bars,
          points: svg.querySelectorAll("circle").length,
          polylines: svg.querySelectorAll("polyline").length,
          texts,
          empty: texts.some((t) => t === "nothing recorded"),
        };
      });
      return { title: document.title, headings: [...document.querySelectorAll("h1, h2")].map((h) => (h.textContent ?? "").trim()), charts };
    });
    return { ...result, externalRequests, consoleErrors };
  } finally {
    await browser.close();
  }
}

/** The chart whose title starts with `prefix` (throws when the page has none). */
export function chart(report: RenderedReport, prefix: string): RenderedChart {
  const c = report.charts.find((x) => x.title.startsWith(prefix));
  if (!c) throw new Error(`no chart "${prefix}…" in the report; charts: ${report.charts.map((x) => x.title).join(", ")}`);
  return c;
}
