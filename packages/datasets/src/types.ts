import type { EventBus } from '@dfd/core';

/** An RGB image, 8 bits per channel, rows top to bottom, pixels interleaved (HWC, 3 channels). */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** `width * height * 3` bytes. */
  readonly data: Uint8Array;
}

/** An RGB float image (HWC, 3 channels); values in [0, 1] until normalised. */
export interface FloatImage {
  readonly width: number;
  readonly height: number;
  /** `width * height * 3` floats. */
  readonly data: Float32Array;
}

/**
 * Where a sample's pixels come from. Raw pixels and generated images need no decoder (fast
 * path, browser-safe); files, URLs and encoded bytes go through an {@link ImageDecoder}
 * (sharp on Node via `@dfd/datasets/node`, createImageBitmap in browsers).
 */
export type ImageSource =
  | { readonly kind: 'pixels'; readonly width: number; readonly height: number; readonly channels: 1 | 3 | 4; readonly data: Uint8Array }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'bytes'; readonly data: Uint8Array; readonly name?: string }
  | { readonly kind: 'generated'; readonly width: number; readonly height: number; readonly render: () => RgbImage };

/** One labelled image. */
export interface Sample {
  /** Unique within the dataset (file path relative to the root, CSV row, ...). */
  readonly id: string;
  readonly image: ImageSource;
  /** Canonical expression index 0..6 (EXPRESSIONS order); absent for factor-only datasets. */
  readonly expression?: number;
  /** Expression-irrelevant labels by factor name (see {@link Dataset.factors}). */
  readonly factors?: Readonly<Record<string, number>>;
}

/** An expression-irrelevant factor: its name and number of classes (labels are 0..classes-1). */
export interface FactorSpec {
  readonly name: string;
  readonly classes: number;
  /** Optional class names, `classNames.length === classes`. */
  readonly classNames?: readonly string[];
}

/** Names of the splits a dataset may have. */
export type SplitName = 'train' | 'val' | 'test';

/** A warning raised while reading a dataset (also published on the bus as a `warning` event). */
export interface DatasetWarning {
  /** Stable kind, e.g. `unknown-class`, `bad-file-name`, `no-attributes`. */
  readonly kind: string;
  readonly message: string;
  /** How many items this warning stands for. */
  readonly count: number;
  readonly file?: string;
}

/** A dataset resolved from a spec: splits of samples plus what its labels mean. */
export interface Dataset {
  /** The spec it was resolved from, e.g. `rafdb:/data/RAF-DB` (set by DatasetRegistry.resolve). */
  readonly name: string;
  /** The plugin that produced it. */
  readonly plugin: string;
  readonly splits: { train?: Sample[]; val?: Sample[]; test?: Sample[] };
  /** Whether samples carry `expression` labels. */
  readonly hasExpression: boolean;
  /** Expression-irrelevant factors the samples carry. */
  readonly factors?: FactorSpec[];
  /** Counted skips and other non-fatal problems. */
  readonly warnings: DatasetWarning[];
}

/** Options parsed from the query part of a spec (`synthetic:wild?train=2000&seed=1`). */
export type SpecOptions = Readonly<Record<string, string>>;

/** A parsed dataset spec `plugin:location?options`. */
export interface DatasetSpec {
  readonly plugin: string;
  readonly location: string;
  readonly options: SpecOptions;
  /** The original text. */
  readonly text: string;
}

/** What a plugin receives while loading. */
export interface DatasetContext {
  /** Bus for `warning` events; optional so plugins work standalone. */
  readonly bus?: EventBus;
  /** Records a warning (and publishes it on the bus when there is one). */
  warn(warning: DatasetWarning): void;
}

/** A problem found by {@link DatasetPlugin.validate}. */
export interface ValidationIssue {
  readonly severity: 'error' | 'warning';
  readonly message: string;
  readonly file?: string;
}

/** The labels a plugin provides. */
export interface LabelSet {
  readonly expression: boolean;
  readonly factors: readonly FactorSpec[];
}

/**
 * A dataset plugin turns `name:location?options` into a {@link Dataset}. Shaped after Vite
 * plugins: a plain object with a unique `name` and hooks.
 */
export interface DatasetPlugin {
  /** The spec prefix, e.g. `rafdb`. */
  readonly name: string;
  /** One line shown by `dfd data plugins`. */
  readonly description?: string;
  /** The labels it provides (factor class counts may be data dependent: then the dataset says). */
  readonly labels: LabelSet;
  /**
   * The spec options (`?key=value`) it reads. When given, {@link DatasetRegistry.resolve} refuses
   * any other option with an error listing these (a typo such as `?splt=test` is not ignored);
   * plugins that leave it out (a wrapper forwarding options, older user plugins) see every option.
   */
  readonly options?: readonly string[];
  /** Checks the location before loading; `error` issues stop {@link DatasetRegistry.resolve}. */
  validate?(location: string, options: SpecOptions): Promise<ValidationIssue[]>;
  /** Reads the location into splits. Throws `DatasetFormatError` on malformed input. */
  load(location: string, options: SpecOptions, context: DatasetContext): Promise<Dataset>;
}

/** Optional decoding hints. */
export interface DecodeHint {
  /**
   * Shrink (never enlarge) so that neither side exceeds this, keeping the aspect ratio, while
   * decoding (sharp shrinks JPEGs on load): fast for large photos (AffectNet) when the network
   * input is 90x90. Decoders may ignore it.
   */
  maxSide?: number;
}

/** Decodes file/url/bytes image sources into RGB (grey and palette images become RGB). */
export type ImageDecoder = (source: ImageSource, hint?: DecodeHint) => Promise<RgbImage>;
