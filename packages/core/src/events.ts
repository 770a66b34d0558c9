/** Loss parts of one optimisation step; `total = cls + gamma * mi` where MI applies. */
export interface LossParts {
  total: number;
  cls?: number;
  mi?: number;
  [part: string]: number | undefined;
}

/** Result of evaluating a model on one named target. */
export interface EvaluationResult {
  target: string;
  accuracy: number;
  count: number;
  perClassAccuracy: number[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

/**
 * Every event on the bus: plain, JSON-serialisable data discriminated by `type`. Epoch numbers:
 * in `epochStart` and `batchEnd`, `epoch` is the 0-based index of the running epoch; in
 * `epochEnd`, `evaluation` and `checkpoint` it is the number of epochs completed (1-based: the
 * first epoch ends with `epoch: 1`, equal to `epochEnd.metrics.epoch`).
 */
export type DfdEvent =
  | { type: 'runStart'; runId: string; stage: string; epochs: number; stepsPerEpoch: number; startEpoch: number; config: Record<string, unknown> }
  | { type: 'runEnd'; runId: string; status: 'completed' | 'stopped' | 'failed'; reason?: string; epochsDone: number }
  | { type: 'epochStart'; epoch: number; totalEpochs: number }
  | { type: 'epochEnd'; epoch: number; totalEpochs: number; metrics: Record<string, number> }
  | {
      type: 'batchEnd';
      epoch: number;
      step: number;
      stepsPerEpoch: number;
      /** Optimizer steps done, this one included. */
      globalStep: number;
      totalSteps: number;
      /** Progress at which this step's controls were set: (globalStep - 1) / totalSteps. */
      p: number;
      loss: LossParts;
      accuracy?: number;
      learningRates: Record<string, number>;
      /** The step's controls as the `beforeStep` plugins set them (absent: none set it). */
      gamma?: number;
      lambda?: number;
      imagesPerSecond?: number;
    }
  | { type: 'evaluation'; epoch: number; split: string; results: EvaluationResult[]; mean: number }
  | { type: 'checkpoint'; path: string; epoch: number; globalStep: number }
  | { type: 'warning'; source: string; message: string; detail?: Record<string, unknown> }
  | { type: 'error'; source: string; message: string; stack?: string };

/** The `type` tags of {@link DfdEvent}. */
export type DfdEventType = DfdEvent['type'];

/** The event variant whose tag is `T`. */
export type EventOf<T extends DfdEventType> = Extract<DfdEvent, { type: T }>;
