/**
 * Every declared message, by type name. Layers add their declaration modules
 * here, and nowhere else, so the codec and SPEC.md see one table.
 */
import type { MessageDecl } from './message.ts';
import * as control from './messages/control.ts';
import * as evtchn from './messages/evtchn.ts';
import * as grant from './messages/grant.ts';
import * as session from './messages/session.ts';

/** Declaration modules, in the order SPEC.md presents them. */
export const declarationModules: ReadonlyArray<Readonly<Record<string, unknown>>> = [session, grant, evtchn, control];

function collect(): ReadonlyMap<string, MessageDecl> {
  const all = new Map<string, MessageDecl>();
  for (const mod of declarationModules) {
    for (const value of Object.values(mod)) {
      if (typeof value !== 'object' || value === null || !('kind' in value) || !('type' in value)) continue;
      const decl = value as MessageDecl;
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
