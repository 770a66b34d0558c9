/*
 * Generates the WebAssembly (text format) of dfd's Winograd F(m x m, 3x3) transforms for the tfjs
 * wasm backend (@dfd/backends, src/winograd.ts), for each variant in WINOGRAD_VARIANTS (F(4x4,3x3)
 * and F(6x6,3x3)). `npm run build:wasm` assembles it with wabt into
 * packages/backends/src/winograd-module.ts; a test checks that the committed bytes are what this
 * generator and wabt produce.
 *
 * Winograd (Lavin & Gray 2016): an m x m output tile of a 3x3 correlation is
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
 * for the alpha x alpha input tile d (alpha = m + 2) and the 3x3 filter g. Per tile and channel
 * the alpha² products replace 9 m² multiply-adds; summed over input channels, each of the alpha²
 * elementwise products becomes a GEMM [tiles, Cin] x [Cin, Cout]. This module does the data
 * transforms (four channels per SIMD vector) and the GEMMs (`gemm`, below), reading and writing
 * the tfjs heap in place (it imports the backend's own memory). For the variant with output
 * tile m it exports:
 *
 *   input<m>(x, Hp, Wp, C, tilesH, tilesW, vTable, n0, n1)
 *     x: zero-padded input [N, Hp, Wp, C] (Hp = m tilesH + 2, Wp = m tilesW + 2), C % 4 == 0;
 *     vTable: alpha² i32 byte addresses of V_k, each [tiles, C] (tile = (n, ty, tx), row-major).
 *   output<m>(mTable, y, Ho, Wo, C, tilesH, tilesW, n0, n1)
 *     mTable: alpha² addresses of M_k [tiles, C]; y: [N, Ho, Wo, C], the tile edges cropped.
 *   Both do images n0 <= n < n1 only, so that threads can split a batch between them.
 *   filter<m>(g, u, Cin, Cout, -, -, -, c0, c1, part)
 *     U = G g Gᵀ for input channels c0 <= ci < c1 of the HWIO filter g [3, 3, Cin, Cout]
 *     (Cout % 4 == 0), in float32, into u: alpha² slices [Cin, Cout], each packed as `gemm`
 *     takes it.
 *   fused<m>(tab, -, -, -, -, -, -, b0, b1, part)
 *     blocks b0 <= b < b1 of T tiles: the input transform of the block into V (this part's
 *     scratch), the alpha² GEMMs M_k = V_k U_k, and the output transform into y. tab (i32): x
 *     (padded as for input<m>), Hp, Wp, Cin, Cout, tilesH, tilesW, U (alpha² slices packed as
 *     `gemm` takes them), y, Ho, Wo, scratch, scratch bytes per part (alpha² T (Cin + Cout) 4), T,
 *     tiles. Cout % 4 == 0.
 *
 * Rows of a transform that differ only in signs (Bᵀ's ±1, ±2, ±1/2 pairs) share their even and
 * odd parts, and columns equal up to sign (Aᵀ's) are summed and subtracted once.
 */
import { WINOGRAD_VARIANTS, type WinogradMatrices } from '../../packages/backends/src/winograd-matrices.js';

type Matrix = readonly (readonly number[])[];

const splat = (c: number): string => `(v128.const f32x4 ${c} ${c} ${c} ${c})`;

/** WAT expression for Σ coef[i] · local(names[i]) (zero coefficients skipped, ±1 without a multiply). */
function combination(coef: readonly number[], names: readonly string[]): string {
  let expr = '';
  coef.forEach((c, i) => {
    if (c === 0) return;
    const x = `(local.get $${names[i]!})`;
    const mag = Math.abs(c);
    const term = mag === 1 ? x : `(f32x4.mul ${x} ${splat(mag)})`;
    if (expr === '') expr = c > 0 ? term : `(f32x4.neg ${term})`;
    else expr = `(f32x4.${c > 0 ? 'add' : 'sub'} ${expr} ${term})`;
  });
  return expr === '' ? splat(0) : expr;
}

/** Statements and temporaries of one linear map, built by {@link linearMap}. */
interface Emitted {
  stmts: string[];
  temps: string[];
  /** WAT expression of output i. */
  out: string[];
}

const sameAbs = (a: readonly number[], b: readonly number[]): boolean => a.every((x, k) => Math.abs(x) === Math.abs(b[k]!));

/**
 * out_i = Σ_k M[i][k] · in_k as WAT. Columns equal up to sign are first replaced by their sum and
 * difference; then rows equal up to sign are computed as (even ± odd) from the shared parts.
 * `tag` names the temporaries (unique per call site).
 */
function linearMap(M: Matrix, inputs: readonly string[], tag: string): Emitted {
  const stmts: string[] = [];
  const temps: string[] = [];
  // Columns: a pair (a, b) with |M[i][a]| = |M[i][b]| for every row becomes (a + b, a - b).
  let cols = inputs.map((name, k) => ({ name, coef: M.map((row) => row[k]!) }));
  const paired: typeof cols = [];
  const used = new Set<number>();
  cols.forEach((a, i) => {
    if (used.has(i)) return;
    const j = cols.findIndex((b, jj) => jj > i && !used.has(jj) && sameAbs(a.coef, b.coef) && a.coef.some((x) => x !== 0));
    if (j < 0) {
      paired.push(a);
      return;
    }
    used.add(j);
    const b = cols[j]!;
    const sum = `${tag}c${i}p`;
    const dif = `${tag}c${i}m`;
    temps.push(sum, dif);
    stmts.push(`(local.set $${sum} (f32x4.add (local.get $${a.name}) (local.get $${b.name})))`);
    stmts.push(`(local.set $${dif} (f32x4.sub (local.get $${a.name}) (local.get $${b.name})))`);
    paired.push({ name: sum, coef: a.coef.map((x, r) => (x === b.coef[r] ? x : 0)) });
    paired.push({ name: dif, coef: a.coef.map((x, r) => (x === b.coef[r] ? 0 : x)) });
  });
  cols = paired;
  const names = cols.map((c) => c.name);
  const rows = M.map((_, r) => cols.map((c) => c.coef[r]!));
  // Rows: a pair (i, j) equal up to sign shares E (equal terms) and O (opposite terms): E ± O.
  const out: string[] = new Array(rows.length).fill('');
  const done = new Set<number>();
  rows.forEach((ri, i) => {
    if (done.has(i)) return;
    const j = rows.findIndex((rj, jj) => jj > i && !done.has(jj) && sameAbs(ri, rj) && ri.some((x, k) => x !== 0 && x === -rj[k]!) && ri.some((x, k) => x !== 0 && x === rj[k]!));
    if (j < 0) {
      out[i] = combination(ri, names);
      return;
    }
    done.add(j);
    const rj = rows[j]!;
    const e = `${tag}r${i}e`;
    const o = `${tag}r${i}o`;
    temps.push(e, o);
    stmts.push(`(local.set $${e} ${combination(ri.map((x, k) => (x === rj[k] ? x : 0)), names)})`);
    stmts.push(`(local.set $${o} ${combination(ri.map((x, k) => (x === rj[k] ? 0 : x)), names)})`);
    out[i] = `(f32x4.add (local.get $${e}) (local.get $${o}))`;
    out[j] = `(f32x4.sub (local.get $${e}) (local.get $${o}))`;
  });
  return { stmts, temps, out };
}

