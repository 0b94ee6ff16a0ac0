/**
 * A small seeded PRNG (mulberry32): the fault schedule and the virtual users' choices come from it, so
 * the same `--seed` gives the same schedule (timings still depend on the machine).
 */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T;
  /** A new independent stream derived from this one (so adding a VU does not shift the faults). */
  fork(label: number): Rng;
}

export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (list) => list[Math.floor(next() * list.length)]!,
    fork: (label) => createRng((Math.imul(seed ^ 0x9e3779b9, 31) + label * 7919) >>> 0),
  };
}
