/**
 * Float64 central differences of a scalar function, (f(x + h e_i) - f(x - h e_i)) / 2h for every
 * i: the independent reference the gradient tests compare tfjs gradients with.
 */
export function centralDiff(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-6): Float64Array {
  const at = Float64Array.from(x);
  return at.map((_, i) => {
    const xp = at.slice();
    const xm = at.slice();
    xp[i]! += h;
    xm[i]! -= h;
    return (f(xp) - f(xm)) / (2 * h);
  });
}
