/**
 * Malformed scenario files and command lines (issue 12's 93, and more): each
 * one exits 2 with a message naming the field, and nothing is started. The
 * CLI's main() runs in-process with a scenario runner that records calls, so
 * "nothing started" is checked directly (the runner was never called, and no
 * child process exists); a few cases also run the real CLI as a process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS, main } from '../../vm-sim/cli.ts';
import type { Io } from '../../vm-sim/cli/command.ts';
import { makeRunCommand } from '../../vm-sim/cli/run.ts';
import { liveChildren } from '../../vm-sim/process/spawn/child.ts';
import { runCli } from '../launcher/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hdmabuf-bad-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Json = Record<string, unknown>;

/** A valid scenario; each case changes one thing. */
function valid(): Json {
  return {
    name: 'bad-input', description: 'one framebuffer shared, each case breaks one thing',
    params: { frames: { type: 'integer', default: 2, minimum: 1, maximum: 100, description: 'frames' } },
    domains: [{ name: 'producer', memory: '16MiB' }, { name: 'consumer', memory: '8MiB' }],
    steps: [
      { do: 'export', from: 'producer', to: 'consumer', buffer: 'fb', width: 64, height: 64, access: 'rw', dirFormat: 'multilevel' },
      { do: 'import', into: 'consumer', buffer: 'fb', timeoutMs: 5000 },
      { do: 'write', in: 'producer', buffer: 'fb', seed: 1 },
      { do: 'verify', in: 'consumer', buffer: 'fb', seed: 1 },
      { do: 'handoff', from: 'producer', to: 'consumer', frames: '$frames', check: 'full', inFlight: 1 },
      { do: 'pause', ms: 1 },
      { do: 'repeat', times: 1, steps: [{ do: 'query', in: 'producer', buffer: 'fb' }] },
      { do: 'call', in: 'producer', cmd: 'dmabuf.stats' },
      { do: 'release', in: 'consumer', buffer: 'fb' },
      { do: 'unexport', in: 'producer', buffer: 'fb', delayMs: 0, wait: 'released' },
      { do: 'wait', in: 'producer', event: 'released', buffer: 'fb' },
      { do: 'free', in: 'producer', buffer: 'fb' },
    ],
  };
}

const step = (i: number) => (s: Json, f: (x: Json) => void): void => f((s.steps as Json[])[i]!);
const EXPORT = step(0);
const IMPORT = step(1);
const WRITE = step(2);
const HANDOFF = step(4);
const PAUSE = step(5);
const REPEAT = step(6);
const CALL = step(7);
const UNEXPORT = step(9);
const WAIT = step(10);
const dom = (i: number) => (s: Json, f: (x: Json) => void): void => f((s.domains as Json[])[i]!);

/** A case: a change to the valid scenario (or a whole file's text), extra arguments, and what the message must name. */
interface Case {
  what: string;
  change?: (s: Json) => void;
  /** The file's whole content instead (text), and its extension. */
  text?: string;
  ext?: string;
  /** Instead of a file: a built-in or other first argument. */
  target?: string;
  args?: string[];
  /** The message must match (it names the field). */
  says: RegExp;
}

const set = (f: (s: Json, g: (x: Json) => void) => void, key: string, value: unknown) => (s: Json): void => f(s, (x) => { x[key] = value; });

