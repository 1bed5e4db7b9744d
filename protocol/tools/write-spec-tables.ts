/** `npm run spec`: regenerates SPEC.md's generated sections and the golden vectors. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fillGenerated } from './spec-tables.ts';
import { buildVectors, VECTOR_VERSIONS, vectorsPath } from './vectors.ts';

const specPath = new URL('../SPEC.md', import.meta.url);
writeFileSync(specPath, fillGenerated(readFileSync(specPath, 'utf8')));
for (const version of VECTOR_VERSIONS) writeFileSync(vectorsPath(version), `${JSON.stringify(buildVectors(version), null, 2)}\n`);
console.log(`SPEC.md generated sections and protocol/vectors/${VECTOR_VERSIONS.map((v) => `v${v}.json`).join(', ')} written`);
