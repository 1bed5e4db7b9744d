/**
 * Renders SPEC.md's generated sections from the declarations, so the spec
 * cannot drift from the code: the message index, each message's field
 * tables, the error table, and every state machine's tables and diagram.
 * A test fails when SPEC.md is stale.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { ErrorCodes } from '../errors.ts';
import { MACHINES } from '../machines/index.ts';
import type { MessageDecl } from '../message.ts';
import { revisions } from '../registry.ts';
import { PACKED_ELEMENTS, type Field, type FieldType, type Fields } from '../schema.ts';
import { renderMachine } from './machine-diagrams.ts';

/** Renders a field type as a short spec string, e.g. `uint 0..65535`. */
export function typeText(type: FieldType): string {
  switch (type.kind) {
    case 'uint':
    case 'int': return `${type.kind} ${type.min}..${type.max}`;
    case 'bool': return 'bool';
    case 'str': return `str ≤${type.maxLen}${type.pattern ? ` \`${type.pattern.source}\`` : ''}`;
    case 'bin':
      if (type.minLen === undefined) return `bin ≤${type.maxLen} B`;
      return type.minLen === type.maxLen ? `bin exactly ${type.maxLen} B` : `bin ${type.minLen}..${type.maxLen} B`;
    case 'packed': {
      const info = PACKED_ELEMENTS[type.of];
      const bounds = type.min !== info.min || type.max !== info.max ? `, each ${type.min}..${type.max}` : '';
      return type.layout === 'runs'
        ? `runs ${type.of} ≤${type.maxLen} (bin of 12-byte run records, 4.2${bounds})`
        : `packed ${type.of} ≤${type.maxLen} (bin of ${info.bytes}-byte LE elements${bounds})`;
    }
    case 'enum': return type.values.map((v) => `\`${v}\``).join(' \\| ');
    case 'array': return `array ≤${type.maxLen} of ${typeText(type.of)}`;
    case 'struct': return 'map (below)';
  }
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function fieldRows(fields: Fields, prefix: string, since: number, rows: string[]): void {
  for (const [name, field] of Object.entries(fields) as [string, Field][]) {
    const path = `${prefix}${name}`;
    const sinceText = field.since !== undefined && field.since !== since ? ` (since v${field.since})` : '';
    rows.push(`| \`${path}\` | ${escapeCell(typeText(field.type))} | ${field.optional ? 'no' : 'yes'} | ${escapeCell(field.doc)}${sinceText} |`);
    let inner: FieldType = field.type;
    while (inner.kind === 'array') inner = inner.of;
    if (inner.kind === 'struct') fieldRows(inner.fields, `${path}${field.type.kind === 'array' ? '[]' : ''}.`, since, rows);
  }
}

function fieldTable(title: string, fields: Fields, since: number): string {
  if (Object.keys(fields).length === 0) return `${title}: empty map.\n`;
  const rows = ['| field | type | required | meaning |', '|---|---|---|---|'];
  fieldRows(fields, '', since, rows);
  return `${title}:\n\n${rows.join('\n')}\n`;
}

function direction(decl: MessageDecl): string {
  if (decl.kind === 'event') return decl.from === 'hv' ? 'backend → domain' : decl.from === 'peer' ? 'domain → domain (routed)' : 'either way';
  if (decl.route === 'peer') return decl.caller === 'guest' ? 'guest → guest (routed)' : 'domain → domain (routed)';
  return decl.caller === 'control' ? 'control domain → backend' : decl.caller === 'guest' ? 'guest → backend' : 'any domain → backend';
}

/** Layers that are not part of the protocol proper: printed in SPEC.md's simulator appendix. */
export const EXTENSION_LAYERS: readonly string[] = ['sim'];

/** The protocol's messages (the simulator extension's are rendered apart, by renderExtensionMessages). */
export function renderMessages(): string {
  return renderMessageList((d) => !EXTENSION_LAYERS.includes(d.layer));
}

/** The simulator extension's messages (SPEC.md appendix A). */
export function renderExtensionMessages(): string {
  return renderMessageList((d) => EXTENSION_LAYERS.includes(d.layer));
}

