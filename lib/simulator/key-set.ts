// A compact set of non-negative integer keys below 2^53 (resource-version keys from ids.ts):
// open addressing over a Float64Array, about 16 bytes per key instead of the ~60 of a Set of
// heap numbers, so counting a million distinct served resources stays light.
const EMPTY = -1;

export class KeySet {
  private table: Float64Array;
  private mask: number;
  private count = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.table = new Float64Array(cap).fill(EMPTY);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  private static slot(key: number, mask: number): number {
    const lo = key % 4294967296;
    const hi = Math.floor(key / 4294967296);
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 13;
    return h & mask;
  }

  has(key: number): boolean {
    let i = KeySet.slot(key, this.mask);
    for (;;) {
      const v = this.table[i];
      if (v === key) return true;
      if (v === EMPTY) return false;
      i = (i + 1) & this.mask;
    }
  }

  /** Adds a key; returns true when it was not there before. */
  add(key: number): boolean {
    if (!(key >= 0 && key <= Number.MAX_SAFE_INTEGER && Number.isInteger(key))) throw new Error(`bad key ${key}`);
    let i = KeySet.slot(key, this.mask);
    for (;;) {
      const v = this.table[i];
      if (v === key) return false;
      if (v === EMPTY) break;
      i = (i + 1) & this.mask;
    }
    this.table[i] = key;
    this.count += 1;
    if (this.count * 2 > this.table.length) this.grow();
    return true;
  }

  private grow(): void {
    const old = this.table;
    this.table = new Float64Array(old.length * 2).fill(EMPTY);
    this.mask = this.table.length - 1;
    for (let j = 0; j < old.length; j++) {
      const v = old[j];
      if (v === EMPTY) continue;
      let i = KeySet.slot(v, this.mask);
      while (this.table[i] !== EMPTY) i = (i + 1) & this.mask;
      this.table[i] = v;
    }
  }
}