const cases: Case[] = [
  // export sizes and shapes
  ...([-4096, 'abc', 1e300, 4096.5, 0, '10GB', '10 GB', true, '4096.5.1', 10 * 1024 ** 3] as unknown[]).map((v): Case => ({
    what: `bytes ${JSON.stringify(v)}`, change: (s) => EXPORT(s, (x) => { delete x.width; delete x.height; x.bytes = v; }), says: /steps\[0\]\.bytes/,
  })),
  { what: 'bytes larger than the exporter', change: (s) => EXPORT(s, (x) => { delete x.width; delete x.height; x.bytes = '64MiB'; }), says: /steps\[0\]\.bytes: .*producer's memory/ },
  { what: 'bytes and width', change: set(EXPORT, 'bytes', 4096), says: /steps\[0\]: give bytes, or width and height/ },
  { what: 'width without height', change: (s) => EXPORT(s, (x) => { delete x.height; }), says: /steps\[0\].*height/ },
  { what: 'no size at all', change: (s) => EXPORT(s, (x) => { delete x.width; delete x.height; }), says: /steps\[0\].*bytes/ },
  ...([0, -1, 1.5, 'wide', 100_000].map((v): Case => ({ what: `width ${v}`, change: set(EXPORT, 'width', v), says: /steps\[0\]\.width/ }))),
  ...([0, -64].map((v): Case => ({ what: `height ${v}`, change: set(EXPORT, 'height', v), says: /steps\[0\]\.height/ }))),
  ...([1, -4, 'x', 1e9].map((v): Case => ({ what: `stride ${v}`, change: set(EXPORT, 'stride', v), says: /steps\[0\]\.stride/ }))),
  ...(['RGB', 'RGBA88888', 5].map((v): Case => ({ what: `format ${v}`, change: set(EXPORT, 'format', v), says: /steps\[0\]\.format/ }))),
  ...(['rx', 1, 'RW'].map((v): Case => ({ what: `access ${v}`, change: set(EXPORT, 'access', v), says: /steps\[0\]\.access.*ro, rw/ }))),
  ...(['tree', true].map((v): Case => ({ what: `dirFormat ${v}`, change: set(EXPORT, 'dirFormat', v), says: /steps\[0\]\.dirFormat.*multilevel, linked/ }))),
  { what: 'scattered "yes"', change: set(EXPORT, 'scattered', 'yes'), says: /steps\[0\]\.scattered/ },
  { what: 'priv a number', change: set(EXPORT, 'priv', 5), says: /steps\[0\]\.priv/ },
  { what: 'to an empty list', change: set(EXPORT, 'to', []), says: /steps\[0\]\.to/ },
  { what: 'to an unknown domain', change: set(EXPORT, 'to', 'consumr'), says: /steps\[0\]\.to: no domain "consumr"; did you mean "consumer"/ },
  { what: 'from an unknown domain', change: set(EXPORT, 'from', 'nobody'), says: /steps\[0\]\.from: no domain "nobody"/ },
  { what: 'buffer label with a colon', change: set(EXPORT, 'buffer', 'f:b'), says: /steps\[0\]\.buffer/ },
  // values of other steps
  ...([-1, 2 ** 32, 1.5, 's'].map((v): Case => ({ what: `seed ${v}`, change: set(WRITE, 'seed', v), says: /steps\[2\]\.seed/ }))),
  ...([-1, 'soon', 1e9].map((v): Case => ({ what: `delayMs ${v}`, change: set(UNEXPORT, 'delayMs', v), says: /steps\[9\]\.delayMs/ }))),
  ...([0, -5, 'long', 1e12].map((v): Case => ({ what: `timeoutMs ${v}`, change: set(IMPORT, 'timeoutMs', v), says: /steps\[1\]\.timeoutMs/ }))),
  ...([-1, 'x', 1e12].map((v): Case => ({ what: `pause ms ${v}`, change: set(PAUSE, 'ms', v), says: /steps\[5\]\.ms/ }))),
  ...([0, -1, 1.5, 'x'].map((v): Case => ({ what: `repeat times ${v}`, change: set(REPEAT, 'times', v), says: /steps\[6\]\.times/ }))),
  { what: 'repeat steps not a list', change: set(REPEAT, 'steps', 'query'), says: /steps\[6\]\.steps/ },
  { what: 'nested step unknown', change: (s) => REPEAT(s, (x) => { (x.steps as Json[])[0]!.do = 'qurey'; }), says: /steps\[6\]\.steps\[0\]\.do.*did you mean "query"/ },
  ...(['dmabuf.explode', 5].map((v): Case => ({ what: `call cmd ${v}`, change: set(CALL, 'cmd', v), says: /steps\[7\]\.cmd/ }))),
  { what: 'call args not an object', change: set(CALL, 'args', [1]), says: /steps\[7\]\.args/ },
  { what: 'kill signal SIGFOO', change: (s) => { (s.steps as Json[]).push({ do: 'kill', domain: 'consumer', signal: 'SIGFOO' }); }, says: /steps\[12\]\.signal.*SIGKILL/ },
  { what: 'kill signal KILL', change: (s) => { (s.steps as Json[]).push({ do: 'kill', domain: 'consumer', signal: 'KILL' }); }, says: /steps\[12\]\.signal/ },
  { what: 'kill an unknown domain', change: (s) => { (s.steps as Json[]).push({ do: 'kill', domain: 'ghost' }); }, says: /steps\[12\]\.domain: no domain "ghost"/ },
  ...(['explode', 'Released'].map((v): Case => ({ what: `wait event ${v}`, change: set(WAIT, 'event', v), says: /steps\[10\]\.event/ }))),
  ...(['forever', 'release', 3].map((v): Case => ({ what: `unexport wait ${String(v)}`, change: set(UNEXPORT, 'wait', v), says: /steps\[9\]\.wait.*none, effect, released/ }))),
  ...(['most', 3].map((v): Case => ({ what: `handoff check ${v}`, change: set(HANDOFF, 'check', v), says: /steps\[4\]\.check/ }))),
  { what: 'handoff draw', change: set(HANDOFF, 'draw', 'some'), says: /steps\[4\]\.draw/ },
  ...([0, 100].map((v): Case => ({ what: `inFlight ${v}`, change: set(HANDOFF, 'inFlight', v), says: /steps\[4\]\.inFlight/ }))),
  ...([0, 'many', -3].map((v): Case => ({ what: `frames ${v}`, change: set(HANDOFF, 'frames', v), says: /steps\[4\]\.frames/ }))),
  { what: 'handoff buffers empty', change: set(HANDOFF, 'buffers', []), says: /steps\[4\]\.buffers/ },
  { what: 'handoff to an unknown domain', change: set(HANDOFF, 'to', 'sink'), says: /steps\[4\]\.to: no domain "sink"/ },
  { what: 'expectError not a code', change: set(IMPORT, 'expectError', 'oops'), says: /steps\[1\]\.expectError/ },
  { what: 'step name empty', change: set(IMPORT, 'name', ''), says: /steps\[1\]\.name/ },
  { what: 'unknown step field', change: set(IMPORT, 'colour', 'red'), says: /steps\[1\]: unknown field "colour"/ },
  { what: 'misspelt step field', change: (s) => IMPORT(s, (x) => { x.buffr = x.buffer; delete x.buffer; }), says: /steps\[1\]: unknown field "buffr"; did you mean "buffer"/ },
  { what: 'missing step field', change: (s) => WRITE(s, (x) => { delete x.seed; }), says: /steps\[2\]: missing field "seed"/ },
  { what: 'step without do', change: (s) => WRITE(s, (x) => { delete x.do; }), says: /steps\[2\].*"do"/ },
  { what: 'unknown step kind', change: set(WRITE, 'do', 'wrte'), says: /steps\[2\]\.do.*did you mean "write"/ },
  { what: 'step not an object', change: (s) => { (s.steps as unknown[])[3] = 'verify'; }, says: /steps\[3\]/ },
  { what: 'buffer used before its export', change: (s) => { (s.steps as Json[]).unshift({ do: 'query', in: 'producer', buffer: 'fb' }); }, says: /steps\[0\]\.buffer: buffer "fb" is used before/ },
  { what: 'unknown buffer', change: set(WRITE, 'buffer', 'fb2'), says: /steps\[2\]\.buffer: buffer "fb2".*did you mean "fb"/ },
  // parameter references and declarations
  { what: 'undefined $param', change: set(HANDOFF, 'frames', '$framez'), says: /steps\[4\]\.frames: unknown parameter "\$framez"; did you mean "frames"/ },
  { what: 'undefined $param in a domain', change: set(dom(0), 'memory', '$mem'), says: /domains\[0\]\.memory: unknown parameter "\$mem"/ },
  { what: 'params a list', change: (s) => { s.params = [1, 2]; }, says: /params/ },
  { what: 'params a string', change: (s) => { s.params = 'frames'; }, says: /params/ },
  { what: 'param default of the wrong type', change: (s) => { (s.params as Json).frames = { type: 'integer', default: 'x', description: 'f' }; }, says: /params\.frames\.default/ },
  { what: 'param default out of its range', change: (s) => { (s.params as Json).frames = { type: 'integer', default: 500, minimum: 1, maximum: 100, description: 'f' }; }, says: /params\.frames\.default/ },
  { what: 'param declaration unknown field', change: (s) => { (s.params as Json).frames = { type: 'integer', default: 2, description: 'f', max: 3 }; }, says: /params\.frames/ },
  { what: 'param type unknown', change: (s) => { (s.params as Json).frames = { type: 'int', default: 2, description: 'f' }; }, says: /params\.frames/ },
  { what: 'param name with a dash', change: (s) => { (s.params as Json)['fr-ames'] = 1; }, says: /params/ },
  { what: 'param value out of range for the field', change: (s) => { (s.params as Json).frames = 0; }, says: /steps\[4\]\.frames.*from parameter frames = 0/ },
  { what: '--param frames=-5', args: ['--param', 'frames=-5'], says: /--param frames: -5 is not allowed \(allowed: an integer from 1 to 100\)/ },
  { what: '--param frames=abc', args: ['--param', 'frames=abc'], says: /--param frames: "abc"/ },
  { what: '--param frames=1.5', args: ['--param', 'frames=1.5'], says: /--param frames: 1\.5/ },
  { what: '--param frames=1e300', args: ['--param', 'frames=1e300'], says: /--param frames/ },
  { what: '--param frames=', args: ['--param', 'frames='], says: /--param frames/ },
  { what: '--param bogus=1', args: ['--param', 'bogus=1'], says: /--param bogus: .*no parameter "bogus"/ },
  { what: '--param framez=1', args: ['--param', 'framez=1'], says: /did you mean "frames"/ },
  { what: '--param without =', args: ['--param', 'frames'], says: /--param frames: expected NAME=VALUE/ },
  { what: '--param =5', args: ['--param', '=5'], says: /--param =5: expected NAME=VALUE/ },
  { what: '--param without a value', args: ['--param'], says: /--param needs a value/ },
  // domains
  ...(['lots', -1, 0, 1, '100GiB', true, 4096.5].map((v): Case => ({ what: `memory ${JSON.stringify(v)}`, change: set(dom(0), 'memory', v), says: /domains\[0\]\.memory/ }))),
  ...([0, -1, 70_000, 'x', 1.5].map((v): Case => ({ what: `maxGrantFrames ${v}`, change: set(dom(1), 'maxGrantFrames', v), says: /domains\[1\]\.maxGrantFrames/ }))),
  { what: 'domain without memory', change: (s) => dom(0)(s, (x) => { delete x.memory; }), says: /domains\[0\]: missing field "memory"/ },
  { what: 'domain unknown field', change: set(dom(0), 'cpus', 2), says: /domains\[0\]: unknown field "cpus"/ },
  { what: 'domain name with a space', change: set(dom(0), 'name', 'pro ducer'), says: /domains\[0\]\.name/ },
  { what: 'domain name twice', change: set(dom(1), 'name', 'producer'), says: /domains\[1\]\.name: domain "producer" is declared twice/ },
  { what: 'no domains', change: (s) => { s.domains = []; }, says: /domains/ },
  { what: 'domains missing', change: (s) => { delete s.domains; }, says: /missing field "domains"/ },
  // the whole file
  { what: 'a top-level array', text: '[1, 2]', says: /a scenario is an object .*got an array/ },
  { what: 'null', text: 'null', says: /a scenario is an object/ },
  { what: 'a string', text: '"compositor"', says: /a scenario is an object/ },
  { what: 'not JSON', text: '{ name: compositor }', says: /not valid JSON/ },
  { what: 'unknown top-level field', change: (s) => { s.stepz = s.steps; delete s.steps; }, says: /unknown field "stepz"; did you mean "steps"/ },
  { what: 'no name', change: (s) => { delete s.name; }, says: /missing field "name"/ },
  { what: 'name starting with a digit', change: (s) => { s.name = '1st'; }, says: /name: "1st" is not allowed/ },
  { what: 'description a number', change: (s) => { s.description = 5; }, says: /description/ },
  { what: 'a .yaml file', text: 'name: x', ext: '.yaml', says: /a scenario file is \.json/ },
  { what: 'TypeScript syntax error', text: "export default {\n  name: 'x',,\n};\n", ext: '.ts', says: /cannot load the module: .*\.ts:2:\d+: .*Expected/ },
  { what: 'TypeScript module without a default export', text: 'export const x = 1;\n', ext: '.ts', says: /no default export/ },
  { what: 'TypeScript module that throws', text: "throw new Error('boom');\nexport default {};\n", ext: '.ts', says: /cannot load the module: boom/ },
  { what: 'TypeScript scenario with a bad field', text: "export default { name: 'x', description: 'd', domains: [{ name: 'a', memory: '1MiB' }], run: async () => {}, colour: 1 };\n", ext: '.ts', says: /unknown field "colour"/ },
  // the command line
  { what: 'unknown built-in', target: 'compositr', says: /no built-in scenario .*did you mean "compositor"/ },
  { what: 'unknown option', args: ['--jsn'], says: /unknown option --jsn; did you mean "--json"/ },
  { what: 'two scenarios', args: ['compositor'], says: /one scenario at a time/ },
  { what: '--run-tag with a space', args: ['--run-tag', 'a b'], says: /--run-tag/ },
  { what: '--trace into a missing folder', args: ['--trace', '/nonexistent/x.json'], says: /--trace \/nonexistent\/x\.json: folder \/nonexistent does not exist/ },
  { what: '--mermaid into a missing folder', args: ['--mermaid', '/nonexistent/x.mmd'], says: /--mermaid/ },
  { what: '--trace onto a folder', args: ['--trace', tmpdir()], says: /--trace .*is a folder/ },
  { what: 'fan-out importers=-1', target: 'fan-out', args: ['--param', 'importers=-1'], says: /--param importers: -1 is not allowed/ },
  { what: 'fan-out importers=0', target: 'fan-out', args: ['--param', 'importers=0'], says: /--param importers: 0 is not allowed/ },
  { what: 'fences bogus=1', target: 'fences', args: ['--param', 'bogus=1'], says: /--param bogus/ },
  { what: 'fences frames=-5', target: 'fences', args: ['--param', 'frames=-5'], says: /--param frames: -5/ },
  { what: 'compositor check=most', target: 'compositor', args: ['--param', 'check=most'], says: /--param check: "most" .*did you mean "most"|--param check: "most" is not allowed.*full, stamp, none/ },
  { what: 'big-buffer mib=1e6', target: 'big-buffer', args: ['--param', 'mib=1000000'], says: /--param mib/ },
];

/** Captured output. */
function capture(): { io: Io; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d: Buffer) => { o += d.toString(); });
  stderr.on('data', (d: Buffer) => { e += d.toString(); });
  return { io: { stdout, stderr, env: { NO_COLOR: '1' } }, out: () => o, err: () => e };
}

