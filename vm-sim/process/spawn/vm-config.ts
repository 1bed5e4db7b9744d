/**
 * What a VM process is told at launch: which domain it is, how to reach the
 * backend, where its memory lives, and which command modules to load. It
 * travels as JSON in one environment variable (the token is a secret: not on
 * the command line).
 */

import type { GuestKernelBootOptions } from '../../../src/guest/kernel.ts';

/** The environment variable that carries the VmConfig. */
export const VM_CONFIG_ENV = 'HDMABUF_VM_CONFIG';

/**
 * Launch configuration of one VM: the kernel's boot options that travel as
 * JSON (the domain, the backend, the memory files, the HELLO version), and
 * the command modules to load.
 */
export interface VmConfig extends Pick<GuestKernelBootOptions, 'url' | 'domid' | 'token' | 'ramPath' | 'grantTablePath' | 'memPages' | 'maxGrantFrames' | 'name' | 'maxVersion'> {
  /** Names of the command modules to load (default: all of vm-sim/process/commands/modules.ts). */
  modules?: string[];
}

/** Parses and checks a VmConfig; throws with the offending field. */
export function parseVmConfig(text: string | undefined): VmConfig {
  if (!text) throw new Error(`${VM_CONFIG_ENV} is not set: a VM process is started by the launcher (spawnVm)`);
  const raw = JSON.parse(text) as Record<string, unknown>;
  const str = (k: string): string => {
    const v = raw[k];
    if (typeof v !== 'string' || v.length === 0) throw new Error(`${VM_CONFIG_ENV}.${k} must be a non-empty string`);
    return v;
  };
  const int = (k: string): number => {
    const v = raw[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${VM_CONFIG_ENV}.${k} must be a non-negative integer`);
    return v;
  };
  const config: VmConfig = {
    url: str('url'), domid: int('domid'), token: str('token'), ramPath: str('ramPath'),
    grantTablePath: str('grantTablePath'), memPages: int('memPages'), maxGrantFrames: int('maxGrantFrames'),
  };
  if (raw.name !== undefined) config.name = str('name');
  if (raw.modules !== undefined) {
    if (!Array.isArray(raw.modules) || !raw.modules.every((m) => typeof m === 'string')) throw new Error(`${VM_CONFIG_ENV}.modules must be an array of names`);
    config.modules = raw.modules as string[];
  }
  if (raw.maxVersion !== undefined) {
    const v = int('maxVersion');
    if (v < 1 || v > 0xffff) throw new Error(`${VM_CONFIG_ENV}.maxVersion must be a protocol version (1 to 65535)`);
    config.maxVersion = v;
  }
  return config;
}
