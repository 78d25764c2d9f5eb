// The link table file's schema (table.ts loads it when it reads a table).
import { z } from 'zod';

const entrySchema = z.object({
  identity: z.string().min(1),
  paths: z.array(z.string().startsWith('/')).min(1),
  vendor: z.string().optional(),
  product: z.string().optional(),
});

export const tableSchema = z.object({
  version: z.literal(1),
  savedAt: z.string(),
  host: z.string(),
  entries: z.array(entrySchema),
});

export type LinkEntry = z.infer<typeof entrySchema>;
export type LinkTable = z.infer<typeof tableSchema>;
