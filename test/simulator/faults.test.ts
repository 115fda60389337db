// Pure parts of the simulator: the fault spec grammar, the fault pick, Retry-After formatting and
// the token bucket.
import { FaultSpecError, NO_FAULTS, parseDuration, parseFaultSpec, pickRequestFault } from "../../lib/simulator/faults";
import { TokenBucket } from "../../lib/simulator/rate-limit";
import { formatRetryAfter } from "../../lib/simulator/server";

describe("parseFaultSpec", () => {
  it("parses the full example from the issue", () => {
    const f = parseFaultSpec(
      "429:0.05,500:0.02,503:0.02,reset:0.01,slow:200ms,truncate:0.01,malformed:0.001,token-expiry:30s,bulk-error:1",
    );
    expect(f).toEqual({
      status429: 0.05,
      status500: 0.02,
      status503: 0.02,
      reset: 0.01,
      slowMs: 200,
      slowProbability: 1,
      truncate: 0.01,
      malformed: 0.001,
      tokenExpiryMs: 30_000,
      token400: 0,
      bulkError: 1,
    });
  });

  it("treats an empty or absent spec as no faults", () => {
    expect(parseFaultSpec(undefined)).toEqual(NO_FAULTS);
    expect(parseFaultSpec("  ")).toEqual(NO_FAULTS);
  });

  it("accepts slow with a probability and token-400", () => {
    const f = parseFaultSpec(" slow:1.5s:0.25 , token-400:0.1 ");
    expect(f.slowMs).toBe(1500);
    expect(f.slowProbability).toBe(0.25);
    expect(f.token400).toBe(0.1);
  });

  it.each([
    ["teapot:0.1", /unknown fault "teapot"/],
    ["429", /needs a value/],
    ["429:1.5", /not a probability/],
    ["500:abc", /not a probability/],
    ["429:0.1,429:0.2", /given twice/],
    ["slow:fast", /not a duration/],
    ["token-expiry:0s", /must be positive/],
    ["429:0.6,500:0.6", /add up to more than 1/],
    ["429:0.1,,500:0.1", /empty entry/],
  ])("rejects %s with a clear message", (spec, message) => {
    expect(() => parseFaultSpec(spec)).toThrow(FaultSpecError);
    expect(() => parseFaultSpec(spec)).toThrow(message);
  });

  it("parses durations", () => {
    expect(parseDuration("50ms")).toBe(50);
    expect(parseDuration("2s")).toBe(2000);
    expect(parseDuration("1m")).toBe(60_000);
    expect(parseDuration("75")).toBe(75);
  });
});

describe("pickRequestFault", () => {
  const f = parseFaultSpec("429:0.1,500:0.1,503:0.1,reset:0.1");
  it("maps the draw onto consecutive probability bands", () => {
    expect(pickRequestFault(f, 0.05)).toBe("429");
    expect(pickRequestFault(f, 0.15)).toBe("500");
    expect(pickRequestFault(f, 0.25)).toBe("503");
    expect(pickRequestFault(f, 0.35)).toBe("reset");
    expect(pickRequestFault(f, 0.45)).toBeUndefined();
    expect(pickRequestFault(NO_FAULTS, 0)).toBeUndefined();
  });
});

describe("formatRetryAfter", () => {
  it("keeps whole seconds and scales below a second with millisecond precision", () => {
    expect(formatRetryAfter(120)).toBe("120");
    expect(formatRetryAfter(0.12)).toBe("0.12");
    expect(formatRetryAfter(0.0001)).toBe("0.001");
    expect(formatRetryAfter(1.2345)).toBe("1.235");
  });
});

describe("TokenBucket", () => {
  it("allows a burst of one second, then asks to wait for the next token", () => {
    const b = new TokenBucket(10, 10, 0);
    for (let i = 0; i < 10; i++) expect(b.take(0)).toBe(0);
    expect(b.take(0)).toBeCloseTo(0.1, 5);
    expect(b.take(100)).toBe(0);
    expect(b.take(100)).toBeGreaterThan(0);
  });
});
