import wabtInit from 'wabt';
import { winogradWat } from './winograd.js';

/** The Winograd transform modules as wasm binaries (shared-memory and plain variants). */
export async function assembleWinograd(): Promise<{ shared: Uint8Array; plain: Uint8Array }> {
  const wabt = await wabtInit();
  const build = (shared: boolean): Uint8Array => {
    const mod = wabt.parseWat(`winograd-${shared ? 'shared' : 'plain'}.wat`, winogradWat(shared), { simd: true, threads: true });
    try {
      // (wabt's validate() rejects shared memories whatever the feature flags; WebAssembly.Module validates.)
      return mod.toBinary({ log: false, write_debug_names: false }).buffer;
    } finally {
      mod.destroy();
    }
  };
  return { shared: build(true), plain: build(false) };
}
