export { ConsolePlugin, formatDuration, registerConsole, type ConsoleOptions, type ConsoleStream } from './console.js';
