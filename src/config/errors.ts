// A configuration's problems, each with its line, column and field path, apart from the parser and the
// schema (yaml, zod): the CLI's exit codes need the class without loading either.

export interface Problem {
  /** 1-based; 0 when the problem is the file as a whole (it cannot be read). */
  line: number;
  column: number;
  /** "nodes[1].addresses.lan2"; "" for the file as a whole or a YAML syntax error. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly source: string;
  readonly problems: Problem[];

  constructor(source: string, problems: Problem[]) {
    super(problems.map((p) => formatProblem(source, p)).join('\n'));
    this.source = source;
    this.problems = problems;
  }
}

/** "cluster.yaml:14:7: nodes[1].addresses.lan2: required", without the parts a problem lacks. */
export function formatProblem(source: string, p: Problem): string {
  const where = p.line > 0 ? `${source}:${p.line}:${p.column}` : source;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}
