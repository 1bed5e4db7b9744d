#!/usr/bin/env node
// The package's install script: builds the native addon (native/mem.c, view.cc) with node-gyp, quietly.
// node-gyp prints ~50 lines of `gyp info` on success; they are kept in build/node-gyp.log and
// printed only when the build fails, so a successful install stays short.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Written after the build: `node-gyp rebuild` starts by deleting build/.
const logPath = join(root, 'build', 'node-gyp.log');
const output = [];

// npm puts its bundled node-gyp on PATH for lifecycle scripts and names it in npm_config_node_gyp.
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
child.stdout.on('data', (b) => output.push(b));
child.stderr.on('data', (b) => output.push(b));
child.on('error', (e) => fail(`cannot start node-gyp: ${e.message}`));
child.on('close', (code, signal) => {
  saveLog();
  if (code !== 0) fail(`node-gyp rebuild failed (${signal ?? `exit ${code}`})`);
});

function saveLog() {
  try {
    mkdirSync(dirname(logPath), { recursive: true });
    writeFileSync(logPath, Buffer.concat(output));
  } catch { /* the log is a convenience; the output is printed on failure anyway */ }
}

function fail(why) {
  process.stderr.write(`${Buffer.concat(output).toString()}\nhdmabuf: building the native addon failed: ${why}\n` +
    'hdmabuf: it needs C and C++ compilers, make and python3 (node-gyp); the output above is also in build/node-gyp.log\n');
  process.exit(1);
}
