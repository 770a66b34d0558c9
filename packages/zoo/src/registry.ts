import { DfdError } from '@dfd/core';

/** What a zoo network can stand in for in dfd. */
export type ZooRole = 'backbone' | 'eife' | 'classifier' | 'detector' | 'landmarks';

/** One pretrained network of the zoo: where its weights come from and how it sees a face. */
export interface ZooEntry {
  /** `source:name`, e.g. `faceapi:expression`. */
  id: string;
  roles: ZooRole[];
  /** npm package that ships the weights (an optional peer dependency of @dfd/zoo). */
  package: string;
  /** Version range of that package this entry was written and tested against. */
  versionRange: string;
  /** Weights manifest inside the package (tfjs weights-manifest JSON, or a graph model's model.json with `format` 'graph-model'; shards beside it). */
  manifest: string;
  /** 'graph-model': a TensorFlow.js graph model run as it ships through tfjs-converter (Human's nets); default: a weights manifest dfd's rebuilt net reads. */
  format?: 'graph-model';
  /** Square input side the network was trained at. */
  inputSize: number;
  /** dfd backbone layout that rebuilds the net's trunk (`backbone` role). */
  layout?: 'faceapi' | 'faceapi-xception';
  /** How the network wants its pixels (dfd converts its ImageNet-normalised batches itself). */
  preprocessing: string;
  /** Embedding size (the MI target d_k) when used as an EIFE. */
  embedDim?: number;
  /** What the embedding / output encodes. */
  describes: string;
  license: string;
}

const FACEAPI = { package: '@vladmandic/face-api', versionRange: '^1.7.15', license: 'MIT' } as const;
const FACEAPI_PRE = 'RGB resized (bilinear) to the input size, (pixel - [122.782, 117.001, 104.298]) / 255';

const HUMAN = { package: '@vladmandic/human', versionRange: '^3.3.6', license: 'MIT', format: 'graph-model' } as const;

/** Every network dfd knows how to load, rebuild and use. */
export const ZOO: readonly ZooEntry[] = [
  {
    id: 'faceapi:expression',
    roles: ['backbone', 'classifier'],
    ...FACEAPI,
    layout: 'faceapi',
    manifest: 'model/face_expression_model-weights_manifest.json',
    inputSize: 112,
    preprocessing: FACEAPI_PRE,
    describes: 'facial expression (7 classes); trunk: 4 dense blocks of separable convs, stages 56/28/14/7 px x 32/64/128/256 ch',
  },
  {
    id: 'faceapi:recognition',
    roles: ['eife'],
    ...FACEAPI,
    manifest: 'model/face_recognition_model-weights_manifest.json',
    inputSize: 150,
    preprocessing: FACEAPI_PRE,
    embedDim: 128,
    describes: 'identity: the 128-d face descriptor (ResNet-34-like, dlib metric learning)',
  },
  {
    id: 'faceapi:age-gender',
    roles: ['eife', 'backbone'],
    ...FACEAPI,
    layout: 'faceapi-xception',
    manifest: 'model/age_gender_model-weights_manifest.json',
    inputSize: 112,
    preprocessing: FACEAPI_PRE,
    embedDim: 512,
    describes: 'age and gender: the 512-d pooled TinyXception features its age and gender heads read; as a backbone, its trunk (56/28/14/7 px x 32/64/128/512 ch)',
  },
  {
    id: 'faceapi:tiny-detector',
    roles: ['detector'],
    ...FACEAPI,
    manifest: 'model/tiny_face_detector_model-weights_manifest.json',
    inputSize: 416,
    preprocessing: 'RGB zero-padded to a square at the bottom/right, resized (bilinear) to the input size (416 default; any multiple of 32, e.g. 320 or 224), (pixel - [117.001, 114.697, 97.404]) / 255',
    describes: 'face boxes with scores: TinyYolov2 with separable convs, 5 anchors, score threshold 0.5, NMS at IoU 0.4',
  },
  {
    id: 'faceapi:landmarks-tiny',
    roles: ['landmarks'],
    ...FACEAPI,
    manifest: 'model/face_landmark_68_tiny_model-weights_manifest.json',
    inputSize: 112,
    preprocessing: 'the face box cut at whole pixels, zero-padded to a centred square, resized (bilinear) to 112, (pixel - [122.782, 117.001, 104.298]) / 255',
    describes: '68 face landmarks (iBUG order) of a detected face: 3 dense blocks of separable convs, 128-d pooled features, fc; dfd levels the eyes with them',
  },
  {
    id: 'human:faceres',
    roles: ['eife'],
    ...HUMAN,
    manifest: 'models/faceres.json',
    inputSize: 224,
    preprocessing: "RGB in 0..1 resized (bilinear) to the input size, * 255 (Human's faceres enhance())",
    embedDim: 1024,
    describes: "identity, age and gender: Human's 1024-d face descriptor (HSE FaceRes global pool), which its age (100 bins) and gender heads read",
  },
  {
    id: 'human:emotion',
    roles: ['classifier'],
    ...HUMAN,
    manifest: 'models/emotion.json',
    inputSize: 64,
    preprocessing: "RGB in 0..1 resized (bilinear) to the input size, grey = 0.2989 R + 0.5870 G + 0.1140 B, (grey - 0.5) * 2 (Human's emotion predict())",
    describes: "facial expression (7 classes, FER2013-trained mini Xception, greyscale; Human's order angry, disgust, fear, happy, sad, surprise, neutral mapped to canonical)",
  },
];

