#!/usr/bin/env node
// Source entry for development: `npm run dfd -- <command>` runs the CLI from TypeScript.
// Gradients first: modules below import tfjs-core's gradient files, which Node's ESM loader only
// resolves once @dfd/backends has installed its resolve hook.
const { registerGradients } = await import('@dfd/backends');
await registerGradients();
const { main } = await import('./main.js');

process.exitCode = await main(process.argv);
