/**
 * Steps of a buffer's life, mapped onto the driver's VM commands
 * (dmabuf-commands.ts): export (dmabuf.alloc, sim.framebufferPriv,
 * dmabuf.export), import (dmabuf.readEvent until the buffer's NEW_IMPORT,
 * dmabuf.exportFd), release (dmabuf.release), unexport (dmabuf.unexport,
 * dmabuf.waitReleased), free (dmabuf.put), query (dmabuf.query).
 */
import { decodeFramebufferInfo, FORMATS, type FramebufferInfo } from '../../process/sim/framebuffer-info.ts';
import { formatBytes } from '../units.ts';
import type { ScenarioContext } from '../context.ts';
import type { ExportStep, FreeStep, ImportStep, QueryStep, ReleaseStep, UnexportStep } from '../types.ts';
import type { StepExecutor } from './executor.ts';
import { nextImportEvent } from './imports.ts';
import { importIntoOutside, releaseInOutside } from './outside.ts';
import { badValue, bool, int } from './values.ts';

/** Bytes and framebuffer info of an export step's shape. */
function shapeOf(s: ExportStep): { bytes: number; framebuffer: FramebufferInfo | undefined; formatName: string | undefined } {
  if (s.width !== undefined || s.height !== undefined) {
    const width = int(s.width, 'width');
    const height = int(s.height, 'height');
    const formatName = s.format ?? 'RGBA8888';
    const fmt = FORMATS[formatName];
    if (!fmt && !/^[ -~]{4}$/.test(formatName)) throw badValue(`format ${formatName} is neither ${Object.keys(FORMATS).join(', ')} nor a 4-character fourcc`);
    const stride = int(s.stride, 'stride', width * (fmt?.bpp ?? 4));
    if (stride < width * (fmt?.bpp ?? 1)) throw badValue(`stride ${stride} is less than a row of ${width} pixels`);
    return { bytes: stride * height, framebuffer: { width, height, stride, format: fmt?.fourcc ?? formatName }, formatName };
  }
  return { bytes: int(s.bytes, 'bytes'), framebuffer: undefined, formatName: undefined };
}

/** Exports a buffer (allocated on first use) to one or more domains. */
export const exportStep: StepExecutor<ExportStep> = async (ctx, s, timeoutMs) => {
  const from = ctx.vm(s.from);
  const targets = Array.isArray(s.to) ? s.to : [s.to];
  let rec = ctx.buffers.get(s.buffer);
  if (rec && rec.exporter !== s.from) throw badValue(`buffer "${s.buffer}" was exported by ${rec.exporter}, not ${s.from}`);
  const shape = shapeOf(s);
  if (!rec) {
    const a = await from.call<{ buf: number; size: number; nents: number; runs: number }>('dmabuf.alloc', { bytes: shape.bytes, scattered: bool(s.scattered, 'scattered', false) }, timeoutMs);
    rec = { label: s.buffer, exporter: s.from, buf: a.buf, size: a.size, nents: a.nents, runs: a.runs, framebuffer: shape.framebuffer, hids: new Map(), fds: new Map(), freed: false };
    ctx.buffers.set(s.buffer, rec);
  }
  const fb = shape.framebuffer;
  const priv = fb
    ? (await from.call<{ priv: Uint8Array }>('sim.framebufferPriv', { width: fb.width, height: fb.height, stride: fb.stride, format: shape.formatName }, timeoutMs)).priv
    : s.priv !== undefined ? new TextEncoder().encode(s.priv) : undefined;
  const hids: Record<string, string> = {};
  for (const to of targets) {
    const r = await from.call<{ hid: string }>('dmabuf.export', {
      buf: rec.buf, domid: ctx.domid(to), access: s.access ?? 'ro',
      ...(priv ? { priv } : {}), ...(s.dirFormat ? { dirFormat: s.dirFormat } : {}),
    }, timeoutMs);
    rec.hids.set(to, r.hid);
    hids[to] = r.hid;
  }
  const what = fb ? `${fb.width}x${fb.height} ${shape.formatName ?? fb.format}, ` : '';
  return {
    result: { buffer: rec.label, size: rec.size, nents: rec.nents, runs: rec.runs, hids, privBytes: priv?.byteLength ?? 0 },
    detail: `${what}${formatBytes(rec.size)}, ${rec.nents} pages in ${rec.runs} run${rec.runs === 1 ? '' : 's'}${priv ? `, ${priv.byteLength} B of private data` : ''}`,
  };
};

