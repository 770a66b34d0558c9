/*
 * Generates the WebAssembly (text format) of dfd's Winograd F(4x4, 3x3) transforms for the tfjs
 * wasm backend (@dfd/backends, src/winograd.ts). `npm run build:wasm` assembles it with wabt into
 * packages/backends/src/winograd-module.ts; a test checks that the committed bytes are what this
 * generator and wabt produce.
 *
 * Winograd (Lavin & Gray 2016): a 4x4 output tile of a 3x3 correlation is
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
 * for the 6x6 input tile d and the 3x3 filter g. Per tile and channel the 36 products replace
 * 144 multiply-adds; summed over input channels, each of the 36 elementwise products becomes a
 * GEMM [tiles, Cin] x [Cin, Cout], which XNNPACK runs (1x1 convolutions). This module does the
 * two data transforms, four channels per SIMD vector, reading and writing the tfjs heap in place
 * (it imports the backend's own memory):
 *
 *   input(x, N, Hp, Wp, C, tilesH, tilesW, vTable)
 *     x: zero-padded input [N, Hp, Wp, C] (Hp = 4 tilesH + 2, Wp = 4 tilesW + 2), C % 4 == 0;
 *     vTable: 36 i32 byte addresses of V_k, each [tiles, C] (tile = (n, ty, tx), row-major).
 *   output(mTable, y, N, Ho, Wo, C, tilesH, tilesW)
 *     mTable: 36 addresses of M_k [tiles, C]; y: [N, Ho, Wo, C], the tile edges cropped.
 */
import { WINOGRAD_AT, WINOGRAD_BT } from '../../packages/backends/src/winograd-matrices.js';

const BT = WINOGRAD_BT;
const AT = WINOGRAD_AT;

const splat = (c: number): string => `(v128.const f32x4 ${c} ${c} ${c} ${c})`;

