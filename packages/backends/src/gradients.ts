import * as tf from '@tensorflow/tfjs-core';

/*
 * tfjs-core keeps its gradient functions out of its main entry (the @tensorflow/tfjs union
 * registers them); with tfjs-core alone tf.grad of any op throws "gradient function not found".
 * Their ESM file tree uses extension-less relative imports, which bundlers accept but Node's
 * ESM loader rejects, so in Node a resolve hook first appends `.js` inside tfjs-core's dist/.
 */

const HOOK = `export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    const parent = context.parentURL ?? '';
    if (specifier.startsWith('.') && !specifier.endsWith('.js') && parent.includes('/@tensorflow/tfjs-core/dist/')) {
      return next(specifier + '.js', context);
    }
    throw e;
  }
}`;

let done: Promise<void> | undefined;

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return p?.versions?.node != null;
}

/** Registers tfjs-core's gradient functions (idempotent; the first call in Node takes about a second). */
export function registerGradients(): Promise<void> {
  done ??= (async () => {
    if (tf.getGradient('Conv2D') != null && tf.getGradient('FusedBatchNorm') != null) return;
    if (isNode()) {
      const nodeModule = (await import(/* @vite-ignore */ ['node', 'module'].join(':'))) as {
        register?: (url: string) => void;
      };
      nodeModule.register?.('data:text/javascript,' + encodeURIComponent(HOOK));
    }
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  })();
  return done;
}
