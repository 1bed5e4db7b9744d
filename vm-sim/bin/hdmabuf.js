#!/usr/bin/env node
// The `hdmabuf` command: loads the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { runMain } = await import('../cli.ts');
await runMain();
