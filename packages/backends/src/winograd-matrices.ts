/*
 * Winograd F(m x m, 3x3) matrices: an m x m output tile of a 3x3 correlation is
 * Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A for the (m+2) x (m+2) input tile d and the 3x3 filter g.
 * Shared by the filter transform (src/winograd.ts, float64) and the generator of the wasm data
 * transforms (tools/wasm/winograd.ts); src/winograd.test.ts checks each set's identity.
 */

/** One Winograd F(m x m, 3x3) algorithm: tile size `alpha` = m + 2. */
export interface WinogradMatrices {
  /** Output tile edge. */
  readonly m: number;
  /** Input tile edge (m + 2). */
  readonly alpha: number;
  /** Bᵀ (alpha x alpha): the input transform. */
  readonly BT: readonly (readonly number[])[];
  /** G (alpha x 3): the filter transform. */
  readonly G: readonly (readonly number[])[];
  /** Aᵀ (m x alpha): the output transform. */
  readonly AT: readonly (readonly number[])[];
}

/** F(4x4, 3x3) (Lavin & Gray 2016, interpolation points 0, ±1, ±2, ∞): 36 products per 16 outputs. */
export const WINOGRAD_F4: WinogradMatrices = {
  m: 4,
  alpha: 6,
  BT: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
  G: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
  AT: [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
  ],
};

/**
 * F(6x6, 3x3) (interpolation points 0, ±1, ±1/2, ±2, ∞, as in NNPACK and ncnn): 64 products per
 * 36 outputs (1.78 per output against F(4x4)'s 2.25). The 1/2ᵏ factors of the ±1/2 columns of
 * Aᵀ are exact in floating point; the matching 32/45, 16/45, 8/45 sit in G (float64).
 */
export const WINOGRAD_F6: WinogradMatrices = {
  m: 6,
  alpha: 8,
  BT: [
    [1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0],
    [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
    [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0],
    [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
    [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0],
    [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
    [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0],
    [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1],
  ],
  G: [
    [1, 0, 0],
    [-2 / 9, -2 / 9, -2 / 9],
    [-2 / 9, 2 / 9, -2 / 9],
    [1 / 90, 1 / 45, 2 / 45],
    [1 / 90, -1 / 45, 2 / 45],
    [32 / 45, 16 / 45, 8 / 45],
    [32 / 45, -16 / 45, 8 / 45],
    [0, 0, 1],
  ],
  AT: [
    [1, 1, 1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
    [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
    [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0],
    [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0],
    [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1],
  ],
};

/** The variants the wasm module implements, by output tile edge. */
export const WINOGRAD_VARIANTS: readonly WinogradMatrices[] = [WINOGRAD_F4, WINOGRAD_F6];
