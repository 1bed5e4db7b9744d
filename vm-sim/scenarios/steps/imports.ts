/**
 * NEW_IMPORT events as the launcher reads them from an importer VM
 * (dmabuf.readEvent, a blocking read of the driver's queue): events of other
 * buffers met on the way are kept for the steps that will want them.
 */
import type { ScenarioContext } from '../context.ts';
import type { VmHandle } from '../../launcher/vm-handle.ts';

/** Most events kept per domain. */
const MAX_STASH = 4096;

/** The next NEW_IMPORT event of `vm` (of buffer id `hid`, if given); ERR_TIMEOUT after timeoutMs. */
export async function nextImportEvent(ctx: ScenarioContext, vm: VmHandle, hid: string | undefined, timeoutMs: number): Promise<Record<string, unknown>> {
  let stash = ctx.stashedImports.get(vm.name);
  if (!stash) ctx.stashedImports.set(vm.name, (stash = []));
  const at = stash.findIndex((e) => hid === undefined || e.hid === hid);
  if (at >= 0) return stash.splice(at, 1)[0]!;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw Object.assign(new Error(`${vm.name}: no NEW_IMPORT event${hid ? ` for ${hid}` : ''} within ${timeoutMs} ms`), { code: 'ERR_TIMEOUT' });
    // The VM-side read times out on its own; the IPC call gets a little longer.
    const ev = await vm.call('dmabuf.readEvent', { timeoutMs: left }, left + 5000);
    if (hid === undefined || ev.hid === hid) return ev;
    stash.push(ev);
    if (stash.length > MAX_STASH) stash.shift();
  }
}
