/**
 * The scenario format as one JSON Schema (draft 2020-12): scenario files and
 * TypeScript scenarios are checked against it before any process starts, and
 * editors complete a file that names it in `"$schema"`. Built from the
 * registries (step kinds, VM commands, formats, signals) so it cannot drift
 * from them; `npm run schema` writes it to scenario.schema.json (a test
 * checks that the file is current).
 *
 * Every value that may come from a parameter also accepts a "$name"
 * reference; the same schema is applied again after the parameters are
 * substituted, so a parameter's value is range-checked like a literal.
 */
import { MAX_MEM_PAGES, MAX_NAME, PAGE_SIZE } from '../../protocol/limits.ts';
import { vmModules } from '../process/commands/modules.ts';
import { FORMATS } from '../process/sim/framebuffer-info.ts';

/** Bounds of scenario values (each is in the schema, with its meaning). */
export const LIMITS = {
  /** Largest buffer: 1 Mi pages (the exporter's RAM bounds it too). */
  maxBufferBytes: 4 * 1024 ** 3,
  minMemoryBytes: PAGE_SIZE,
  maxMemoryBytes: MAX_MEM_PAGES * PAGE_SIZE,
  /** DOMAIN_CREATE maxGrantFrames is a u16 of at least 1 (SPEC.md, control messages). */
  maxGrantFrames: 0xffff,
  maxPixels: 16384,
  maxStride: 16384 * 16,
  maxSeed: 0xffff_ffff,
  maxFrames: 10_000_000,
  maxInFlight: 64,
  maxDelayMs: 600_000,
  maxTimeoutMs: 3_600_000,
  maxPauseMs: 600_000,
  maxRepeat: 1_000_000,
  maxPriv: 4096,
  /** Most arguments of an outside domain's command (program included). */
  maxCommandArgs: 256,
} as const;

/** Signals a kill step may send. */
export const KILL_SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGSEGV', 'SIGABRT'] as const;

/** Events a wait step may wait for: the launcher's own two, then the VM events. */
export const WAIT_EVENTS = ['newImport', 'released', 'peerDied', 'producer', 'progress'] as const;

