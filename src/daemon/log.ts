// The logger the agent's parts write to (pino fits; tests pass a collector).
export interface AgentLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
