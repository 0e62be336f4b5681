/** JSON Schema exports of the public contracts: the input a portal sends, the document an agent reads. */
import { z } from 'zod';
import { vmDocumentSchema } from './document.ts';
import { resourceGroupSchema } from './resource-group.ts';

export function jsonSchemas(): Record<string, unknown> {
  return {
    'resource-group': { $id: 'https://ringmaster.io/schemas/resource-group.schema.json', ...z.toJSONSchema(resourceGroupSchema, { io: 'input', unrepresentable: 'any' }) },
    'vm-document': { $id: 'https://ringmaster.io/schemas/vm-document.schema.json', ...z.toJSONSchema(vmDocumentSchema, { io: 'output', unrepresentable: 'any' }) },
  };
}