function locals(prefix: string, rows: number, cols: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.push(`${prefix}${i}_${j}`);
  return out;
}

/** Where a tile loop puts a tile's pixels: tile origin (m ty, m tx) of image n in the NHWC tensor at `$<base>`. */
interface TilePlace {
  m: number;
  base: string;
  height: string;
  ptr: string;
  body: string[];
}

/**
 * The channel loop of one tile, shared by {@link tileLoops} and {@link tileRange}: channels c in
 * steps of 4 up to $C; per c, `$<ptr>` is the address of pixel (m ty, m tx), channel c, in the
 * NHWC tensor at `$<base>` of height `$<height>` (row stride $rowStride, pixel stride $cBytes),
 * and $o the offset of (row, c) in a [tiles, C] table entry, `row` a WAT expression; then `body`.
 */
function channelLoop(o: TilePlace, row: string): string {
  return `(local.set $c (i32.const 0))
    (block $cDone (loop $cLoop
      (br_if $cDone (i32.ge_u (local.get $c) (local.get $C)))
      (local.set $${o.ptr} (i32.add (local.get $${o.base})
        (i32.add (i32.mul (i32.add (i32.mul (local.get $n) (local.get $${o.height})) (i32.mul (local.get $ty) (i32.const ${o.m}))) (local.get $rowStride))
          (i32.add (i32.mul (i32.mul (local.get $tx) (i32.const ${o.m})) (local.get $cBytes)) (i32.shl (local.get $c) (i32.const 2))))))
      (local.set $o (i32.add (i32.mul ${row} (local.get $cBytes)) (i32.shl (local.get $c) (i32.const 2))))
      ${o.body.join('\n      ')}
      (local.set $c (i32.add (local.get $c) (i32.const 4)))
      (br $cLoop)))`;
}

/**
 * The loop nest both transforms share: images n in [n0, n1), tile rows ty, tile columns tx
 * (counting `$tile` from the first tile of image n0),
 * channels c in steps of 4. Per (tile, c) it sets `$<ptr>` to the address of pixel (m ty, m tx),
 * channel c, in the NHWC tensor at `$<base>` of height `$<height>` (row stride `$rowStride`,
 * pixel stride `$cBytes`), and `$o` to the offset of (tile, c) in every [tiles, C] table entry,
 * then runs `body`. `perRow`/`perCol` run once per tile row/column.
 */
function tileLoops(o: TilePlace & { perRow?: string; perCol?: string }): string {
  return `(local.set $tile (i32.mul (local.get $n0) (i32.mul (local.get $tilesH) (local.get $tilesW))))
    (local.set $n (local.get $n0))
    (block $nDone (loop $nLoop
      (br_if $nDone (i32.ge_u (local.get $n) (local.get $n1)))
      (local.set $ty (i32.const 0))
      (block $yDone (loop $yLoop
        (br_if $yDone (i32.ge_u (local.get $ty) (local.get $tilesH)))
        ${o.perRow ?? ''}
        (local.set $tx (i32.const 0))
        (block $xDone (loop $xLoop
          (br_if $xDone (i32.ge_u (local.get $tx) (local.get $tilesW)))
          ${o.perCol ?? ''}
          ${channelLoop(o, '(local.get $tile)')}
          (local.set $tile (i32.add (local.get $tile) (i32.const 1)))
          (local.set $tx (i32.add (local.get $tx) (i32.const 1)))
          (br $xLoop)))
        (local.set $ty (i32.add (local.get $ty) (i32.const 1)))
        (br $yLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop)))`;
}

/**
 * Tiles $tb0 <= t < $tb1 of the batch (row-major over images, tile rows, tile columns), channels
 * c in steps of 4 up to $C: per (tile, c) `$<ptr>` is the address of pixel (m ty, m tx), channel
 * c, in the NHWC tensor at `$<base>` of height `$<height>` (row stride $rowStride, pixel stride
 * $cBytes), and $o the offset of (t − $tb0, c) in a [tiles, C] block; `perTile` runs once per tile.
 */
function tileRange(o: TilePlace & { perTile?: string }): string {
  return `(local.set $t (local.get $tb0))
    (block $tDone (loop $tLoop
      (br_if $tDone (i32.ge_u (local.get $t) (local.get $tb1)))
      (local.set $n (i32.div_u (local.get $t) (local.get $perImage)))
      (local.set $r (i32.rem_u (local.get $t) (local.get $perImage)))
      (local.set $ty (i32.div_u (local.get $r) (local.get $tilesW)))
      (local.set $tx (i32.rem_u (local.get $r) (local.get $tilesW)))
      ${o.perTile ?? ''}
      ${channelLoop(o, '(i32.sub (local.get $t) (local.get $tb0))')}
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $tLoop)))`;
}

