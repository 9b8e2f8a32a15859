/**
 * A mistake in how Berth was set up (configuration, files, ports, permissions) that the
 * person starting it can fix. The CLI prints its message as `berth: <message>` and exits
 * 1, without a stack trace, so the message must say what is wrong and what to change.
 */
export class SetupError extends Error {
  override name = 'SetupError';
}

/** An errno-carrying Node error (`ENOENT`, `EACCES`, …), or undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
