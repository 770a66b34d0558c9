export { AttentionBlock, ClassifierHead, MaskGenerator, Selection, type AttentionOptions, type AttentionOutputs } from './attention.js';
