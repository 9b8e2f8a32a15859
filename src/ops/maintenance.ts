/**
 * Read-only (maintenance) mode: while on, the registry refuses every write (pushes,
 * deletes, upload sessions, collections) and keeps serving reads. Toggled at runtime by
 * the admin API or SIGUSR2; `storage.readOnly` sets it at startup.
 */
export class Maintenance {
  private state: { readOnly: boolean; since: string; reason: string };

  constructor(readOnly: boolean) {
    this.state = { readOnly, since: new Date().toISOString(), reason: readOnly ? 'storage.readOnly' : '' };
  }

  get readOnly(): boolean {
    return this.state.readOnly;
  }

  status(): { readOnly: boolean; since: string; reason: string } {
    return { ...this.state };
  }

  set(readOnly: boolean, reason: string): void {
    if (readOnly === this.state.readOnly) return;
    this.state = { readOnly, since: new Date().toISOString(), reason: readOnly ? reason : '' };
  }
}