let fileNo = 0;
function argvOf(c: Case): string[] {
  if (c.target !== undefined) return ['run', c.target, ...(c.args ?? [])];
  const ext = c.ext ?? '.json';
  const file = join(dir, `case-${++fileNo}${ext}`);
  if (c.text !== undefined) writeFileSync(file, c.text);
  else {
    const s = valid();
    c.change?.(s);
    writeFileSync(file, JSON.stringify(s, null, 2));
  }
  return ['run', file, ...(c.args ?? [])];
}

describe('bad input exits 2 before anything starts', () => {
  it('has the issue\'s 93 cases and more', () => {
    expect(cases.length).toBeGreaterThanOrEqual(93);
  });

  it('accepts the valid scenario (so each case fails for its one change)', async () => {
    const calls: string[] = [];
    const commands = { ...COMMANDS, run: () => makeRunCommand(async (s) => { calls.push(s.name); throw new Error('stop here'); }) };
    const file = join(dir, 'valid.json');
    writeFileSync(file, JSON.stringify(valid()));
    const cap = capture();
    const code = await main(['run', file], cap.io, commands);
    expect(calls).toEqual(['bad-input']);
    expect(code).toBe(1);
  });

  it.each(cases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    let started = 0;
    const commands = { ...COMMANDS, run: () => makeRunCommand(async () => { started++; throw new Error('must not run'); }) };
    const cap = capture();
    const code = await main(argvOf(c), cap.io, commands);
    expect(cap.err()).toMatch(c.says);
    expect(code).toBe(2);
    expect(started).toBe(0);
    expect(liveChildren()).toHaveLength(0);
  });
});

describe('the real CLI', () => {
  it('exits 2 with the message, as a process', async () => {
    const file = join(dir, 'cli-wait.json');
    const s = valid();
    UNEXPORT(s, (x) => { x.wait = 'forever'; });
    writeFileSync(file, JSON.stringify(s));
    const r = await runCli(['run', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/steps\[9\]\.wait: "forever" is not allowed \(allowed: one of none, effect, released/);
    expect(r.stderr).toContain(file);
    expect(r.stdout).toBe('');
  });
});
