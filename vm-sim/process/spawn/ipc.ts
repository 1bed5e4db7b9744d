/**
 * Messages between the launcher and its child processes, over Node's IPC
 * channel (child_process.fork). VM children use the 'advanced' serialization
 * (structured clone), so typed arrays travel as they are.
 *
 *   child -> launcher  { type: 'ready', ... }          once, when it can serve
 *   launcher -> vm     { type: 'call', id, cmd, args }
 *   vm -> launcher     { type: 'result', id, ok: true, value }
 *                      { type: 'result', id, ok: false, error: { code, message, details? } }
 *   vm -> launcher     { type: 'event', name, data }   unsolicited notifications
 *
 * A child exits on its own when the channel disconnects (the launcher died).
 */

/** A VM's ready report. */
export interface VmReadyMessage {
  type: 'ready';
  domid: number;
  pid: number;
}

/** The backend's ready report (sent by vm-sim/hv-main.ts). */
export interface HvReadyMessage {
  type: 'ready';
  url: string;
  controlToken: string;
  /** Token of a read-only observer (SPEC.md 9.6). */
  observerToken: string;
  runTag: string;
  pid: number;
}

/** A command for a VM. */
export interface CallMessage {
  type: 'call';
  id: number;
  cmd: string;
  args: unknown;
}

/** An error as it crosses the IPC channel. */
export interface IpcErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

/** The outcome of a command. */
export type ResultMessage =
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: IpcErrorBody };

/** An unsolicited notification from a VM (e.g. a peer died). */
export interface VmEventMessage {
  type: 'event';
  name: string;
  data: unknown;
}

/** Narrows an IPC message to an object with a string `type`. */
export function isTyped(msg: unknown): msg is { type: string } & Record<string, unknown> {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string';
}

/** Converts anything thrown into an IPC error body, keeping a stable code when it has one. */
export function toIpcError(e: unknown): IpcErrorBody {
  if (e instanceof Error) {
    const { code: rawCode, details } = e as Error & { code?: unknown; details?: unknown };
    const code = typeof rawCode === 'string' ? rawCode : 'ERR_INTERNAL';
    return details === undefined ? { code, message: e.message } : { code, message: e.message, details };
  }
  return { code: 'ERR_INTERNAL', message: String(e) };
}

/** An error that came back from a child, or a child that died under a call. */
export class ChildCallError extends Error {
  readonly code: string;
  readonly details: unknown;
  /** The command that failed. */
  readonly cmd: string;

  constructor(cmd: string, body: IpcErrorBody) {
    super(`${cmd}: ${body.code}: ${body.message}`);
    this.name = 'ChildCallError';
    this.code = body.code;
    this.details = body.details;
    this.cmd = cmd;
  }
}
