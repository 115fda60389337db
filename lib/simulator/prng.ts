// Deterministic randomness for the simulator. Every random choice is derived from a small tuple
// (seed, patient index, stream, ...) so any patient's data can be regenerated on demand, in any
// order, without holding the population in memory.

/** 32-bit integer mix (a murmur3-style finaliser): well distributed and cheap. */
export function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Hash of a tuple of integers to one unsigned 32-bit integer. */
export function hashInts(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = mix32((h ^ (p | 0)) + 0x7f4a7c15 + Math.imul(h, 31));
    // Values beyond 32 bits (e.g. resource keys) contribute their high part too.
    if (p > 0xffffffff || p < -0x80000000) h = mix32(h ^ Math.floor(p / 4294967296));
  }
  return h;
}

/** Uniform float in [0,1) from a tuple: for one-off decisions (faults, corruption). */
export function hashUnit(...parts: number[]): number {
  return hashInts(...parts) / 4294967296;
}

/** A small, fast PRNG (sfc32) with the helpers the generators need. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(...seedParts: number[]) {
    const h = hashInts(...seedParts);
    this.a = h;
    this.b = mix32(h ^ 0x1234567);
    this.c = mix32(h ^ 0x89abcdef);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0,1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Integer in [min, max] inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** Normal-ish value (sum of uniforms) around mean with the given spread, rounded to `digits`. */
  around(mean: number, spread: number, digits = 0): number {
    const u = (this.next() + this.next() + this.next() - 1.5) / 1.5;
    const f = 10 ** digits;
    return Math.round((mean + u * spread) * f) / f;
  }
}
