/**
 * The structure limits of a frame, derived from the declarations (SPEC.md
 * section 3): the longest array and the largest map any declaration allows,
 * and the most values any declared frame holds. The decoder refuses a frame
 * beyond them before building it, so no frame costs more to decode than the
 * largest legitimate one.
 */
import { envelopeFields, errorBodyFields } from './envelope.ts';
import { revisions } from './registry.ts';
import type { FieldType, Fields } from './schema.ts';
import type { StructureLimits } from './plain-msgpack.ts';

/** Values inside a value of this type (not counting the value itself): a map entry counts its key and its value. */
function itemsInside(type: FieldType): number {
  switch (type.kind) {
    case 'array': return type.maxLen * (1 + itemsInside(type.of));
    case 'struct': return itemsInsideFields(type.fields);
    default: return 0;
  }
}

function itemsInsideFields(fields: Fields): number {
  let n = 0;
  for (const f of Object.values(fields)) n += 2 + itemsInside(f.type);
  return n;
}

function largest(type: FieldType, acc: { array: number; map: number }): void {
  if (type.kind === 'array') {
    acc.array = Math.max(acc.array, type.maxLen);
    largest(type.of, acc);
  } else if (type.kind === 'struct') {
    largestOf(type.fields, acc);
  }
}

function largestOf(fields: Fields, acc: { array: number; map: number }): void {
  acc.map = Math.max(acc.map, Object.keys(fields).length);
  for (const f of Object.values(fields)) largest(f.type, acc);
}

/** Computes the limits over every declaration of every version. */
export function deriveStructureLimits(): StructureLimits {
  const acc = { array: 0, map: 0 };
  let body = 0;
  const bodies: Fields[] = [errorBodyFields];
  // Every revision, not only each type's first declaration: a v2 revision may be the larger one.
  for (const decl of [...revisions.values()].flat()) {
    if (decl.kind === 'request') bodies.push(decl.request, decl.response);
    else bodies.push(decl.body);
  }
  for (const fields of bodies) {
    largestOf(fields, acc);
    body = Math.max(body, itemsInsideFields(fields));
  }
  // The envelope: every field of its table (body included) as one map.
  const envelopeEntries = Object.keys(envelopeFields).length + 1;
  acc.map = Math.max(acc.map, envelopeEntries);
  return { maxArray: acc.array, maxMap: acc.map, maxItems: 2 * envelopeEntries + body };
}

/** The limits of this implementation's declarations. */
export const STRUCTURE_LIMITS: StructureLimits = deriveStructureLimits();