/** A "$name" parameter reference. */
export const PARAM_REF = '^\\$[A-Za-z_][A-Za-z0-9_]*$';
/** Size text: 4096, "64MiB", "1.5GiB", "2000kB". */
export const SIZE_TEXT = '^\\s*\\d+(\\.\\d+)?\\s*([kKmMgG]([iI]?[bB])?|[bB])?\\s*$';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/$defs/${name}` });
/** A value, or a "$name" reference to a parameter. */
const orParam = (schema: Json, description: string): Json => ({ description, anyOf: [schema, ref('paramRef')] });
const int = (minimum: number, maximum: number, description: string): Json => orParam({ type: 'integer', minimum, maximum }, description);
const oneOfText = (values: readonly string[], description: string): Json => orParam({ enum: [...values] }, description);

/** VM command names, from the modules a VM loads. */
function commandNames(): string[] {
  return vmModules.flatMap((m) => Object.keys(m.commands)).sort();
}

const common: Json = {
  do: {},
  name: { type: 'string', minLength: 1, maxLength: 200, description: 'Label in checks and progress lines (default: derived from the step).' },
  expect: { type: 'object', description: "The step's result must contain these values (deep, partial match)." },
  expectError: { type: 'string', pattern: '^ERR_[A-Z0-9_]+$', description: 'The step must fail with this error code (an ERR_* code of SPEC.md section 13, or the driver).' },
  timeoutMs: int(1, LIMITS.maxTimeoutMs, `Time the step may take, ms (default 60000; at most ${LIMITS.maxTimeoutMs}).`),
};

/** One step kind: its own fields, the required ones, and what it does. */
function step(kind: string, description: string, fields: Json, required: string[]): Json {
  return {
    type: 'object',
    description,
    properties: { ...common, do: { const: kind }, ...fields },
    required: ['do', ...required],
    additionalProperties: false,
  };
}

const domain = (what: string): Json => ({ ...ref('domainName'), description: what });
const buffer: Json = { ...ref('bufferLabel'), description: 'The buffer, by the label its export step gave it.' };

/** The step kinds, in the order the README lists them. */
function steps(): Record<string, Json> {
  return {
    export: step('export', 'Allocates the buffer in `from` on first use and exports it to each of `to`; a framebuffer (width, height) carries its shape as private data.', {
      from: domain('Exporting domain.'),
      to: { description: 'Importing domain, or a list of them.', anyOf: [ref('domainName'), { type: 'array', items: ref('domainName'), minItems: 1, uniqueItems: true }] },
      buffer: { ...ref('bufferLabel'), description: 'Label that later steps use for this buffer.' },
      bytes: { ...ref('size'), description: `Buffer size: bytes, or text such as "64MiB" (at most ${LIMITS.maxBufferBytes} bytes and the exporter's memory). Or give width and height.` },
      width: int(1, LIMITS.maxPixels, 'Framebuffer width in pixels.'),
      height: int(1, LIMITS.maxPixels, 'Framebuffer height in pixels.'),
      format: orParam({ anyOf: [{ enum: Object.keys(FORMATS) }, { type: 'string', pattern: '^[ -~]{4}$' }] }, `Pixel format: ${Object.keys(FORMATS).join(', ')} (default RGBA8888), or a 4-character DRM fourcc.`),
      stride: int(1, LIMITS.maxStride, 'Bytes per row (default width x bytes per pixel; not less).'),
      access: oneOfText(['ro', 'rw'], 'Importer access: ro (default) or rw.'),
      scattered: orParam({ type: 'boolean' }, 'Pages no two of which are adjacent (worst case for mapping).'),
      dirFormat: oneOfText(['multilevel', 'linked'], 'Page directory layout (SPEC.md, hyper_dmabuf layer): multilevel (default) or linked.'),
      priv: { type: 'string', maxLength: LIMITS.maxPriv, description: 'Private data as text (when not a framebuffer).' },
    }, ['from', 'to', 'buffer']),
    import: step('import', "Waits for the buffer's NEW_IMPORT event in `into`, then opens an fd on it (the first fd maps the pages).", {
      into: domain('Importing domain.'), buffer,
    }, ['into', 'buffer']),
    write: step('write', "Writes pattern `seed` over every byte, through the exporter's own pages or the importer's (rw) mapping.", {
      in: domain('Domain that writes.'), buffer, seed: int(0, LIMITS.maxSeed, 'Pattern seed (a u32).'),
    }, ['in', 'buffer', 'seed']),
    verify: step('verify', 'Checks pattern `seed` over every byte, through own pages or the mapping.', {
      in: domain('Domain that checks.'), buffer, seed: int(0, LIMITS.maxSeed, 'Pattern seed (a u32).'),
    }, ['in', 'buffer', 'seed']),
    handoff: step('handoff', 'Frames drawn in `from`, handed to `to` (SIM_FRAME_HANDOFF), checked there through its mapping, handed back.', {
      from: domain('Drawing domain.'), to: domain('Receiving domain.'),
      buffers: { type: 'array', items: ref('bufferLabel'), minItems: 1, description: 'Buffers to cycle through (default: every buffer `from` exported to `to`).' },
      frames: int(1, LIMITS.maxFrames, 'Frames to hand off.'),
      check: oneOfText(['full', 'stamp', 'none'], 'What the receiver checks: full (every pixel, default), stamp (3 words), none.'),
      draw: oneOfText(['full', 'stamp', 'none'], 'What the sender draws: full (default), stamp, none.'),
      inFlight: int(1, LIMITS.maxInFlight, 'Handoffs outstanding at most (default 1).'),
    }, ['from', 'to', 'frames']),
    release: step('release', "Closes the importer's fd (the last one unmaps).", { in: domain('Importing domain.'), buffer }, ['in', 'buffer']),
    unexport: step('unexport', 'Unexports from one importer or every one, optionally after a delay.', {
      in: domain('Exporting domain.'), buffer, to: domain('Only this importer (default: every one).'),
      delayMs: int(0, LIMITS.maxDelayMs, 'Delay before the unexport takes effect, ms.'),
      wait: oneOfText(['none', 'effect', 'released'], 'none: return at once; effect: until the importer was told (default); released: until fully released.'),
    }, ['in', 'buffer']),
    free: step('free', "Drops the exporter's own reference (freed once every export is released).", { in: domain('Exporting domain.'), buffer }, ['in', 'buffer']),
    query: step('query', 'QUERY of the buffer: every query item.', {
      in: domain('Domain that asks.'), buffer, to: domain('For the exporter: the export to this importer.'),
    }, ['in', 'buffer']),
    kill: step('kill', "Kills a domain's process (a crash).", {
      domain: domain('Domain to kill.'),
      signal: oneOfText(KILL_SIGNALS, 'Signal (default SIGKILL).'),
    }, ['domain']),
    wait: step('wait', "Waits for an event in `in`: newImport, released (the buffer's export fully released), or a VM event.", {
      in: domain('Domain that waits.'),
      event: oneOfText(WAIT_EVENTS, 'Event name.'),
      buffer: { ...ref('bufferLabel'), description: 'For newImport and released: the buffer.' },
      to: domain('For released: the importer.'),
      match: { type: 'object', description: "For VM events: the event's data must contain these values." },
    }, ['in', 'event']),
    call: step('call', 'Any VM command by name; "@domid:D", "@buf:B", "@hid:B:D", "@fd:B:D" strings in args are replaced by ids.', {
      in: domain('Domain that runs the command.'),
      cmd: { enum: commandNames(), description: 'VM command.' },
      args: { type: 'object', description: "The command's arguments." },
    }, ['in', 'cmd']),
    pause: step('pause', 'Waits a while (scenario time).', { ms: int(0, LIMITS.maxPauseMs, 'Milliseconds.') }, ['ms']),
    repeat: step('repeat', 'Runs the nested steps several times.', {
      times: int(1, LIMITS.maxRepeat, 'Repetitions.'),
      steps: { type: 'array', items: ref('step'), description: 'Steps to repeat.' },
    }, ['times', 'steps']),
  };
}

