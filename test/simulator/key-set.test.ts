// The compact key set behind the served-resource stats.
import { KeySet } from "../../lib/simulator/key-set";
import { resourceKey } from "../../lib/simulator/ids";

describe("KeySet", () => {
  it("behaves like a Set of integer keys across growth, including 52-bit keys", () => {
    const ks = new KeySet(4);
    const ref = new Set<number>();
    for (let owner = 0; owner < 300; owner += 7) {
      for (let slot = 0; slot < 40; slot++) {
        for (const key of [resourceKey(owner, slot, 1), resourceKey(owner, slot, 2), resourceKey((1 << 24) - 1, slot, 1)]) {
          expect(ks.add(key)).toBe(!ref.has(key));
          ref.add(key);
        }
      }
    }
    expect(ks.size).toBe(ref.size);
    for (const k of ref) expect(ks.has(k)).toBe(true);
    expect(ks.has(resourceKey(1, 1, 1))).toBe(false);
    expect(ks.add(0)).toBe(true);
    expect(ks.add(0)).toBe(false);
    expect(() => ks.add(-1)).toThrow();
  });
});
