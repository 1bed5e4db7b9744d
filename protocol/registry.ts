/**
 * Every declared message, by type name. Layers add their declaration modules
 * here, and nowhere else, so the codec and SPEC.md see one table.
 */
import type { MessageDecl } from './message.ts';
import * as control from './messages/control.ts';
import * as dmabuf from './messages/dmabuf.ts';
import * as dmabufSync from './messages/dmabuf-sync.ts';
import * as evtchn from './messages/evtchn.ts';
import * as fence from './messages/fence.ts';
import * as grant from './messages/grant.ts';
import * as session from './messages/session.ts';
import * as sim from './messages/sim.ts';

/** Declaration modules, in the order SPEC.md presents them. */
export const declarationModules: ReadonlyArray<Readonly<Record<string, unknown>>> = [session, grant, evtchn, control, dmabuf, fence, dmabufSync, sim];

function collect(): ReadonlyMap<string, MessageDecl> {
  const all = new Map<string, MessageDecl>();
  for (const mod of declarationModules) {
    // Sorted by type so the order does not depend on how a loader builds module namespaces.
    const decls = Object.values(mod).filter((v) => typeof v === 'object' && v !== null && 'kind' in v && 'type' in v) as MessageDecl[];
    decls.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
    for (const value of decls) {
      const decl = value;
      if (all.has(decl.type)) throw new Error(`message type ${decl.type} declared twice`);
      all.set(decl.type, decl);
    }
  }
  return all;
}

/** Every declared message by type. */
export const messages: ReadonlyMap<string, MessageDecl> = collect();

/** The declaration of `type` if it exists in protocol version `version`. */
export function lookupMessage(type: string, version: number): MessageDecl | undefined {
  const decl = messages.get(type);
  return decl && decl.since <= version ? decl : undefined;
}
