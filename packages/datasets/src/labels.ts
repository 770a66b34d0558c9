import { EXPRESSIONS } from '@dfd/core';

/** FER2013 `emotion` 0 angry,1 disgust,2 fear,3 happy,4 sad,5 surprise,6 neutral -> canonical. */
export const FER2013_TO_CANONICAL: readonly number[] = [5, 2, 1, 3, 4, 0, 6];

/** FERPlus vote columns, in file order. */
export const FERPLUS_COLUMNS = ['neutral', 'happiness', 'surprise', 'sadness', 'anger', 'disgust', 'fear', 'contempt', 'unknown', 'NF'] as const;

/** FERPlus columns 0..6 (neutral..fear) -> canonical; contempt/unknown/NF are dropped. */
export const FERPLUS_TO_CANONICAL: readonly number[] = [6, 3, 0, 4, 5, 2, 1];

/** AffectNet 0 neutral,1 happy,2 sad,3 surprise,4 fear,5 disgust,6 anger -> canonical; 7+ dropped. */
export const AFFECTNET_TO_CANONICAL: readonly number[] = [6, 3, 4, 0, 1, 2, 5];

/** Class-folder names (lower case) -> canonical index, with the synonyms METHOD.md lists. */
export const CLASS_SYNONYMS: Readonly<Record<string, number>> = {
  surprise: 0,
  surprised: 0,
  fear: 1,
  fearful: 1,
  scared: 1,
  disgust: 2,
  disgusted: 2,
  happiness: 3,
  happy: 3,
  sadness: 4,
  sad: 4,
  anger: 5,
  angry: 5,
  neutral: 6,
  normal: 6,
};

/** Canonical index of a class-folder name, or undefined when unknown (e.g. `contempt`). */
export function expressionFromName(name: string): number | undefined {
  return CLASS_SYNONYMS[name.trim().toLowerCase()];
}

/**
 * FERPlus majority vote (METHOD.md, as the FERPlus reference code): vote counts <= 1 are
 * zeroed; the arg-max class is kept when it has more than half the remaining votes; contempt,
 * unknown and NF are dropped. Returns the canonical index or undefined (dropped).
 */
export function ferplusMajority(votes: readonly number[]): number | undefined {
  const v = votes.map((c) => (c <= 1 ? 0 : c));
  const sum = v.reduce((a, b) => a + b, 0);
  let arg = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[arg]!) arg = i;
  if (!(v[arg]! > 0.5 * sum)) return undefined;
  return arg < FERPLUS_TO_CANONICAL.length ? FERPLUS_TO_CANONICAL[arg] : undefined;
}

/** RAF-DB / UTKFace age groups 0-3, 4-19, 20-39, 40-69, 70+ (index 0..4). */
export function ageGroup(age: number): number {
  if (age <= 3) return 0;
  if (age <= 19) return 1;
  if (age <= 39) return 2;
  if (age <= 69) return 3;
  return 4;
}

/** Names of the canonical classes, re-exported for reports. */
export const EXPRESSION_NAMES: readonly string[] = EXPRESSIONS;