/** The zoo id is unknown: lists the known ones. */
export class ZooUnknownError extends DfdError {
  constructor(id: string) {
    super('E_ZOO_UNKNOWN', `unknown zoo model '${id}'; known: ${ZOO.map((e) => e.id).join(', ')} (dfd models list).`);
  }
}

/** The zoo model is known but cannot be used in that role. */
export class ZooRoleError extends DfdError {
  constructor(id: string, role: ZooRole) {
    const entry = zooEntry(id);
    const name = role === 'landmarks' ? 'landmark net' : role;
    super('E_ZOO_ROLE', `zoo model '${id}' cannot be used as ${role === 'eife' ? 'an EIFE' : `a ${name}`}; it is a ${entry.roles.join(' / ')}. ${name}s: ${ZOO.filter((e) => e.roles.includes(role)).map((e) => e.id).join(', ')}.`);
  }
}

/** Whether `s` names a zoo model (`faceapi:...`), as opposed to a model folder. */
export function isZooId(s: string): boolean {
  return ZOO.some((e) => e.id === s);
}

/** The entry of `id`; ZooUnknownError when there is none. */
export function zooEntry(id: string): ZooEntry {
  const e = ZOO.find((x) => x.id === id);
  if (!e) throw new ZooUnknownError(id);
  return e;
}

/** The entry of `id`, checked to support `role`. */
export function zooEntryFor(id: string, role: ZooRole): ZooEntry {
  const e = zooEntry(id);
  if (!e.roles.includes(role)) throw new ZooRoleError(id, role);
  return e;
}

/** tfjs-converter runs the graph-model entries (an optional peer dependency of @dfd/zoo, like the weight packages). */
export const GRAPH_RUNTIME = { package: '@tensorflow/tfjs-converter', versionRange: '^4.22.0' } as const;

/** The exact command that installs the package a zoo entry needs (and, for a graph model, tfjs-converter that runs it). */
export function installCommand(entry: ZooEntry): string {
  const pkgs = [entry, ...(entry.format === 'graph-model' ? [GRAPH_RUNTIME] : [])];
  return `npm install ${pkgs.map((p) => `${p.package}@${p.versionRange.replace(/^\^/, '')}`).join(' ')}`;
}
