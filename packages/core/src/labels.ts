/** The canonical expression classes, in RAF-DB order (METHOD.md). Index = class id everywhere. */
export const EXPRESSIONS = ['surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger', 'neutral'] as const;

/** One of the seven canonical expression names. */
export type Expression = (typeof EXPRESSIONS)[number];

/** Number of canonical expression classes (7). */
export const NUM_EXPRESSIONS = EXPRESSIONS.length;
