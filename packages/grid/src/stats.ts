/** Student t 0.975 quantiles for 1..30 degrees of freedom (two-sided 95 %). */
const T975 = [
  12.706204736, 4.30265273, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252, 2.306004135, 2.262157163, 2.228138852, 2.20098516, 2.178812827, 2.160368656, 2.144786688, 2.131449546, 2.119905299,
  2.109815578, 2.10092204, 2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.06865761, 2.063898562, 2.059538553, 2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456,
];

/** The 0.975 quantile of Student's t with `df` degrees of freedom (table to 30, Cornish-Fisher expansion above: error < 1e-5). */
export function tQuantile975(df: number): number {
  if (!(df >= 1) || !Number.isInteger(df)) throw new RangeError(`degrees of freedom must be a whole number >= 1, got ${df}`);
  if (df <= 30) return T975[df - 1]!;
  const z = 1.959963984540054;
  const z3 = z ** 3, z5 = z ** 5, z7 = z ** 7;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3);
}

/** Mean, sample standard deviation and 95 % confidence interval of the mean (Student t, n-1 df). */
export interface Summary {
  n: number;
  mean: number;
  /** Sample standard deviation (n-1); NaN for n < 2. */
  std: number;
  /** Half width of the 95 % interval; NaN for n < 2. */
  ci95: number;
  low: number;
  high: number;
}

/** {@link Summary} of `values` (NaN values are an error: a missing result must not shrink n silently). */
export function summarise(values: number[]): Summary {
  if (values.some((v) => !Number.isFinite(v))) throw new RangeError(`summarise: non-finite value in [${values.join(', ')}]`);
  const n = values.length;
  if (!n) return { n: 0, mean: Number.NaN, std: Number.NaN, ci95: Number.NaN, low: Number.NaN, high: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, std: Number.NaN, ci95: Number.NaN, low: Number.NaN, high: Number.NaN };
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const ci95 = (tQuantile975(n - 1) * std) / Math.sqrt(n);
  return { n, mean, std, ci95, low: mean - ci95, high: mean + ci95 };
}
