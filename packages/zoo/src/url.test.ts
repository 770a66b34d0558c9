import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { ZooWeightsError } from './nets.js';
import { findZooPackage, loadZooWeights } from './node.js';
import { zooEntry } from './registry.js';
import { loadZooWeightsFromUrl, type ZooFetch } from './url.js';

/** A fetch over file: URLs (what a static server does for the exported folder), counting requests. */
function fileFetch(requested: string[], patch?: (url: string, bytes: Buffer) => Buffer | null): ZooFetch {
  return async (url) => {
    requested.push(url);
    let bytes: Buffer | null;
    try {
      bytes = await readFile(fileURLToPath(url));
    } catch {
      bytes = null;
    }
    if (bytes && patch) bytes = patch(url, bytes);
    const ok = bytes !== null;
    return {
      ok,
      status: ok ? 200 : 404,
      json: async () => JSON.parse(bytes!.toString('utf8')) as unknown,
      arrayBuffer: async () => bytes!.buffer.slice(bytes!.byteOffset, bytes!.byteOffset + bytes!.byteLength) as ArrayBuffer,
    };
  };
}

describe('loadZooWeightsFromUrl', () => {
  const entry = zooEntry('faceapi:tiny-detector');
  let manifestUrl: string;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    manifestUrl = pathToFileURL(join(findZooPackage(entry)!.dir, entry.manifest)).href;
  });

  it('fetches the manifest and its shards (relative to it) and decodes the same tensors as loadZooWeights', async () => {
    const before = tf.memory().numTensors;
    const requested: string[] = [];
    const fromUrl = await loadZooWeightsFromUrl(manifestUrl, fileFetch(requested));
    const fromDisk = await loadZooWeights(entry.id);
    expect(requested[0]).toBe(manifestUrl);
    expect(requested.slice(1)).toEqual([new URL('tiny_face_detector_model.bin', manifestUrl).href]);
    expect(Object.keys(fromUrl).sort()).toEqual(Object.keys(fromDisk).sort());
    expect(Object.keys(fromUrl).length).toBeGreaterThan(10);
    for (const [name, t] of Object.entries(fromDisk)) {
      expect(fromUrl[name]!.shape, name).toEqual(t.shape);
      expect(Array.from(fromUrl[name]!.dataSync()), name).toEqual(Array.from(t.dataSync()));
    }
    tf.dispose([...Object.values(fromUrl), ...Object.values(fromDisk)]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names the URL that failed: missing manifest, missing or truncated shard, not a manifest', async () => {
    const missing = new URL('nope-weights_manifest.json', manifestUrl).href;
    await expect(loadZooWeightsFromUrl(missing, fileFetch([]))).rejects.toThrow(`cannot fetch ${missing}: HTTP 404`);
    const shard = new URL('tiny_face_detector_model.bin', manifestUrl).href;
    const noShard = fileFetch([], (u, b) => (u === shard ? null : b));
    await expect(loadZooWeightsFromUrl(manifestUrl, noShard)).rejects.toThrow(`cannot fetch ${shard}: HTTP 404`);
    const truncated = fileFetch([], (u, b) => (u === shard ? b.subarray(0, b.byteLength - 4) : b));
    await expect(loadZooWeightsFromUrl(manifestUrl, truncated)).rejects.toThrow(ZooWeightsError);
    await expect(loadZooWeightsFromUrl(manifestUrl, truncated)).rejects.toThrow(/bytes but the manifest describes/);
    const notManifest = fileFetch([], (u, b) => (u === manifestUrl ? Buffer.from('{"format":"dfd-web"}') : b));
    await expect(loadZooWeightsFromUrl(manifestUrl, notManifest)).rejects.toThrow(`${manifestUrl}: not a tfjs weights manifest`);
  });
});
