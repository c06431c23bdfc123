/** A small ring buffer of recent events (errors shown by `assetfs status`). Messages must already be redacted. */
export interface RecentEvent {
  readonly time: string;
  readonly message: string;
  readonly path?: string;
}

export class RecentEvents {
  private readonly items: RecentEvent[] = [];
  constructor(private readonly max = 20) {}

  add(message: string, path?: string): void {
    this.items.push({ time: new Date().toISOString(), message, path });
    if (this.items.length > this.max) this.items.shift();
  }

  list(): readonly RecentEvent[] {
    return [...this.items];
  }
}
