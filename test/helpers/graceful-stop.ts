/**
 * The end of a multi-process test, the way the launcher's close cascade
 * ends a run (vm-sim/launcher/run.ts): every live VM asked to shut down
 * (kernel.shutdown; SIGTERM if it cannot answer), the control connection
 * closed, the backend SIGTERMed; a process still running after the grace
 * period is a leak and is named HERE, before the SIGKILL that follows (a
 * count taken after the kill could never be anything but 0). Every child
 * is reaped.
 *
 *   expect(await stopGracefully({ vms, hv, controls: [control] })).toEqual([]);
 */
import type { HvClient } from '../../src/transport/hv-client.ts';
import { SHUTDOWN_GRACE_MS } from '../../vm-sim/launcher/run.ts';
import { liveChildren, reapAll } from '../../vm-sim/process/spawn/child.ts';
import type { HvProcess } from '../../vm-sim/process/spawn/spawn-hv.ts';
import type { VmProcess } from '../../vm-sim/process/spawn/spawn-vm.ts';

/** The processes of a test, to stop. */
export interface StopTargets {
  vms?: readonly VmProcess[];
  hv?: HvProcess | undefined;
  /** Closed after the VMs stopped and before the backend's SIGTERM (as the launcher does). */
  controls?: readonly HvClient[];
  /**
   * Runs once every VM has exited, while the backend still runs, before the controls close (the launcher's
   * second HV_STATS: test/helpers/leaks.ts expectNothingAfterVmsExited). Skipped when a VM is still running
   * (named as leaked) or the backend is gone. Its failure is rethrown after everything is stopped.
   */
  afterVmsExited?: () => Promise<void>;
}

/**
 * Stops the targets gracefully, then SIGKILLs and reaps whatever still runs
 * (any child of this process, listed or not). Resolves with the names of
 * the processes that had to be killed: the leaked ones.
 */
export async function stopGracefully(t: StopTargets, graceMs = SHUTDOWN_GRACE_MS): Promise<string[]> {
  await Promise.all((t.vms ?? []).map((vm) => vm.shutdownGracefully(graceMs)));
  let failed: { error: unknown } | undefined;
  if (t.afterVmsExited && t.hv && !t.hv.child.exit && (t.vms ?? []).every((vm) => vm.child.exit)) {
    try {
      await t.afterVmsExited();
    } catch (error) {
      failed = { error };
    }
  }
  for (const c of t.controls ?? []) await c.close().catch(() => undefined); // already closed by the test: nothing to do
  if (t.hv && !t.hv.child.exit) {
    t.hv.child.kill('SIGTERM');
    await t.hv.child.exitWithin(graceMs);
  }
  const lingering = liveChildren();
  const leaked = lingering.map((c) => `${c.name} (pid ${c.pid})`);
  await reapAll(0);
  if (failed) throw failed.error;
  return leaked;
}