/** The k-th i32 of the parameter table at $tab. */
const tabAt = (k: number): string => `(i32.load offset=${4 * k} (local.get $tab))`;
const i32s = (prefix: string, n: number): string => Array.from({ length: n }, (_, k) => `(local $${prefix}${k} i32)`).join(' ');
const v128s = (names: readonly string[]): string => names.map((n) => `(local $${n} v128)`).join(' ');
const loadTable = (table: string, prefix: string, n: number): string =>
  Array.from({ length: n }, (_, k) => `(local.set $${prefix}${k} (i32.load (i32.add (local.get $${table}) (i32.const ${4 * k}))))`).join('\n    ');

/**
 * The statements of X = M D Mᵀ for an n x n tile D (four channels per local): column by column,
 * `load(i, j)` sets local `${src}i_j` (loads next to their use: fewer values live at once, fewer
 * spills) and the column pass sets `${mid}i_j` = (M D)[i][j]; then row by row
 * `store(i, j, expr)` consumes X[i][j] = Σ_c (M D)[i][c] M[j][c].
 */
function separable(
  M: Matrix,
  n: number,
  load: (i: number, j: number) => string,
  src: string,
  mid: string,
  store: (i: number, j: number, expr: string) => string,
): { body: string[]; temps: string[] } {
  const idx = Array.from({ length: n }, (_, k) => k);
  const body: string[] = [];
  const temps: string[] = [];
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) body.push(load(i, j));
    const col = linearMap(M, idx.map((r) => `${src}${r}_${j}`), `a${j}`);
    temps.push(...col.temps);
    body.push(...col.stmts);
    col.out.forEach((e, i) => body.push(`(local.set $${mid}${i}_${j} ${e})`));
  }
  for (let i = 0; i < M.length; i++) {
    const row = linearMap(M, idx.map((c) => `${mid}${i}_${c}`), `b${i}`);
    temps.push(...row.temps);
    body.push(...row.stmts);
    row.out.forEach((e, j) => body.push(store(i, j, e)));
  }
  return { body, temps };
}

