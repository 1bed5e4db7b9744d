/**
 * Sends a workload keeps in flight while it goes on (a window of exported
 * fences) may reject long before the loop awaits them: the peer or the
 * backend died. Left without a handler until then, the rejection is
 * "unhandled" and Node ends the whole VM process, instead of failing the
 * step that started the send.
 */

/**
 * Marks `p` as handled the moment it starts; awaiting the returned promise
 * still sees its rejection, so the loop reports it as an error of its step.
 */
export function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}
