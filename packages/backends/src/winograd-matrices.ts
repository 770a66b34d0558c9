/*
 * The Winograd F(4x4, 3x3) matrices (Lavin & Gray 2016, interpolation points 0, ±1, ±2, ∞):
 * a 4x4 output tile of a 3x3 correlation is Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A for the 6x6 input
 * tile d and the 3x3 filter g. Shared by the filter transform (src/winograd.ts, float64) and the
 * generator of the wasm data transforms (tools/wasm/winograd.ts).
 */

/** Bᵀ (6x6): the input transform. */
export const WINOGRAD_BT: readonly (readonly number[])[] = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];

/** G (6x3): the filter transform. */
export const WINOGRAD_G: readonly (readonly number[])[] = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];

/** Aᵀ (4x6): the output transform. */
export const WINOGRAD_AT: readonly (readonly number[])[] = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 0],
  [0, 1, 1, 4, 4, 0],
  [0, 1, -1, 8, -8, 1],
];
