// Defaults the CLI needs without loading the configuration's schema (zod).

/** vigild's control socket when the configuration names none. */
export const DEFAULT_CONTROL_SOCKET = '/run/vigil/ctl.sock';