/** Imports on the buffer's NEW_IMPORT event: reads the event, then opens an fd (the first maps the pages). */
export const importStep: StepExecutor<ImportStep> = async (ctx, s, timeoutMs) => {
  const outside = ctx.outside(s.into);
  if (outside) return importIntoOutside(ctx, outside, s, timeoutMs);
  const vm = ctx.vm(s.into);
  const rec = ctx.buffer(s.buffer);
  const hid = ctx.hid(s.buffer, s.into);
  const ev = await nextImportEvent(ctx, vm, hid, timeoutMs);
  const fd = await vm.call<{ fd: number; size: number }>('dmabuf.exportFd', { hid }, timeoutMs);
  rec.fds.set(s.into, fd.fd);
  const priv = ev.priv instanceof Uint8Array ? ev.priv : new Uint8Array(0);
  const framebuffer = decodeFramebufferInfo(priv) ?? null;
  ctx.count('importsMapped', 1);
  ctx.count('bytesShared', fd.size);
  return {
    result: { fd: fd.fd, size: fd.size, exporter: ev.exporter, access: ev.access, privBytes: priv.byteLength, framebuffer },
    detail: `on NEW_IMPORT; ${formatBytes(fd.size)} mapped${framebuffer ? `; private data says ${framebuffer.width}x${framebuffer.height}, stride ${framebuffer.stride}, ${framebuffer.format}` : ''}`,
  };
};

function fdOf(ctx: ScenarioContext, label: string, domain: string): number {
  const fd = ctx.buffer(label).fds.get(domain);
  if (fd === undefined) throw badValue(`${domain} has no fd open on "${label}" (import it first)`);
  return fd;
}

/** Closes the importer's fd on the buffer. */
export const releaseStep: StepExecutor<ReleaseStep> = async (ctx, s, timeoutMs) => {
  const outside = ctx.outside(s.in);
  if (outside) return releaseInOutside(ctx, outside, s, timeoutMs);
  const fd = fdOf(ctx, s.buffer, s.in);
  const r = await ctx.vm(s.in).call<{ viewByteLength: number }>('dmabuf.release', { fd }, timeoutMs);
  ctx.buffer(s.buffer).fds.delete(s.in);
  return { result: r, detail: r.viewByteLength === 0 ? 'last fd: unmapped, view detached' : 'fd closed' };
};

/** Unexports the buffer from one importer or all of them. */
export const unexportStep: StepExecutor<UnexportStep> = async (ctx, s, timeoutMs) => {
  const rec = ctx.buffer(s.buffer);
  if (rec.exporter !== s.in) throw badValue(`"${s.buffer}" is exported by ${rec.exporter}; unexport it there`);
  const vm = ctx.vm(s.in);
  const delayMs = int(s.delayMs, 'delayMs', 0);
  const wait = s.wait ?? 'effect';
  const targets = s.to !== undefined ? [s.to] : [...rec.hids.keys()];
  const outcomes: Record<string, unknown> = {};
  for (const to of targets) {
    const hid = ctx.hid(s.buffer, to);
    const done = vm.call<{ outcome: string }>('dmabuf.unexport', { hid, delayMs }, delayMs + timeoutMs);
    if (wait === 'none') {
      // Nobody waits for it now; a failure still fails the run (settled before the end).
      ctx.background.push(done.then(
        (r) => { outcomes[to] = r.outcome; },
        (e: unknown) => { ctx.check(`unexport ${s.buffer} → ${to} (background)`, false, (e as Error).message); },
      ));
      outcomes[to] = 'scheduled';
      continue;
    }
    outcomes[to] = (await done).outcome;
    if (wait === 'released' && outcomes[to] === 'unexported') await vm.call('dmabuf.waitReleased', { hid, timeoutMs }, timeoutMs + 5000);
  }
  const how = wait === 'none' ? `scheduled${delayMs ? ` in ${delayMs} ms` : ''}` : wait === 'released' ? 'took effect; grants ended, pages freed' : 'took effect';
  return { result: { outcomes }, detail: `from ${targets.join(', ')}: ${how}` };
};

/** Drops the exporter's own reference. */
export const freeStep: StepExecutor<FreeStep> = async (ctx, s, timeoutMs) => {
  const rec = ctx.buffer(s.buffer);
  if (rec.exporter !== s.in) throw badValue(`"${s.buffer}" belongs to ${rec.exporter}`);
  await ctx.vm(s.in).call('dmabuf.put', { buf: rec.buf }, timeoutMs);
  rec.freed = true;
  return { result: {}, detail: 'own reference dropped' };
};

/** QUERY of every item. */
export const queryStep: StepExecutor<QueryStep> = async (ctx, s, timeoutMs) => {
  const rec = ctx.buffer(s.buffer);
  const hid = s.in === rec.exporter ? ctx.hid(s.buffer, s.to) : ctx.hid(s.buffer, s.in);
  const q = await ctx.vm(s.in).call<Record<string, unknown>>('dmabuf.query', { hid }, timeoutMs);
  const priv = q.priv instanceof Uint8Array ? q.priv : new Uint8Array(0);
  const result = { ...q, priv: undefined, framebuffer: decodeFramebufferInfo(priv) ?? null };
  return { result, detail: `${q.state}, busy ${String(q.busy)}, unexported ${String(q.unexported)}${q.delayedUnexported ? ', delayed unexport pending' : ''}` };
};
