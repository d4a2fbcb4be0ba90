/**
 * Group commit: the items submitted while the event loop is busy (those that arrive in one
 * turn, and those that arrive while a group is being written) are written by one
 * transaction, and each submitter hears back only after that transaction committed. The
 * commit and the per-transaction overhead (BEGIN/COMMIT, a round trip, SQLite's WAL write
 * and sync) are shared instead of paid per item; nothing is acknowledged earlier than
 * before. No timer: a lone item waits one event-loop turn, not a window.
 *
 * One group is written at a time, in submission order, so items of the same key keep
 * their order. Should a group's transaction fail, it is rolled back whole and each item is
 * retried in a transaction of its own: a bad item fails alone.
 */

export interface GroupCommitOptions<I, R> {
  /** Writes the items in one transaction and answers each, in order; throws if it rolled back. */
  write(items: readonly I[]): Promise<R[]>;
  /** The most items one transaction takes (bounds its duration and the event-loop block on SQLite). */
  maxGroup?: number;
  /** Told the size of each committed transaction (a metric). */
  onCommit?(size: number): void;
}

interface Pending<I, R> {
  item: I;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export const DEFAULT_MAX_GROUP = 256;

export class GroupCommit<I, R> {
  readonly #options: GroupCommitOptions<I, R>;
  #pending: Array<Pending<I, R>> = [];
  #scheduled = false;
  #writing: Promise<void> | undefined;

  constructor(options: GroupCommitOptions<I, R>) {
    this.#options = options;
  }

  /** Resolves with the item's result once the transaction that wrote it has committed. */
  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once every item submitted so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.#writing || this.#pending.length > 0 || this.#scheduled) {
      await (this.#writing ?? new Promise<void>((r) => setImmediate(r)));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#writing = this.#writeNext().finally(() => {
        this.#writing = undefined;
        if (this.#pending.length > 0) this.#schedule();
      });
    });
  }

  async #writeNext(): Promise<void> {
    const group = this.#pending.splice(0, this.#options.maxGroup ?? DEFAULT_MAX_GROUP);
    if (group.length === 0) return;
    try {
      const results = await this.#options.write(group.map((p) => p.item));
      this.#options.onCommit?.(group.length);
      group.forEach((p, i) => p.resolve(results[i]!));
      return;
    } catch (error) {
      if (group.length === 1) {
        group[0]!.reject(error);
        return;
      }
    }
    // The group rolled back: each item alone, so that only the bad one fails.
    for (const p of group) {
      try {
        const [result] = await this.#options.write([p.item]);
        this.#options.onCommit?.(1);
        p.resolve(result!);
      } catch (error) {
        p.reject(error);
      }
    }
  }
}
