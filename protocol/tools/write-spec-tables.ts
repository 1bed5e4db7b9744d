/** `npm run spec`: regenerates SPEC.md's generated sections and the golden vectors. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fillGenerated } from './spec-tables.ts';
import { buildVectors, VECTOR_VERSIONS, vectorsPath } from './vectors.ts';

const specPath = new URL('../SPEC.md', import.meta.url);
// The vectors first: SPEC.md prints every committed vector file.
for (const version of VECTOR_VERSIONS) writeFileSync(vectorsPath(version), `${JSON.stringify(buildVectors(version), null, 2)}\n`);
writeFileSync(specPath, fillGenerated(readFileSync(specPath, 'utf8')));
console.log(`SPEC.md generated sections and protocol/vectors/${VECTOR_VERSIONS.map((v) => `v${v}.json`).join(', ')} written`);
