export {};
export * from './import/index.js';
