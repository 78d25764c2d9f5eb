// The server's checks of a request line (protocol.ts has the format).
import { z } from 'zod';

export const requestSchema = z.object({
  id: z.union([z.string().max(256), z.number()]),
  method: z.string().min(1).max(256),
  params: z.unknown().optional(),
});

/** Zod issues as one line: "name: expected string, received number; count: too small". */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(params)'}: ${i.message}`).join('; ');
}
