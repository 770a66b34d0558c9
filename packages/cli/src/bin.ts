#!/usr/bin/env node
// Source entry for development: `npm run dfd -- <command>` runs the CLI from TypeScript.
import { main } from './main.js';

process.exitCode = await main(process.argv);
