/**
 * Writes the JSON Schemas (draft 2020-12) of what others hand us or read from us, so they
 * can validate without our code: `npm run schemas`. A test fails when they are stale.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { jsonSchemas } from '../shared/contract/json-schemas.ts';

const dir = fileURLToPath(new URL('../docs/schemas/', import.meta.url));
mkdirSync(dir, { recursive: true });
for (const [name, schema] of Object.entries(jsonSchemas())) {
  writeFileSync(`${dir}${name}.schema.json`, `${JSON.stringify(schema, null, 2)}\n`);
  process.stdout.write(`wrote docs/schemas/${name}.schema.json\n`);
}