/** The input and output functions of one variant. */
function variantFuncs({ m, alpha, BT, G, AT }: WinogradMatrices): string {
  const a2 = alpha * alpha;

  // ---- input transform: d (alpha x alpha) -> t = Bᵀ d -> V = t B (V[i][j] = Σ_c t[i][c] Bᵀ[j][c])
  const d = locals('d', alpha, alpha);
  const t = locals('t', alpha, alpha);
  const { body: inBody, temps: inTemps } = separable(
    BT,
    alpha,
    (i, j) => `(local.set $d${i}_${j} (v128.load (i32.add (local.get $p) (i32.add (i32.mul (local.get $rowStride) (i32.const ${i})) (i32.mul (local.get $colStride) (i32.const ${j}))))))`,
    'd',
    't',
    (i, j, e) => `(v128.store (i32.add (local.get $v${i * alpha + j}) (local.get $o)) ${e})`,
  );
  const input = `
  (func (export "input${m}") (param $x i32) (param $Hp i32) (param $Wp i32) (param $C i32) (param $tilesH i32) (param $tilesW i32) (param $vTable i32) (param $n0 i32) (param $n1 i32)
    (local $n i32) (local $ty i32) (local $tx i32) (local $c i32) (local $tile i32) (local $p i32) (local $o i32) (local $rowStride i32) (local $colStride i32) (local $cBytes i32)
    ${i32s('v', a2)}
    ${v128s(d)}
    ${v128s(t)}
    ${v128s(inTemps)}
    ${loadTable('vTable', 'v', a2)}
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $colStride (local.get $cBytes))
    (local.set $rowStride (i32.mul (local.get $Wp) (local.get $cBytes)))
    ${tileLoops({ m, base: 'x', height: 'Hp', ptr: 'p', body: inBody })}
  )`;

  // ---- output transform: M (alpha x alpha) -> s = Aᵀ M (m x alpha) -> Y = s A (m x m), cropped
  const mm = locals('m', alpha, alpha);
  const s = locals('s', m, alpha);
  const { body: outBody, temps: outTemps } = separable(
    AT,
    alpha,
    (i, j) => `(local.set $m${i}_${j} (v128.load (i32.add (local.get $m${i * alpha + j}) (local.get $o))))`,
    'm',
    's',
    (i, j, value) => {
      const at = `(i32.add (local.get $q) (i32.add (i32.mul (local.get $rowStride) (i32.const ${i})) (i32.mul (local.get $cBytes) (i32.const ${j}))))`;
      return `(if (i32.and (i32.gt_s (local.get $rows) (i32.const ${i})) (i32.gt_s (local.get $cols) (i32.const ${j}))) (then (v128.store ${at} ${value})))`;
    },
  );
  const output = `
  (func (export "output${m}") (param $mTable i32) (param $y i32) (param $Ho i32) (param $Wo i32) (param $C i32) (param $tilesH i32) (param $tilesW i32) (param $n0 i32) (param $n1 i32)
    (local $n i32) (local $ty i32) (local $tx i32) (local $c i32) (local $tile i32) (local $q i32) (local $o i32) (local $rowStride i32) (local $cBytes i32) (local $rows i32) (local $cols i32)
    ${i32s('m', a2)}
    ${v128s(mm)}
    ${v128s(s)}
    ${v128s(outTemps)}
    ${loadTable('mTable', 'm', a2)}
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $rowStride (i32.mul (local.get $Wo) (local.get $cBytes)))
    ${tileLoops({
      m,
      base: 'y',
      height: 'Ho',
      ptr: 'q',
      perRow: `(local.set $rows (i32.sub (local.get $Ho) (i32.mul (local.get $ty) (i32.const ${m}))))`,
      perCol: `(local.set $cols (i32.sub (local.get $Wo) (i32.mul (local.get $tx) (i32.const ${m}))))`,
      body: outBody,
    })}
  )`;
  // ---- fused: per block of T tiles, input transform -> alpha² GEMMs -> output transform, with
  // the block's V and M in this thread's scratch (cache-resident) instead of whole-batch tensors.
  const fused = `
  (func (export "fused${m}") (param $tab i32) (param $u1 i32) (param $u2 i32) (param $u3 i32) (param $u4 i32) (param $u5 i32) (param $u6 i32) (param $blk0 i32) (param $blk1 i32) (param $part i32)
    (local $x i32) (local $Hp i32) (local $Wp i32) (local $Cin i32) (local $Cout i32) (local $tilesW i32) (local $u i32) (local $y i32) (local $Ho i32) (local $Wo i32)
    (local $T i32) (local $total i32) (local $perImage i32) (local $sv i32) (local $sm i32) (local $blk i32) (local $tb0 i32) (local $tb1 i32) (local $t i32) (local $r i32)
    (local $slice i32) (local $K i32) (local $N i32) (local $C i32)
    (local $n i32) (local $ty i32) (local $tx i32) (local $c i32) (local $p i32) (local $q i32) (local $o i32) (local $rowStride i32) (local $colStride i32) (local $cBytes i32) (local $rows i32) (local $cols i32)
    ${i32s('v', a2)}
    ${i32s('m', a2)}
    ${v128s(d)}
    ${v128s(t)}
    ${v128s(mm)}
    ${v128s(s)}
    ${v128s([...new Set([...inTemps, ...outTemps])])}
    ${GEMM_LOCALS}
    (local.set $x ${tabAt(0)})
    (local.set $Hp ${tabAt(1)})
    (local.set $Wp ${tabAt(2)})
    (local.set $Cin ${tabAt(3)})
    (local.set $Cout ${tabAt(4)})
    (local.set $tilesW ${tabAt(6)})
    (local.set $perImage (i32.mul ${tabAt(5)} (local.get $tilesW)))
    (local.set $u ${tabAt(7)})
    (local.set $y ${tabAt(8)})
    (local.set $Ho ${tabAt(9)})
    (local.set $Wo ${tabAt(10)})
    (local.set $T ${tabAt(13)})
    (local.set $total ${tabAt(14)})
    (local.set $sv (i32.add ${tabAt(11)} (i32.mul (local.get $part) ${tabAt(12)})))
    (local.set $sm (i32.add (local.get $sv) (i32.mul (i32.const ${a2}) (i32.mul (local.get $T) (i32.shl (local.get $Cin) (i32.const 2))))))
    ${Array.from({ length: a2 }, (_, k) => `(local.set $v${k} (i32.add (local.get $sv) (i32.mul (i32.const ${k}) (i32.mul (local.get $T) (i32.shl (local.get $Cin) (i32.const 2))))))`).join('\n    ')}
    ${Array.from({ length: a2 }, (_, k) => `(local.set $m${k} (i32.add (local.get $sm) (i32.mul (i32.const ${k}) (i32.mul (local.get $T) (i32.shl (local.get $Cout) (i32.const 2))))))`).join('\n    ')}
    (local.set $K (local.get $Cin))
    (local.set $N (local.get $Cout))
    ${GEMM_STRIDES}
    (local.set $blk (local.get $blk0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $blk) (local.get $blk1)))
      (local.set $tb0 (i32.mul (local.get $blk) (local.get $T)))
      (local.set $tb1 (i32.add (local.get $tb0) (local.get $T)))
      (if (i32.gt_u (local.get $tb1) (local.get $total)) (then (local.set $tb1 (local.get $total))))
      ;; input transform of the block's tiles into V (slice k at $v<k>, [T, Cin])
      (local.set $C (local.get $Cin))
      (local.set $cBytes (i32.shl (local.get $Cin) (i32.const 2)))
      (local.set $colStride (local.get $cBytes))
      (local.set $rowStride (i32.mul (local.get $Wp) (local.get $cBytes)))
      ${tileRange({ m, base: 'x', height: 'Hp', ptr: 'p', body: inBody })}
      ;; M_k = V_k · U_k, rows rounded up to the GEMM's blocks of 4 (the extra rows are discarded)
      (local.set $r0 (i32.const 0))
      (local.set $r1 (i32.and (i32.add (i32.sub (local.get $tb1) (local.get $tb0)) (i32.const 3)) (i32.const -4)))
      (local.set $slice (i32.const 0))
      (block $sDone (loop $sLoop
        (br_if $sDone (i32.ge_u (local.get $slice) (i32.const ${a2})))
        (local.set $as (i32.add (local.get $sv) (i32.mul (local.get $slice) (i32.mul (local.get $T) (local.get $kb)))))
        (local.set $bs (i32.add (local.get $u) (i32.mul (local.get $slice) (i32.mul (local.get $K) (local.get $nb)))))
        (local.set $cs (i32.add (local.get $sm) (i32.mul (local.get $slice) (i32.mul (local.get $T) (local.get $nb)))))
        ${gemmSlice()}
        (local.set $slice (i32.add (local.get $slice) (i32.const 1)))
        (br $sLoop)))
      ;; output transform of the block's tiles from M into y
      (local.set $C (local.get $Cout))
      (local.set $cBytes (i32.shl (local.get $Cout) (i32.const 2)))
      (local.set $rowStride (i32.mul (local.get $Wo) (local.get $cBytes)))
      ${tileRange({
        m,
        base: 'y',
        height: 'Ho',
        ptr: 'q',
        perTile: `(local.set $rows (i32.sub (local.get $Ho) (i32.mul (local.get $ty) (i32.const ${m}))))
      (local.set $cols (i32.sub (local.get $Wo) (i32.mul (local.get $tx) (i32.const ${m}))))`,
        body: outBody,
      })}
      (local.set $blk (i32.add (local.get $blk) (i32.const 1)))
      (br $bLoop)))
  )`;
  // ---- filter transform: g (3x3) -> G g -> U = (G g) Gᵀ (alpha x alpha), four output channels
  // per vector, written into the GEMM's 8-column panels of each [Cin, Cout] slice.
  const gl = locals('g', 3, 3);
  const fl = locals('f', alpha, 3);
  const { body: fBody, temps: fTemps } = separable(
    G,
    3,
    (i, j) => `(local.set $g${i}_${j} (v128.load (i32.add (local.get $gp) (i32.mul (local.get $tap) (i32.const ${i * 3 + j})))))`,
    'g',
    'f',
    (i, j, e) => `(v128.store (i32.add (local.get $up) (i32.mul (local.get $tap) (i32.const ${i * alpha + j}))) ${e})`,
  );
  const filter = `
  (func (export "filter${m}") (param $g i32) (param $u i32) (param $Cin i32) (param $Cout i32) (param $x1 i32) (param $x2 i32) (param $x3 i32) (param $c0 i32) (param $c1 i32) (param $part i32)
    (local $tap i32) (local $ci i32) (local $co i32) (local $gp i32) (local $up i32) (local $j0 i32) (local $wd i32)
    ${v128s(gl)}
    ${v128s(fl)}
    ${v128s(fTemps)}
    (local.set $tap (i32.shl (i32.mul (local.get $Cin) (local.get $Cout)) (i32.const 2)))
    (local.set $ci (local.get $c0))
    (block $ciDone (loop $ciLoop
      (br_if $ciDone (i32.ge_u (local.get $ci) (local.get $c1)))
      (local.set $co (i32.const 0))
      (block $coDone (loop $coLoop
        (br_if $coDone (i32.ge_u (local.get $co) (local.get $Cout)))
        (local.set $gp (i32.add (local.get $g) (i32.shl (i32.add (i32.mul (local.get $ci) (local.get $Cout)) (local.get $co)) (i32.const 2))))
        (local.set $j0 (i32.and (local.get $co) (i32.const -8)))
        (local.set $wd (i32.sub (local.get $Cout) (local.get $j0)))
        (if (i32.gt_u (local.get $wd) (i32.const 8)) (then (local.set $wd (i32.const 8))))
        (local.set $up (i32.add (local.get $u) (i32.shl (i32.add (i32.add (i32.mul (local.get $j0) (local.get $Cin)) (i32.mul (local.get $ci) (local.get $wd))) (i32.sub (local.get $co) (local.get $j0))) (i32.const 2))))
        ${fBody.join('\n        ')}
        (local.set $co (i32.add (local.get $co) (i32.const 4)))
        (br $coLoop)))
      (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
      (br $ciLoop)))
  )`;
  return input + output + fused + filter;
}