/** A parameter's declaration. */
const paramDecl: Json = {
  type: 'object',
  description: 'A parameter: its type, range and default, and what it means.',
  properties: {
    type: { enum: ['integer', 'number', 'string', 'boolean'], description: 'Type of the value.' },
    default: { type: ['number', 'string', 'boolean'], description: 'Value when --param does not give one.' },
    minimum: { type: 'number', description: 'Smallest value (integer, number).' },
    maximum: { type: 'number', description: 'Largest value (integer, number).' },
    enum: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Allowed values (string).' },
    description: { type: 'string', description: 'What the parameter means.' },
  },
  required: ['type', 'default', 'description'],
  additionalProperties: false,
};

/** The whole schema. */
export function scenarioSchema(): Json {
  const kinds = steps();
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://hdmabuf.invalid/scenario.schema.json',
    title: 'hdmabuf scenario',
    description: 'A scenario for `hdmabuf run`: domains (VMs) and the steps run across them (README, "Scenario files").',
    type: 'object',
    properties: {
      $schema: { type: 'string', description: 'This schema, for editors.' },
      name: { ...ref('name'), description: 'Scenario name.' },
      description: { type: 'string', description: 'One line: what the scenario shows.' },
      params: {
        type: 'object',
        description: 'Parameters by name (--param NAME=VALUE overrides): a declaration, or just the default value.',
        propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
        additionalProperties: { anyOf: [paramDecl, { type: ['number', 'string', 'boolean'] }] },
      },
      domains: { type: 'array', minItems: 1, items: ref('domain'), description: 'The domains, one process each: a VM of this project, or an outside domain (command).' },
      steps: { type: 'array', items: ref('step'), description: 'Steps, run in order; a failing step ends the scenario.' },
    },
    patternProperties: { '^\\$': { description: 'Ignored ("$comment").' } },
    required: ['name', 'description', 'domains'],
    additionalProperties: false,
    $defs: {
      paramRef: { type: 'string', pattern: PARAM_REF, description: 'A "$name" reference to a parameter.' },
      name: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_-]*$', maxLength: MAX_NAME },
      domainName: { anyOf: [ref('name'), ref('paramRef')] },
      bufferLabel: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$', maxLength: MAX_NAME },
      size: orParam({ anyOf: [{ type: 'integer', minimum: 1, maximum: LIMITS.maxBufferBytes }, { type: 'string', pattern: SIZE_TEXT }] }, 'A size: a byte count, or text such as "64MiB".'),
      domain: {
        type: 'object',
        properties: {
          name: { ...ref('name'), description: 'Domain name.' },
          memory: { ...orParam({ anyOf: [{ type: 'integer', minimum: LIMITS.minMemoryBytes, maximum: LIMITS.maxMemoryBytes }, { type: 'string', pattern: SIZE_TEXT }] }, `Guest RAM: bytes or text such as "64MiB" (one page to ${LIMITS.maxMemoryBytes / 1024 ** 3} GiB).`) },
          maxGrantFrames: int(1, LIMITS.maxGrantFrames, 'Grant-table limit in 4 KiB frames of 512 entries (default 64, Xen\'s).'),
          command: {
            type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, maxItems: LIMITS.maxCommandArgs,
            description: 'An outside domain: this program and its arguments (no shell; run in the launcher\'s working directory) run as the domain instead of this project\'s VM, started as protocol/SPEC.md Appendix B says. Steps may export to it, name it in "@domid:NAME", and make it import, verify, release or die.',
          },
        },
        required: ['name', 'memory'],
        additionalProperties: false,
      },
      step: {
        type: 'object',
        description: 'One step; `do` says which.',
        required: ['do'],
        properties: { do: { enum: Object.keys(kinds) } },
        discriminator: { propertyName: 'do' },
        oneOf: Object.values(kinds),
      },
    },
  };
}
