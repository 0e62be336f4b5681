/** JSON Schema exports of the public contracts: the input a portal sends, the document an agent reads. */
import { z } from 'zod';
import { storedDocumentSchema } from './document-envelope.ts';
import { resourceGroupSchema } from '../schema/resource-group.ts';

export function jsonSchemas(): Record<string, unknown> {
  return {
    'resource-group': { $id: 'https://ringmaster.io/schemas/resource-group.schema.json', ...z.toJSONSchema(resourceGroupSchema, { io: 'input', unrepresentable: 'any' }) },
    'vm-document': { $id: 'https://ringmaster.io/schemas/vm-document.schema.json', ...z.toJSONSchema(storedDocumentSchema, { io: 'output', unrepresentable: 'any' }) },
  };
}
