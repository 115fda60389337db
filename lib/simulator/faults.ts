// Fault injection: the `--faults SPEC` grammar (pure parsing, unit-tested) and the deterministic
// decisions taken from it.
//
// SPEC is a comma-separated list of NAME:VALUE entries:
//   429:P  500:P  503:P   answer that status instead of serving (P = probability 0..1)
//   reset:P               destroy the connection without answering
//   slow:DURATION[:P]     add DURATION (e.g. 200ms, 2s) before answering (every request, or with P)
//   truncate:P            a bulk file download is cut short (connection closed before the end)
//   malformed:P           each NDJSON line of a bulk file is corrupted with probability P
//   token-expiry:DURATION access tokens stop working after DURATION of real time (expires_in unchanged)
//   token-400:P           the token endpoint answers a bare 400 (as Epic sometimes does)
//   bulk-error:P          a bulk job reports an error file (OperationOutcomes) in its manifest
// Example: 429:0.05,500:0.02,503:0.02,reset:0.01,slow:200ms,truncate:0.01,malformed:0.001,token-expiry:30s

export interface FaultSpec {
  status429: number;
  status500: number;
  status503: number;
  reset: number;
  slowMs: number;
  slowProbability: number;
  truncate: number;
  malformed: number;
  tokenExpiryMs: number | undefined;
  token400: number;
  bulkError: number;
}

export const NO_FAULTS: FaultSpec = Object.freeze({
  status429: 0,
  status500: 0,
  status503: 0,
  reset: 0,
  slowMs: 0,
  slowProbability: 0,
  truncate: 0,
  malformed: 0,
  tokenExpiryMs: undefined,
  token400: 0,
  bulkError: 0,
});

export class FaultSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FaultSpecError";
  }
}

/** Parses "250ms", "2s", "1.5s", "1m" or a bare number of milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new FaultSpecError(`"${text}" is not a duration (use e.g. 200ms, 2s, 1m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "ms";
  return Math.round(unit === "ms" ? n : unit === "s" ? n * 1000 : n * 60_000);
}

function parseProbability(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new FaultSpecError(`fault "${name}": "${text}" is not a probability between 0 and 1`);
  }
  return n;
}

const PROBABILITY_FAULTS: Record<string, keyof FaultSpec> = {
  "429": "status429",
  "500": "status500",
  "503": "status503",
  reset: "reset",
  truncate: "truncate",
  malformed: "malformed",
  "token-400": "token400",
  "bulk-error": "bulkError",
};

/** Parses a fault SPEC (see the module comment); throws FaultSpecError naming the bad entry. */
export function parseFaultSpec(spec: string | undefined): FaultSpec {
  const out: FaultSpec = { ...NO_FAULTS };
  if (!spec || spec.trim() === "") return out;
  const seen = new Set<string>();
  for (const raw of spec.split(",")) {
    const entry = raw.trim();
    if (entry === "") throw new FaultSpecError(`empty entry in fault spec "${spec}"`);
    const parts = entry.split(":");
    const name = parts[0].trim();
    if (parts.length < 2) throw new FaultSpecError(`fault "${entry}" needs a value, e.g. ${name}:0.05`);
    if (seen.has(name)) throw new FaultSpecError(`fault "${name}" is given twice`);
    seen.add(name);
    if (name in PROBABILITY_FAULTS) {
      if (parts.length !== 2) throw new FaultSpecError(`fault "${entry}": expected ${name}:PROBABILITY`);
      (out[PROBABILITY_FAULTS[name]] as number) = parseProbability(name, parts[1]);
    } else if (name === "slow") {
      if (parts.length > 3) throw new FaultSpecError(`fault "${entry}": expected slow:DURATION or slow:DURATION:PROBABILITY`);
      out.slowMs = parseDuration(parts[1]);
      out.slowProbability = parts.length === 3 ? parseProbability(name, parts[2]) : 1;
    } else if (name === "token-expiry") {
      if (parts.length !== 2) throw new FaultSpecError(`fault "${entry}": expected token-expiry:DURATION`);
      const ms = parseDuration(parts[1]);
      if (ms <= 0) throw new FaultSpecError(`fault "token-expiry": duration must be positive`);
      out.tokenExpiryMs = ms;
    } else {
      throw new FaultSpecError(
        `unknown fault "${name}" (known: 429, 500, 503, reset, slow, truncate, malformed, token-expiry, token-400, bulk-error)`,
      );
    }
  }
  if (out.status429 + out.status500 + out.status503 + out.reset > 1) {
    throw new FaultSpecError("the probabilities of 429, 500, 503 and reset add up to more than 1");
  }
  return out;
}

/** What to do with one FHIR request before serving it. */
export type RequestFault = "429" | "500" | "503" | "reset" | undefined;

/** Picks the request-level fault from a uniform draw u in [0,1) (pure; one draw per request). */
export function pickRequestFault(spec: FaultSpec, u: number): RequestFault {
  let edge = spec.status429;
  if (u < edge) return "429";
  edge += spec.status500;
  if (u < edge) return "500";
  edge += spec.status503;
  if (u < edge) return "503";
  edge += spec.reset;
  if (u < edge) return "reset";
  return undefined;
}
