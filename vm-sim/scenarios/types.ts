/**
 * Scenario format, shared by JSON files and TypeScript modules.
 *
 * A scenario names its domains (name, memory) and either lists steps
 * (declarative: JSON or TypeScript) or gives a run(ctx) function
 * (programmatic: TypeScript), which may itself run steps with ctx.step().
 * Parameters have defaults here and can be overridden on the command line
 * (--param frames=50); a string "$name" anywhere in a step or a domain is
 * replaced by the parameter's value.
 */
import type { ScenarioContext } from './context.ts';

/** A parameter value. */
export type ParamValue = number | string | boolean;

/** Parameters by name. */
export type Params = Record<string, ParamValue>;

/** A parameter's declaration: type, range, default and meaning (`hdmabuf run NAME --help` lists them). */
export interface ParamDecl {
  type: 'integer' | 'number' | 'string' | 'boolean';
  default: ParamValue;
  /** Smallest and largest value (integer, number). */
  minimum?: number;
  maximum?: number;
  /** Allowed values (string). */
  enum?: string[];
  description: string;
}

/**
 * A domain: name, guest RAM ("64MiB", "2GiB", a byte count, or "$param"), grant-table frames; and, for an
 * outside domain, the command that runs as it instead of this project's VM (README, "Outside domains").
 */
export interface DomainSpec {
  name: string;
  memory: number | string;
  /** Grant-table limit in 4 KiB frames of 512 entries (default 64, Xen's). */
  maxGrantFrames?: number | string;
  /**
   * An outside domain: this program and its arguments (argv, no shell; run in the launcher's working
   * directory) run as the domain, started as protocol/SPEC.md Appendix B.1 says and ready on its B.2 line.
   * Steps may export to it, refer to it ("@domid:NAME"), and make it import, verify, release (B.3) or die.
   */
  command?: string[];
}

/** Fields every step may have. */
export interface StepCommon {
  /** Label in checks and progress lines (default: derived from the step). */
  name?: string;
  /** The step's result must contain these values (deep, partial match). */
  expect?: Record<string, unknown>;
  /** The step must fail with this error code. */
  expectError?: string;
  /** Time the step may take (default 60 s). */
  timeoutMs?: number | string;
}

/** A buffer's shape: a byte count, or a framebuffer (width, height, format, stride) whose info travels as private data. */
export interface BufferShape {
  bytes?: number | string;
  width?: number | string;
  height?: number | string;
  /** RGBA8888 (default), BGRA8888, RGBX8888, or a 4-character fourcc. */
  format?: string;
  stride?: number | string;
}

/** Allocates (once) a buffer in `from` and exports it to each of `to`. */
export interface ExportStep extends StepCommon, BufferShape {
  do: 'export';
  from: string;
  to: string | string[];
  buffer: string;
  access?: 'ro' | 'rw';
  /** Pages no two of which are adjacent (worst case for mapping). */
  scattered?: boolean | string;
  dirFormat?: 'multilevel' | 'linked';
  /** Private data as text (when not a framebuffer). */
  priv?: string;
}

/** Waits for the buffer's NEW_IMPORT event in `into`, then opens an fd on it (maps the pages). */
export interface ImportStep extends StepCommon {
  do: 'import';
  into: string;
  buffer: string;
}

/** Writes pattern `seed` over the buffer: through own pages (exporter) or the mapping (importer, rw). */
export interface WriteStep extends StepCommon {
  do: 'write';
  in: string;
  buffer: string;
  seed: number | string;
}

/** Checks pattern `seed` over the buffer, every byte, through own pages or the mapping. */
export interface VerifyStep extends StepCommon {
  do: 'verify';
  in: string;
  buffer: string;
  seed: number | string;
}

/** Frames drawn in `from` and handed to `to` (SIM_FRAME_HANDOFF), checked there and handed back. */
export interface HandoffStep extends StepCommon {
  do: 'handoff';
  from: string;
  to: string;
  /** Buffers to cycle through (default: every buffer `from` exported to `to`). */
  buffers?: string[];
  frames: number | string;
  /** What the receiver checks: full (every pixel, default), stamp (3 words), none. */
  check?: 'full' | 'stamp' | 'none';
  /** What the sender draws: full (default), stamp, none. */
  draw?: 'full' | 'stamp' | 'none';
  /** Handoffs outstanding at most (default 1). */
  inFlight?: number | string;
}

/** Closes the importer's fd (the last one unmaps). */
export interface ReleaseStep extends StepCommon {
  do: 'release';
  in: string;
  buffer: string;
}

/** Unexports (to one importer, or all); optionally after a delay; waits as asked. */
export interface UnexportStep extends StepCommon {
  do: 'unexport';
  in: string;
  buffer: string;
  to?: string;
  delayMs?: number | string;
  /** none: return at once; effect: until the importer was told (default); released: until fully released. */
  wait?: 'none' | 'effect' | 'released';
}

/** Drops the exporter's own reference to the buffer (it is freed once every export of it is released). */
export interface FreeStep extends StepCommon {
  do: 'free';
  in: string;
  buffer: string;
}

/** QUERY of the buffer in `in` (exporter: the export to `to`, or the only one). */
export interface QueryStep extends StepCommon {
  do: 'query';
  in: string;
  buffer: string;
  to?: string;
}

/** Kills a domain's process (default SIGKILL: a crash). */
export interface KillStep extends StepCommon {
  do: 'kill';
  domain: string;
  signal?: string;
}

/**
 * Waits for an event in `in`: a VM event by name (peerDied, ...), 'newImport'
 * (the next NEW_IMPORT, or `buffer`'s), or 'released' (`buffer`'s export fully
 * released).
 */
export interface WaitStep extends StepCommon {
  do: 'wait';
  in: string;
  event: string;
  buffer?: string;
  to?: string;
  /** For VM events: the event's data must contain these values. */
  match?: Record<string, unknown>;
}

/**
 * Any VM command by name. In args, strings "@domid:<domain>", "@buf:<buffer>",
 * "@hid:<buffer>:<importer>", "@fd:<buffer>:<importer>" are replaced by the ids.
 */
export interface CallStep extends StepCommon {
  do: 'call';
  in: string;
  cmd: string;
  args?: Record<string, unknown>;
}

/** Waits a while (scenario time, e.g. while a delayed unexport is pending). */
export interface PauseStep extends StepCommon {
  do: 'pause';
  ms: number | string;
}

/** Runs steps several times. */
export interface RepeatStep extends StepCommon {
  do: 'repeat';
  times: number | string;
  steps: Step[];
}

/** Any step. */
export type Step = ExportStep | ImportStep | WriteStep | VerifyStep | HandoffStep | ReleaseStep | UnexportStep | FreeStep | QueryStep | KillStep | WaitStep | CallStep | PauseStep | RepeatStep;

/** Step kinds. */
export type StepKind = Step['do'];

/** A scenario. */
export interface Scenario {
  name: string;
  description: string;
  /** Parameters: declarations, or (in short) just default values. */
  params?: Record<string, ParamDecl | ParamValue>;
  /** Domains, or a function of the parameters (sizes that follow them). */
  domains: DomainSpec[] | ((params: Params) => DomainSpec[]);
  steps?: Step[];
  /** Programmatic body (TypeScript scenarios); runs after the steps, if both are given. */
  run?: (ctx: ScenarioContext) => Promise<void>;
}

/** Identity helper that types a TypeScript scenario module's default export. */
export function defineScenario(s: Scenario): Scenario {
  return s;
}
