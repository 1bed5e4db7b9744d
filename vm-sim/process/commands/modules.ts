/**
 * The command modules a VM process can load, by name. A later layer (the
 * hyper_dmabuf driver) adds its module here, from its own file.
 */
import type { VmModule } from './commands.ts';
import { dmabufModule } from './dmabuf-commands.ts';
import { dmabufSyncModule } from './dmabuf-sync-commands.ts';
import { fenceModule } from './fence-commands.ts';
import { kernelModule } from './kernel-commands.ts';
import { simModule } from '../sim/sim-commands.ts';
import { waitModule } from './wait-commands.ts';

/** Every known module, in load order. */
export const vmModules: readonly VmModule[] = [kernelModule, fenceModule, dmabufModule, dmabufSyncModule, simModule, waitModule];