/** Zeroes the bytes [from, end) (a multiple of 16 apart; both WAT expressions), with locals $p and $end. */
function zeroFill(from: string, end: string): string {
  return `(local.set $p ${from})
    (local.set $end ${end})
    (block $zDone (loop $zLoop
      (br_if $zDone (i32.ge_u (local.get $p) (local.get $end)))
      (v128.store (local.get $p) (v128.const i32x4 0 0 0 0))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $zLoop)))`;
}

/**
 * Rows r0 <= r < r1 of a [rows, C] tensor, four channels at a time: `body` runs with `$off` the
 * byte offset of (r, c) and `$c` that of channel c in a [C] vector. Locals $cBytes (set), $off,
 * $end, $rowEnd, $c.
 */
function rowsByChannels(body: string[]): string {
  return `(local.set $off (i32.mul (local.get $r0) (local.get $cBytes)))
    (local.set $end (i32.mul (local.get $r1) (local.get $cBytes)))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $off) (local.get $end)))
      (local.set $rowEnd (i32.add (local.get $off) (local.get $cBytes)))
      (local.set $c (i32.const 0))
      (block $cDone (loop $cLoop
        (br_if $cDone (i32.ge_u (local.get $off) (local.get $rowEnd)))
        ${body.join('\n        ')}
        (local.set $off (i32.add (local.get $off) (i32.const 16)))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $cLoop)))
      (br $rLoop)))`;
}

/**
 * The weight gradient of a convolution (Conv2DBackpropFilter), as a register-blocked GEMM:
 *
 *   dW[tap, ci, co] = Σ_{n, oh, ow} x[n, oh·sh + kh − pt, ow·sw + kw − pl, ci] · dy[n, oh, ow, co]
 *
 *   dw(tab, x, dy, c, Ci, Co, taps, n0, n1, part)
 *     Accumulates images [n0, n1) into the partial sum at c + part · cPart ([taps, Ci, Co],
 *     i.e. HWIO), zeroed first. Ci % 4 == 0, Co % 8 == 0. tab (i32, bytes): xImg, dyImg,
 *     xRowStep (sh rows of x), xColStep (sw pixels of x), dyRow, cPart, chunk (images per
 *     cache chunk), -, then per tap (32 bytes): oh0, oh1, ow0, ow1 (the output rows/columns whose
 *     input pixel is inside the image), xOff (byte offset of that pixel for (0, oh0, ow0)),
 *     dyOff (of dy (0, oh0, ow0)), cOff (of the tap's [Ci, Co] block), -.
 *
 * Per (chunk of images, tap, 4 input channels, 8 output channels) the 4x8 block of dW lives in
 * eight registers while the pixels stream: per pixel 2 loads of dy, 4 splat loads of x, 8
 * multiplies, 8 adds. XNNPACK could only take this as a convolution whose "filter" is dy (packed
 * anew on every call, with an indirection buffer over the whole image).
 */
