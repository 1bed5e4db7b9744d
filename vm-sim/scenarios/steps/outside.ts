/**
 * The steps an outside domain takes part in as the domain doing the work
 * (README, "Outside domains"), through the commands of protocol/SPEC.md
 * Appendix B.3 it obeys: import (B.3 `import`: wait for the NEW_IMPORT, open
 * one fd, read the whole buffer through its mapping), verify (B.3 `read`:
 * the SHA-256 of the bytes, compared with that of the write step's pattern)
 * and release (B.3 `release`). The launcher sees no fd id of the domain's:
 * the buffer's record holds 0 for it.
 */
import { createHash } from 'node:crypto';
import { decodeFramebufferInfo } from '../../process/sim/framebuffer-info.ts';
import { fillPattern } from '../../process/commands/dmabuf-commands.ts';
import type { OutsideDomain } from '../../launcher/outside-domain.ts';
import type { ScenarioContext } from '../context.ts';
import type { ImportStep, ReleaseStep, VerifyStep } from '../types.ts';
import { formatBytes } from '../units.ts';
import type { StepOutcome } from './executor.ts';
import { int } from './values.ts';

/** What the record of a buffer holds as the fd of an outside domain (its own fd ids are not seen). */
export const OUTSIDE_FD = 0;

/** The SHA-256 (hex) of `size` bytes of the write step's pattern `seed`. */
export function patternSha256(seed: number, size: number): string {
  const bytes = new Uint8Array(size);
  fillPattern(bytes, seed);
  return createHash('sha256').update(bytes).digest('hex');
}

/** An import step into an outside domain (B.3 `import`). */
export async function importIntoOutside(ctx: ScenarioContext, d: OutsideDomain, s: ImportStep, timeoutMs: number): Promise<StepOutcome> {
  const rec = ctx.buffer(s.buffer);
  const hid = ctx.hid(s.buffer, s.into);
  const r = await d.call('import', { hid, timeoutMs }, timeoutMs + 5000);
  rec.fds.set(s.into, OUTSIDE_FD);
  const priv = Buffer.from(r.priv, 'hex');
  const framebuffer = decodeFramebufferInfo(new Uint8Array(priv)) ?? null;
  ctx.count('importsMapped', 1);
  ctx.count('bytesShared', r.size);
  return {
    result: { size: r.size, sha256: r.sha256, privBytes: priv.byteLength, framebuffer },
    detail: `outside domain: on NEW_IMPORT; ${formatBytes(r.size)} read through its mapping (sha256 ${r.sha256.slice(0, 12)}…)`,
  };
}

/** A verify step in an outside domain: B.3 `read`, its SHA-256 against the pattern's. */
export async function verifyInOutside(ctx: ScenarioContext, d: OutsideDomain, s: VerifyStep, timeoutMs: number): Promise<StepOutcome> {
  const rec = ctx.buffer(s.buffer);
  if (!rec.fds.has(s.in)) throw Object.assign(new Error(`${s.in} has no fd open on "${s.buffer}" (import it first)`), { code: 'ERR_BAD_SCENARIO' });
  const seed = int(s.seed, 'seed');
  const { sha256 } = await d.call('read', { hid: ctx.hid(s.buffer, s.in) }, timeoutMs);
  const expected = patternSha256(seed, rec.size);
  const ok = sha256 === expected;
  if (!ok && s.expect === undefined) throw Object.assign(new Error(`${s.buffer} in ${s.in}: the bytes read (sha256 ${sha256}) are not pattern ${seed} (sha256 ${expected})`), { code: 'ERR_VERIFY' });
  if (ok) ctx.count('bytesVerifiedThroughMappings', rec.size);
  return { result: { ok, sha256 }, detail: `seed ${seed} ${ok ? 'matches' : 'differs'} over ${formatBytes(rec.size)}, read by the outside domain through its mapping` };
}

/** A release step in an outside domain (B.3 `release`: it unmaps, then sends the release operation). */
export async function releaseInOutside(ctx: ScenarioContext, d: OutsideDomain, s: ReleaseStep, timeoutMs: number): Promise<StepOutcome> {
  const rec = ctx.buffer(s.buffer);
  if (!rec.fds.has(s.in)) throw Object.assign(new Error(`${s.in} has no fd open on "${s.buffer}" (import it first)`), { code: 'ERR_BAD_SCENARIO' });
  await d.call('release', { hid: ctx.hid(s.buffer, s.in) }, timeoutMs);
  rec.fds.delete(s.in);
  return { result: {}, detail: 'outside domain: unmapped, fd closed' };
}
