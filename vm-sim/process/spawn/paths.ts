/** Locations of the process entry points, resolved from this file so that any working directory works. */
import { fileURLToPath } from 'node:url';

/** vm-sim/hv-main.ts: the backend process. */
export const HV_MAIN = fileURLToPath(new URL('../../hv-main.ts', import.meta.url));
/** vm-sim/vm-main.ts: one VM process. */
export const VM_MAIN = fileURLToPath(new URL('../../vm-main.ts', import.meta.url));
