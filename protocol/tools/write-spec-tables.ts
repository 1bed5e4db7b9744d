/** `npm run spec`: regenerates SPEC.md's generated sections and the golden vectors. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fillGenerated } from './spec-tables.ts';
import { buildVectors, VECTORS_PATH } from './vectors.ts';

const specPath = new URL('../SPEC.md', import.meta.url);
writeFileSync(specPath, fillGenerated(readFileSync(specPath, 'utf8')));
writeFileSync(VECTORS_PATH, `${JSON.stringify(buildVectors(), null, 2)}\n`);
console.log('SPEC.md generated sections and protocol/vectors/v1.json written');
