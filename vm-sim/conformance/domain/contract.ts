/**
 * What `hdmabuf conformance domain` asks of a domain process (protocol/SPEC.md,
 * Appendix B): how the process learns who it is (environment variables), the
 * ready line it prints, and the commands it obeys on stdin, one JSON object a
 * line, answered on stdout. The commands only make the domain do what its own
 * user would (export a buffer, import one, release it, wait on a fence); every
 * check of the suite is made on the wire.
 *
 * This file depends on nothing else of the project, so that a domain written
 * in another language needs only Appendix B.
 */
import { createHash } from 'node:crypto';

/** The environment of the domain process (SPEC Appendix B.1). */
export const DOMAIN_ENV = {
  url: 'HDMABUF_URL',
  domid: 'HDMABUF_DOMID',
  token: 'HDMABUF_TOKEN',
  ramPath: 'HDMABUF_RAM_PATH',
  grantTablePath: 'HDMABUF_GRANT_TABLE_PATH',
  memPages: 'HDMABUF_MEM_PAGES',
  maxGrantFrames: 'HDMABUF_MAX_GRANT_FRAMES',
} as const;

/** What the variables of DOMAIN_ENV carry. */
export interface DomainLaunch {
  url: string;
  domid: number;
  token: string;
  ramPath: string;
  grantTablePath: string;
  memPages: number;
  maxGrantFrames: number;
}

/** The environment for a domain process. */
export function launchEnv(l: DomainLaunch): Record<string, string> {
  return {
    [DOMAIN_ENV.url]: l.url, [DOMAIN_ENV.domid]: String(l.domid), [DOMAIN_ENV.token]: l.token,
    [DOMAIN_ENV.ramPath]: l.ramPath, [DOMAIN_ENV.grantTablePath]: l.grantTablePath,
    [DOMAIN_ENV.memPages]: String(l.memPages), [DOMAIN_ENV.maxGrantFrames]: String(l.maxGrantFrames),
  };
}

/** Reads DOMAIN_ENV; throws naming the variable that is missing or wrong. */
export function readLaunchEnv(env: NodeJS.ProcessEnv): DomainLaunch {
  const str = (k: keyof typeof DOMAIN_ENV): string => {
    const v = env[DOMAIN_ENV[k]];
    if (!v) throw new Error(`${DOMAIN_ENV[k]} is not set (protocol/SPEC.md Appendix B.1)`);
    return v;
  };
  const int = (k: keyof typeof DOMAIN_ENV): number => {
    const n = Number(str(k));
    if (!Number.isInteger(n) || n < 0) throw new Error(`${DOMAIN_ENV[k]} must be a non-negative integer`);
    return n;
  };
  return {
    url: str('url'), domid: int('domid'), token: str('token'), ramPath: str('ramPath'),
    grantTablePath: str('grantTablePath'), memPages: int('memPages'), maxGrantFrames: int('maxGrantFrames'),
  };
}

/** The commands of Appendix B.3, with their arguments and results. */
export interface AgentCommands {
  /** Allocate `pages` pages filled with patternByte(seed, i), export them to `peer`. */
  export: { args: { peer: number; pages: number; seed: number; access: 'ro' | 'rw'; priv: string }; result: { hid: string } };
  /** Unexport at once; answered when the unexport took effect. */
  unexport: { args: { hid: string }; result: Record<string, never> };
  /** Wait until the export reached `freed` (SPEC 11.1). */
  waitReleased: { args: { hid: string; timeoutMs: number }; result: { released: boolean } };
  /** Wait for the NEW_IMPORT event of `hid`, open one fd on it and read the whole buffer; answered once the exporter answered the fd's EXPORT_FD. */
  import: { args: { hid: string; timeoutMs: number }; result: { sha256: string; size: number; priv: string } };
  /** Read the buffer again through the fd opened by `import`. */
  read: { args: { hid: string }; result: { sha256: string } };
  /** Close every fd of the import. */
  release: { args: { hid: string }; result: Record<string, never> };
  /** Take the fences `from` exported under `cookie` (FENCE_EXPORT) and wait for them. */
  fenceWait: { args: { from: number; cookie: number; timeoutMs: number }; result: { status: number } };
  /** As timeline owner: a fence of seqno `seqno` on its own timeline, exported to `peer` under `cookie` (shared first). */
  fenceExport: { args: { peer: number; cookie: number; seqno: number }; result: Record<string, never> };
  /** As timeline owner: signal its timeline up to `seqno` (status 1). */
  fenceSignal: { args: { seqno: number }; result: Record<string, never> };
  /** Close the connection and exit 0. */
  shutdown: { args: Record<string, never>; result: Record<string, never> };
}

/** One command line on the domain's stdin. */
export type AgentRequest = { [K in keyof AgentCommands]: { id: number; cmd: K; args: AgentCommands[K]['args'] } }[keyof AgentCommands];

/** One answer line on the domain's stdout. */
export type AgentReply =
  | { id: number; ok: true; result: Record<string, unknown> }
  | { id: number; ok: false; error: { code: string; message: string } };

/** The first line of the domain's stdout once it said HELLO and is ready for peers. */
export interface AgentReady { ready: true; domid: number }

/** Byte `i` of a buffer exported with `seed` (Appendix B.3). */
export function patternByte(seed: number, i: number): number {
  return (seed + i + (i >>> 12) * 7) & 0xff;
}

/** Fills `view` with the pattern of `seed`. */
export function fillPattern(view: Uint8Array, seed: number): void {
  for (let i = 0; i < view.length; i++) view[i] = patternByte(seed, i);
}

/** The SHA-256 of bytes, as lowercase hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The SHA-256 of `size` pattern bytes of `seed`. */
export function patternSha256(seed: number, size: number): string {
  const b = new Uint8Array(size);
  fillPattern(b, seed);
  return sha256(b);
}
