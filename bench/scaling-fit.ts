// How a stage's cost grows with the data (pure): least squares of log(time) on log(resources).
// The slope is the exponent of time ~ c * resources^k: 1.0 is linear, below 1 means fixed costs
// still dominate, above 1 super-linear (the bench target is k <= 1.1 for every stage).

export interface PowerFit {
  /** k in time = c * resources^k. */
  exponent: number;
  /** c in time = c * resources^k. */
  coefficient: number;
  /** Coefficient of determination of the log-log fit (1 = the points lie on a power law). */
  r2: number;
  points: number;
}

/** Fits y = c * x^k by ordinary least squares on (log x, log y). Needs >= 2 distinct positive x. */
export function fitPowerLaw(xs: readonly number[], ys: readonly number[]): PowerFit {
  if (xs.length !== ys.length) throw new Error(`fitPowerLaw: ${xs.length} x values but ${ys.length} y values`);
  if (xs.length < 2) throw new Error("fitPowerLaw needs at least two points");
  if ([...xs, ...ys].some((v) => !(v > 0) || !Number.isFinite(v)))
    throw new Error("fitPowerLaw needs positive, finite values (log-log fit)");
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < lx.length; i++) {
    sxx += (lx[i] - mx) ** 2;
    sxy += (lx[i] - mx) * (ly[i] - my);
    syy += (ly[i] - my) ** 2;
  }
  if (sxx === 0) throw new Error("fitPowerLaw needs at least two different x values");
  const exponent = sxy / sxx;
  const intercept = my - exponent * mx;
  const ssRes = ly.reduce((acc, y, i) => acc + (y - (intercept + exponent * lx[i])) ** 2, 0);
  return { exponent, coefficient: Math.exp(intercept), r2: syy === 0 ? 1 : 1 - ssRes / syy, points: xs.length };
}

/** One pipeline run of the progressive load benchmark. */
export interface ScalingPoint {
  /** Requested size (patients). */
  size: number;
  /** Data size the stages processed (resources extracted). */
  resources: number;
  /** Seconds per step (the report's step time). */
  stepSeconds: Record<string, number>;
}

/** max / min of the points' resources: the span the fit covers (the issue asks for >= 10). */
export function span(points: readonly ScalingPoint[]): number {
  const r = points.map((p) => p.resources);
  return Math.max(...r) / Math.min(...r);
}

/**
 * The fitted exponent of every step that has a positive time at every size, in the order the
 * steps first appear. Steps missing from some size are listed in `skipped`, not fitted.
 */
export function stageExponents(points: readonly ScalingPoint[]): { fits: { step: string; fit: PowerFit }[]; skipped: string[] } {
  const steps: string[] = [];
  for (const p of points) for (const s of Object.keys(p.stepSeconds)) if (!steps.includes(s)) steps.push(s);
  const fits: { step: string; fit: PowerFit }[] = [];
  const skipped: string[] = [];
  for (const step of steps) {
    if (points.some((p) => !(p.stepSeconds[step] > 0))) {
      skipped.push(step);
      continue;
    }
    fits.push({
      step,
      fit: fitPowerLaw(
        points.map((p) => p.resources),
        points.map((p) => p.stepSeconds[step]),
      ),
    });
  }
  return { fits, skipped };
}
