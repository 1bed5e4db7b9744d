/**
 * Vitest setup file: with HDMABUF_TRANSITION_LOG=DIR, each test file's
 * worker records the transitions the code takes (vm-sim/trace/transition-log.ts);
 * without it, nothing happens.
 */
import { startTransitionLog } from '../../vm-sim/trace/transition-log.ts';

startTransitionLog();
