import type * as tf from '@tensorflow/tfjs-core';
import { decodeZooWeights, type WeightsManifest } from './models.js';
import { ZooWeightsError } from './nets.js';

/** The subset of `fetch` that {@link loadZooWeightsFromUrl} needs (the global one by default). */
export type ZooFetch = (url: string) => Promise<{ ok: boolean; status: number; json(): Promise<unknown>; arrayBuffer(): Promise<ArrayBuffer> }>;

/**
 * Browser-side twin of `loadZooWeights` (`@dfd/zoo/node`): fetches a zoo net's weights manifest
 * (tfjs weights-manifest JSON, e.g. the `faces/tiny_face_detector_model-weights_manifest.json`
 * that `dfd export` copies next to the model) and its shards, which are resolved relative to the
 * manifest's URL, and decodes them. Errors name the URL that failed.
 */
export async function loadZooWeightsFromUrl(manifestUrl: string | URL, fetchImpl: ZooFetch = (u) => fetch(u)): Promise<tf.NamedTensorMap> {
  const url = new URL(manifestUrl);
  const get = async (u: URL) => {
    let res: Awaited<ReturnType<ZooFetch>>;
    try {
      res = await fetchImpl(u.href);
    } catch (err) {
      throw new ZooWeightsError(`cannot fetch ${u.href} (${(err as Error).message}); re-run 'dfd export' so the folder has it, or check the URL.`);
    }
    if (!res.ok) throw new ZooWeightsError(`cannot fetch ${u.href}: HTTP ${res.status}; re-run 'dfd export' so the folder has it, or check the URL.`);
    return res;
  };
  const manifest = (await (await get(url)).json()) as WeightsManifest;
  if (!Array.isArray(manifest) || !manifest.every((g) => g && Array.isArray(g.paths) && Array.isArray(g.weights))) {
    throw new ZooWeightsError(`${url.href}: not a tfjs weights manifest (an array of { paths, weights } groups).`);
  }
  const shards = await Promise.all(manifest.flatMap((g) => g.paths).map(async (p) => new Uint8Array(await (await get(new URL(p, url))).arrayBuffer())));
  const data = new Uint8Array(shards.reduce((s, b) => s + b.byteLength, 0));
  let at = 0;
  for (const b of shards) {
    data.set(b, at);
    at += b.byteLength;
  }
  try {
    return decodeZooWeights(manifest, data.buffer);
  } catch (err) {
    throw new ZooWeightsError(`${url.href}: ${(err as Error).message}`);
  }
}