function dwFunc(): string {
  const acc: string[] = [];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 2; j++) acc.push(`acc${i}_${j}`);
  const tapAt = (k: number): string => `(i32.load offset=${4 * k} (local.get $tp))`;
  const cRow = (i: number, j: number): string => `(i32.add (local.get $cp) (i32.add (i32.mul (local.get $coBytes) (i32.const ${i})) (i32.const ${16 * j})))`;
  const fma = (i: number, j: number): string => `(local.set $acc${i}_${j} (f32x4.add (local.get $acc${i}_${j}) (f32x4.mul (local.get $a) (local.get $b${j}))))`;
  const inner: string[] = [
    '(local.set $b0 (v128.load (local.get $dp)))',
    '(local.set $b1 (v128.load offset=16 (local.get $dp)))',
  ];
  for (let i = 0; i < 4; i++) {
    inner.push(`(local.set $a (v128.load32_splat offset=${4 * i} (local.get $xp)))`, fma(i, 0), fma(i, 1));
  }
  return `
  (func (export "dw") (param $tab i32) (param $x i32) (param $dy i32) (param $c i32) (param $Ci i32) (param $Co i32) (param $taps i32) (param $n0 i32) (param $n1 i32) (param $part i32)
    (local $xImg i32) (local $dyImg i32) (local $xRowStep i32) (local $xColStep i32) (local $dyRow i32) (local $cPart i32) (local $chunk i32)
    (local $coBytes i32) (local $p i32) (local $end i32) (local $nc i32) (local $ne i32) (local $t i32) (local $tp i32)
    (local $rows i32) (local $cols i32) (local $xOff i32) (local $dyOff i32) (local $cOff i32)
    (local $cb i32) (local $ob i32) (local $cp i32) (local $n i32) (local $r i32) (local $k i32)
    (local $xr i32) (local $dr i32) (local $xp i32) (local $dp i32)
    (local $a v128) (local $b0 v128) (local $b1 v128) ${acc.map((n) => `(local $${n} v128)`).join(' ')}
    (local.set $xImg ${tabAt(0)})
    (local.set $dyImg ${tabAt(1)})
    (local.set $xRowStep ${tabAt(2)})
    (local.set $xColStep ${tabAt(3)})
    (local.set $dyRow ${tabAt(4)})
    (local.set $cPart ${tabAt(5)})
    (local.set $chunk ${tabAt(6)})
    (local.set $coBytes (i32.shl (local.get $Co) (i32.const 2)))
    (local.set $c (i32.add (local.get $c) (i32.mul (local.get $part) (local.get $cPart))))
    ;; zero this part's sum
    ${zeroFill('(local.get $c)', '(i32.add (local.get $c) (local.get $cPart))')}
    (local.set $nc (local.get $n0))
    (block $chunksDone (loop $chunkLoop
      (br_if $chunksDone (i32.ge_u (local.get $nc) (local.get $n1)))
      (local.set $ne (select (local.get $n1) (i32.add (local.get $nc) (local.get $chunk)) (i32.lt_u (local.get $n1) (i32.add (local.get $nc) (local.get $chunk)))))
      (local.set $t (i32.const 0))
      (block $tapsDone (loop $tapLoop
        (br_if $tapsDone (i32.ge_u (local.get $t) (local.get $taps)))
        (local.set $tp (i32.add (local.get $tab) (i32.add (i32.const 32) (i32.shl (local.get $t) (i32.const 5)))))
        (local.set $rows (i32.sub ${tapAt(1)} ${tapAt(0)}))
        (local.set $cols (i32.sub ${tapAt(3)} ${tapAt(2)}))
        (local.set $xOff ${tapAt(4)})
        (local.set $dyOff ${tapAt(5)})
        (local.set $cOff ${tapAt(6)})
        (if (i32.and (i32.gt_s (local.get $rows) (i32.const 0)) (i32.gt_s (local.get $cols) (i32.const 0))) (then
          (local.set $cb (i32.const 0))
          (block $cbDone (loop $cbLoop
            (br_if $cbDone (i32.ge_u (local.get $cb) (local.get $Ci)))
            (local.set $ob (i32.const 0))
            (block $obDone (loop $obLoop
              (br_if $obDone (i32.ge_u (local.get $ob) (local.get $Co)))
              (local.set $cp (i32.add (i32.add (local.get $c) (local.get $cOff)) (i32.shl (i32.add (i32.mul (local.get $cb) (local.get $Co)) (local.get $ob)) (i32.const 2))))
              ${acc.map((n, q) => `(local.set $${n} (v128.load ${cRow(q >> 1, q & 1)}))`).join('\n              ')}
              (local.set $n (local.get $nc))
              (block $nDone (loop $nLoop
                (br_if $nDone (i32.ge_u (local.get $n) (local.get $ne)))
                (local.set $xr (i32.add (i32.add (local.get $x) (i32.mul (local.get $n) (local.get $xImg))) (i32.add (local.get $xOff) (i32.shl (local.get $cb) (i32.const 2)))))
                (local.set $dr (i32.add (i32.add (local.get $dy) (i32.mul (local.get $n) (local.get $dyImg))) (i32.add (local.get $dyOff) (i32.shl (local.get $ob) (i32.const 2)))))
                (local.set $r (local.get $rows))
                (loop $rLoop
                  (local.set $xp (local.get $xr))
                  (local.set $dp (local.get $dr))
                  (local.set $k (local.get $cols))
                  (loop $pxLoop
                    ${inner.join('\n                    ')}
                    (local.set $xp (i32.add (local.get $xp) (local.get $xColStep)))
                    (local.set $dp (i32.add (local.get $dp) (local.get $coBytes)))
                    (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                    (br_if $pxLoop (local.get $k)))
                  (local.set $xr (i32.add (local.get $xr) (local.get $xRowStep)))
                  (local.set $dr (i32.add (local.get $dr) (local.get $dyRow)))
                  (local.set $r (i32.sub (local.get $r) (i32.const 1)))
                  (br_if $rLoop (local.get $r)))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))
                (br $nLoop)))
              ${acc.map((n, q) => `(v128.store ${cRow(q >> 1, q & 1)} (local.get $${n}))`).join('\n              ')}
              (local.set $ob (i32.add (local.get $ob) (i32.const 8)))
              (br $obLoop)))
            (local.set $cb (i32.add (local.get $cb) (i32.const 4)))
            (br $cbLoop)))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tapLoop)))
      (local.set $nc (local.get $ne))
      (br $chunkLoop)))
  )`;
}