/**
 * The message index and one section per declaration: each type's first
 * declaration under its name, and each later revision (a version that
 * changed the type's fields) as "TYPE (vN)" right after it.
 */
function renderMessageList(include: (d: MessageDecl) => boolean): string {
  const all = [...revisions.values()].filter((list) => include(list[0]!)).flatMap((list) => list.map((d, i) => ({ d, revision: i > 0 })));
  const heading = (d: MessageDecl, revision: boolean): string => (revision ? `${d.type} (v${d.since})` : d.type);
  const anchor = (d: MessageDecl, revision: boolean): string => (revision ? `${d.type.toLowerCase()}-v${d.since}` : d.type.toLowerCase());
  const out: string[] = ['| type | kind | direction | layer | since |', '|---|---|---|---|---|'];
  for (const { d, revision } of all) {
    const since = revision ? `v${d.since} (revision)` : `v${d.since}`;
    out.push(`| [\`${heading(d, revision)}\`](#${anchor(d, revision)}) | ${d.kind} | ${direction(d)} | ${d.layer} | ${since} |`);
  }
  out.push('');
  for (const { d, revision } of all) {
    out.push(`#### ${heading(d, revision)}`, '');
    const intro = `revision in force from v${d.since} (earlier versions: the declaration above)`;
    out.push(`${d.kind === 'request' ? 'Request' : 'Event'}, ${direction(d)}, ${revision ? intro : `since v${d.since}`}. ${d.doc}`, '');
    if (d.kind === 'request') {
      out.push(fieldTable('Request body (`req`)', d.request, d.since));
      out.push(fieldTable('Response body (`res`)', d.response, d.since));
    } else {
      out.push(fieldTable('Body (`evt`)', d.body, d.since));
    }
  }
  return out.join('\n');
}

/** The error table. */
export function renderErrors(): string {
  const rows = ['| code | meaning |', '|---|---|'];
  for (const [code, meaning] of Object.entries(ErrorCodes)) rows.push(`| \`${code}\` | ${escapeCell(meaning)} |`);
  return rows.join('\n');
}

/** The committed golden vector files (protocol/vectors/*.json), in name order. */
export function vectorFiles(): string[] {
  const dir = new URL('../vectors/', import.meta.url);
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
}

/**
 * Every golden vector of every committed file, as its name, its decoded
 * envelope (JSON, bytes as {"$bin": hex}) and its bytes in hex, 32 bytes a
 * line, so that a reader without the files has them.
 */
export function renderVectors(): string {
  const out: string[] = [];
  for (const file of vectorFiles()) {
    const vectors = JSON.parse(readFileSync(new URL(`../vectors/${file}`, import.meta.url), 'utf8')) as unknown;
    if (!Array.isArray(vectors)) throw new Error(`protocol/vectors/${file}: not an array of vectors`);
    out.push(`#### \`protocol/vectors/${file}\` (${vectors.length} vectors)`, '', '```');
    for (const v of vectors as { name: string; envelope: unknown; hex: string }[]) {
      out.push(v.name, `  ${JSON.stringify(v.envelope)}`);
      for (let i = 0; i < v.hex.length; i += 64) out.push(`  ${v.hex.slice(i, i + 64)}`);
      out.push('');
    }
    out.pop();
    out.push('```', '');
  }
  out.pop();
  return out.join('\n');
}

/** Replaces each `<!-- BEGIN GENERATED: name -->…<!-- END GENERATED: name -->` block. */
export function fillGenerated(spec: string): string {
  const sections: Record<string, () => string> = {
    messages: renderMessages, errors: renderErrors, extension_messages: renderExtensionMessages, vectors: renderVectors,
    ...Object.fromEntries(MACHINES.map((m) => [`machine_${m.decl.id}`, () => renderMachine(m)])),
  };
  return spec.replace(/<!-- BEGIN GENERATED: (\w+) -->[\s\S]*?<!-- END GENERATED: \1 -->/g, (whole, name: string) => {
    const render = sections[name];
    if (!render) return whole;
    return `<!-- BEGIN GENERATED: ${name} -->\n${render()}\n<!-- END GENERATED: ${name} -->`;
  });
}