/** WAT expression for Σ coef[i] · local(names[i]) (zero coefficients skipped, ±1 without a multiply). */
function combination(coef: readonly number[], names: string[]): string {
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

function locals(prefix: string, rows: number, cols: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.push(`${prefix}${i}_${j}`);
  return out;
}

/**
 * The loop nest both transforms share: images n, tile rows ty, tile columns tx (counting `$tile`),
 * channels c in steps of 4. Per (tile, c) it sets `$<ptr>` to the address of pixel (4 ty, 4 tx),
 * channel c, in the NHWC tensor at `$<base>` of height `$<height>` (row stride `$rowStride`,
 * pixel stride `$cBytes`), and `$o` to the offset of (tile, c) in every [tiles, C] table entry,
 * then runs `body`. `perRow`/`perCol` run once per tile row/column.
 */
function tileLoops(o: { base: string; height: string; ptr: string; perRow?: string; perCol?: string; body: string[] }): string {
  return `(local.set $tile (i32.const 0))
    (local.set $n (i32.const 0))
    (block $nDone (loop $nLoop
      (br_if $nDone (i32.ge_u (local.get $n) (local.get $N)))
      (local.set $ty (i32.const 0))
      (block $yDone (loop $yLoop
        (br_if $yDone (i32.ge_u (local.get $ty) (local.get $tilesH)))
        ${o.perRow ?? ''}
        (local.set $tx (i32.const 0))
        (block $xDone (loop $xLoop
          (br_if $xDone (i32.ge_u (local.get $tx) (local.get $tilesW)))
          ${o.perCol ?? ''}
          (local.set $c (i32.const 0))
          (block $cDone (loop $cLoop
            (br_if $cDone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $${o.ptr} (i32.add (local.get $${o.base})
              (i32.add (i32.mul (i32.add (i32.mul (local.get $n) (local.get $${o.height})) (i32.shl (local.get $ty) (i32.const 2))) (local.get $rowStride))
                (i32.add (i32.mul (i32.shl (local.get $tx) (i32.const 2)) (local.get $cBytes)) (i32.shl (local.get $c) (i32.const 2))))))
            (local.set $o (i32.add (i32.mul (local.get $tile) (local.get $cBytes)) (i32.shl (local.get $c) (i32.const 2))))
            ${o.body.join('\n            ')}
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $cLoop)))
          (local.set $tile (i32.add (local.get $tile) (i32.const 1)))
          (local.set $tx (i32.add (local.get $tx) (i32.const 1)))
          (br $xLoop)))
        (local.set $ty (i32.add (local.get $ty) (i32.const 1)))
        (br $yLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop)))`;
}

/** The module text; `shared` for tfjs's threaded build (its memory is a shared one). */
export function winogradWat(shared: boolean): string {
  const memory = shared ? '(memory 1 65536 shared)' : '(memory 1)';
  const v = (prefix: string, n: number): string => Array.from({ length: n }, (_, k) => `(local $${prefix}${k} i32)`).join(' ');
  const vec = (names: string[]): string => names.map((n) => `(local $${n} v128)`).join(' ');

  // ---- input transform: d (6x6) -> t = Bᵀ d (6x6) -> V = t B (6x6)
  const d = locals('d', 6, 6);
  const t = locals('t', 6, 6);
  const inBody: string[] = [];
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) {
      inBody.push(`(local.set $d${i}_${j} (v128.load (i32.add (local.get $p) (i32.add (i32.mul (local.get $rowStride) (i32.const ${i})) (i32.mul (local.get $colStride) (i32.const ${j}))))))`);
    }
  }
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) {
      inBody.push(`(local.set $t${i}_${j} ${combination(BT[i]!, Array.from({ length: 6 }, (_, r) => `d${r}_${j}`))})`);
    }
  }
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) {
      // V[i][j] = Σ_c t[i][c] B[c][j] = Σ_c t[i][c] Bᵀ[j][c]
      const k = i * 6 + j;
      inBody.push(`(v128.store (i32.add (local.get $v${k}) (local.get $o)) ${combination(BT[j]!, Array.from({ length: 6 }, (_, c) => `t${i}_${c}`))})`);
    }
  }
  const loadTable = (table: string, prefix: string, n: number): string => Array.from({ length: n }, (_, k) => `(local.set $${prefix}${k} (i32.load (i32.add (local.get $${table}) (i32.const ${4 * k}))))`).join('\n    ');

  const input = `
  (func (export "input") (param $x i32) (param $N i32) (param $Hp i32) (param $Wp i32) (param $C i32) (param $tilesH i32) (param $tilesW i32) (param $vTable i32)
    (local $n i32) (local $ty i32) (local $tx i32) (local $c i32) (local $tile i32) (local $p i32) (local $o i32) (local $rowStride i32) (local $colStride i32) (local $cBytes i32)
    ${v('v', 36)}
    ${vec(d)}
    ${vec(t)}
    ${loadTable('vTable', 'v', 36)}
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $colStride (local.get $cBytes))
    (local.set $rowStride (i32.mul (local.get $Wp) (local.get $cBytes)))
    ${tileLoops({ base: 'x', height: 'Hp', ptr: 'p', body: inBody })}
  )`;

  // ---- output transform: m (6x6) -> s = Aᵀ m (4x6) -> Y = s A (4x4), stored where inside y
  const m = locals('m', 6, 6);
  const s = locals('s', 4, 6);
  const outBody: string[] = [];
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) outBody.push(`(local.set $m${i}_${j} (v128.load (i32.add (local.get $m${i * 6 + j}) (local.get $o))))`);
  }
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 6; j++) outBody.push(`(local.set $s${i}_${j} ${combination(AT[i]!, Array.from({ length: 6 }, (_, r) => `m${r}_${j}`))})`);
  }
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      const value = combination(AT[j]!, Array.from({ length: 6 }, (_, c) => `s${i}_${c}`));
      const at = `(i32.add (local.get $q) (i32.add (i32.mul (local.get $rowStride) (i32.const ${i})) (i32.mul (local.get $cBytes) (i32.const ${j}))))`;
      outBody.push(`(if (i32.and (i32.gt_s (local.get $rows) (i32.const ${i})) (i32.gt_s (local.get $cols) (i32.const ${j}))) (then (v128.store ${at} ${value})))`);
    }
  }
  const output = `
  (func (export "output") (param $mTable i32) (param $y i32) (param $N i32) (param $Ho i32) (param $Wo i32) (param $C i32) (param $tilesH i32) (param $tilesW i32)
    (local $n i32) (local $ty i32) (local $tx i32) (local $c i32) (local $tile i32) (local $q i32) (local $o i32) (local $rowStride i32) (local $cBytes i32) (local $rows i32) (local $cols i32)
    ${v('m', 36)}
    ${vec(m)}
    ${vec(s)}
    ${loadTable('mTable', 'm', 36)}
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $rowStride (i32.mul (local.get $Wo) (local.get $cBytes)))
    ${tileLoops({
      base: 'y',
      height: 'Ho',
      ptr: 'q',
      perRow: '(local.set $rows (i32.sub (local.get $Ho) (i32.shl (local.get $ty) (i32.const 2))))',
      perCol: '(local.set $cols (i32.sub (local.get $Wo) (i32.shl (local.get $tx) (i32.const 2))))',
      body: outBody,
    })}
  )`;

  return `(module
  (import "env" "memory" ${memory})
${input}
${output}
)
`;
}