/**
 * The gradients of PReLU y = x > 0 ? x : alpha · x, in one pass over x and dy:
 *
 *   preluGrad(x, dy, dx, alpha, acc, C, -, r0, r1, part)   (every function the thread pool
 *     runs takes 7 arguments before the range)
 *     rows r0 <= r < r1 of [rows, C] (C % 4 == 0, alpha: C float32s): dx = x > 0 ? dy : alpha · dy,
 *     and acc[part] (C float64s, zeroed first) = Σ_rows (x > 0 ? 0 : dy · x): alpha's gradient
 *     per channel.
 *
 * (tfjs-core's gradient runs Greater, two Selects, two Multiplys, ZerosLike and a Sum over the
 * activation: 7 passes, the stock wasm Select at ~5 ns per element.)
 */
function preluGradFunc(): string {
  return `
  (func (export "preluGrad") (param $x i32) (param $dy i32) (param $dx i32) (param $alpha i32) (param $acc i32) (param $C i32) (param $unused i32) (param $r0 i32) (param $r1 i32) (param $part i32)
    (local $cBytes i32) (local $p i32) (local $end i32) (local $off i32) (local $rowEnd i32) (local $c i32) (local $ap i32)
    (local $xv v128) (local $dv v128) (local $m v128) (local $prod v128)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $part) (i32.shl (local.get $C) (i32.const 3)))))
    ${zeroFill('(local.get $acc)', '(i32.add (local.get $acc) (i32.shl (local.get $C) (i32.const 3)))')}
    ${rowsByChannels([
      '(local.set $xv (v128.load (i32.add (local.get $x) (local.get $off))))',
      '(local.set $dv (v128.load (i32.add (local.get $dy) (local.get $off))))',
      '(local.set $m (f32x4.gt (local.get $xv) (v128.const f32x4 0 0 0 0)))',
      '(v128.store (i32.add (local.get $dx) (local.get $off)) (v128.bitselect (local.get $dv) (f32x4.mul (local.get $dv) (v128.load (i32.add (local.get $alpha) (local.get $c)))) (local.get $m)))',
      '(local.set $prod (v128.andnot (f32x4.mul (local.get $dv) (local.get $xv)) (local.get $m)))',
      '(local.set $ap (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 1))))',
      '(v128.store (local.get $ap) (f64x2.add (v128.load (local.get $ap)) (f64x2.promote_low_f32x4 (local.get $prod))))',
      '(v128.store offset=16 (local.get $ap) (f64x2.add (v128.load offset=16 (local.get $ap)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $prod) (local.get $prod)))))',
    ])}
  )`;
}

/**
 * Batch norm with per-channel statistics, in one pass:
 *
 *   batchNorm(x, y, mean, factor, shift, C, -, r0, r1, part)
 *     rows r0 <= r < r1 of [rows, C] (C % 4 == 0): y = (x − mean) · factor + shift, per channel
 *     (factor = scale / √(variance + ε), computed by the caller), rounded as the three passes
 *     it replaces were (subtract, multiply, add).
 */
function batchNormFunc(): string {
  return `
  (func (export "batchNorm") (param $x i32) (param $y i32) (param $mean i32) (param $factor i32) (param $shift i32) (param $C i32) (param $unused i32) (param $r0 i32) (param $r1 i32) (param $part i32)
    (local $cBytes i32) (local $off i32) (local $end i32) (local $rowEnd i32) (local $c i32)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    ${rowsByChannels([
      `(v128.store (i32.add (local.get $y) (local.get $off))
          (f32x4.add
            (f32x4.mul
              (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $off))) (v128.load (i32.add (local.get $mean) (local.get $c))))
              (v128.load (i32.add (local.get $factor) (local.get $c))))
            (v128.load (i32.add (local.get $shift) (local.get $c)))))`,
    ])}
  )`;
}

/** The row-block loop of {@link gemmSlice} over one panel of 4·nv columns at $j. */
/** The row-block loop over one panel of 4·nv columns at $j. */
function gemmPanel(nv: number): string {
  const acc: string[] = [];
  for (let i = 0; i < 4; i++) for (let j = 0; j < nv; j++) acc.push(`acc${i}_${j}`);
  const row = ['(local.get $ap)', '(i32.add (local.get $ap) (local.get $kb))', '(i32.add (local.get $ap) (local.get $kb2))', '(i32.add (local.get $ap) (local.get $kb3))'];
  const inner: string[] = [];
  for (let j = 0; j < nv; j++) inner.push(`(local.set $b${j} (v128.load offset=${16 * j} (local.get $bp)))`);
  for (let i = 0; i < 4; i++) {
    inner.push(`(local.set $s (v128.load32_splat ${row[i]}))`);
    for (let j = 0; j < nv; j++) inner.push(`(local.set $acc${i}_${j} (f32x4.add (local.get $acc${i}_${j}) (f32x4.mul (local.get $s) (local.get $b${j}))))`);
  }
  const cRow = ['(local.get $cp)', '(i32.add (local.get $cp) (local.get $nb))', '(i32.add (local.get $cp) (local.get $nb2))', '(i32.add (local.get $cp) (local.get $nb3))'];
  return `(local.set $panel (i32.add (local.get $bs) (i32.mul (local.get $j) (local.get $kb))))
      (local.set $i (local.get $r0))
      (block $iDone${nv} (loop $iLoop${nv}
        (br_if $iDone${nv} (i32.ge_u (local.get $i) (local.get $r1)))
        ${acc.map((n) => `(local.set $${n} (v128.const i32x4 0 0 0 0))`).join('\n          ')}
        (local.set $ap (i32.add (local.get $as) (i32.mul (local.get $i) (local.get $kb))))
        (local.set $bp (local.get $panel))
        (local.set $k (local.get $K))
        (loop $kLoop${nv}
          ${inner.join('\n            ')}
          (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
          (local.set $bp (i32.add (local.get $bp) (i32.const ${16 * nv})))
          (local.set $k (i32.sub (local.get $k) (i32.const 1)))
          (br_if $kLoop${nv} (local.get $k)))
        (local.set $cp (i32.add (local.get $cs) (i32.add (i32.mul (local.get $i) (local.get $nb)) (i32.shl (local.get $j) (i32.const 2)))))
        ${acc.map((n, q) => `(v128.store offset=${16 * (q % nv)} ${cRow[Math.floor(q / nv)]} (local.get $${n}))`).join('\n          ')}
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $iLoop${nv})))`;
}

/**
 * C_s = A_s · B_s for rows [$r0, $r1) of one slice: A at $as (row stride $kb = K·4), the packed
 * B at $bs, C at $cs (row stride $nb = N·4); panels of 8 columns, then a last one of 4.
 */
function gemmSlice(): string {
  return `(local.set $j (i32.const 0))
      (block $jDone (loop $jLoop
        (br_if $jDone (i32.gt_u (i32.add (local.get $j) (i32.const 8)) (local.get $N)))
        ${gemmPanel(2)}
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br $jLoop)))
      ;; a last panel of 4 columns
      (if (i32.lt_u (local.get $j) (local.get $N)) (then
        ${gemmPanel(1)}))`;
}

/** Locals of {@link gemmSlice} (and the strides it reads), as declarations. */
const GEMM_LOCALS = `(local $kb i32) (local $kb2 i32) (local $kb3 i32) (local $nb i32) (local $nb2 i32) (local $nb3 i32)
    (local $r0 i32) (local $r1 i32) (local $as i32) (local $bs i32) (local $cs i32)
    (local $j i32) (local $i i32) (local $ap i32) (local $bp i32) (local $cp i32) (local $k i32) (local $panel i32)
    (local $s v128) (local $b0 v128) (local $b1 v128) ${Array.from({ length: 8 }, (_, q) => `(local $acc${q >> 1}_${q & 1} v128)`).join(' ')}`;

/** Sets {@link gemmSlice}'s strides from $K and $N. */
const GEMM_STRIDES = `(local.set $kb (i32.shl (local.get $K) (i32.const 2)))
    (local.set $kb2 (i32.shl (local.get $kb) (i32.const 1)))
    (local.set $kb3 (i32.add (local.get $kb2) (local.get $kb)))
    (local.set $nb (i32.shl (local.get $N) (i32.const 2)))
    (local.set $nb2 (i32.shl (local.get $nb) (i32.const 1)))
    (local.set $nb3 (i32.add (local.get $nb2) (local.get $nb)))`;

/**
 * The Winograd GEMMs (and any batch of GEMMs with row-major A and a panel-packed B):
 *
 *   gemm(a, b, c, M, K, N, chunkRows, w0, w1, part)
 *     For each slice s: C_s[M, N] = A_s[M, K] · B_s[K, N], with A_s at a + s·M·K·4 (row-major),
 *     C_s at c + s·M·N·4 (row-major) and B_s at b + s·K·N·4 in panels of 8 columns (the last of
 *     4 when N % 8 == 4): the panel of columns [j, j + w) at B_s + j·K·4, as [K][w].
 *     M % 4 == 0, N % 4 == 0. Work item w in [w0, w1) is (slice w / chunks, rows
 *     [chunkRows·(w % chunks), +chunkRows) ∩ [0, M)), chunks = ceil(M / chunkRows),
 *     chunkRows % 4 == 0: threads split items, never a sum, so the result does not depend on the
 *     thread count.
 *
 * Per item, for each panel (K·32 bytes, in L1 while the chunk's rows pass) and each block of 4
 * rows, the 4x8 block of C lives in eight registers over k: per k 2 loads of B, 4 splat loads of
 * A, 8 multiplies, 8 adds (float32, summed in k order). In V8 on x64 this runs ~1.5x XNNPACK's
 * GEMM (a 1x1 convolution) of tfjs 4.22's wasm build, measured per thread.
 */
function gemmFunc(): string {
  return `
  (func (export "gemm") (param $a i32) (param $b i32) (param $c i32) (param $M i32) (param $K i32) (param $N i32) (param $chunkRows i32) (param $w0 i32) (param $w1 i32) (param $part i32)
    (local $chunks i32) (local $w i32) (local $slice i32)
    ${GEMM_LOCALS}
    ${GEMM_STRIDES}
    (local.set $chunks (i32.div_u (i32.sub (i32.add (local.get $M) (local.get $chunkRows)) (i32.const 1)) (local.get $chunkRows)))
    (local.set $w (local.get $w0))
    (block $wDone (loop $wLoop
      (br_if $wDone (i32.ge_u (local.get $w) (local.get $w1)))
      (local.set $slice (i32.div_u (local.get $w) (local.get $chunks)))
      (local.set $r0 (i32.mul (i32.rem_u (local.get $w) (local.get $chunks)) (local.get $chunkRows)))
      (local.set $r1 (i32.add (local.get $r0) (local.get $chunkRows)))
      (if (i32.gt_u (local.get $r1) (local.get $M)) (then (local.set $r1 (local.get $M))))
      (local.set $as (i32.add (local.get $a) (i32.mul (local.get $slice) (i32.mul (local.get $M) (local.get $kb)))))
      (local.set $bs (i32.add (local.get $b) (i32.mul (local.get $slice) (i32.mul (local.get $K) (local.get $nb)))))
      (local.set $cs (i32.add (local.get $c) (i32.mul (local.get $slice) (i32.mul (local.get $M) (local.get $nb)))))
      ${gemmSlice()}
      (local.set $w (i32.add (local.get $w) (i32.const 1)))
      (br $wLoop)))
  )`;
}

/** The module text; `shared` for tfjs's threaded build (its memory is a shared one). */
export function winogradWat(shared: boolean): string {
  const memory = shared ? '(memory 1 65536 shared)' : '(memory 1)';
  return `(module
  (import "env" "memory" ${memory})
${WINOGRAD_VARIANTS.map(variantFuncs).join('\n')}
${dwFunc()}
${preluGradFunc()}
${batchNormFunc()}
${gemmFunc()}
)
`;
}
