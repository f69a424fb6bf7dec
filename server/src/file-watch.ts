import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';

export interface FileWatchOptions {
  /** What the file is, for log lines ("access file", "projects file"). */
  what: string;
  /** Called (debounced) when the file may have changed, and on every poll. */
  reload(): void;
  /** Poll every … ms as well (watch events can be missed, e.g. on network file systems); 0: no polling. Default 10 s. */
  pollMs?: number;
  /** Quiet time after a watch event before reloading (editors write in steps). Default 250 ms. */
  debounceMs?: number;
  log?: Logger;
}

/**
 * Watches a config file for changes: its directory (editors replace files by rename, which a
 * watch on the file itself would lose), debounced, plus a poll. The caller's `reload` decides
 * whether the content really changed (the access and projects files compare a content hash).
 */
export class FileWatch {
  private watcher: FSWatcher | null = null;
  private poller: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;

  constructor(
    readonly file: string,
    private readonly opts: FileWatchOptions,
  ) {
    const name = basename(file);
    const { what, log } = opts;
    try {
      this.watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (changed === null || changed.toString() === name) this.schedule();
      });
      this.watcher.on('error', (err) =>
        log?.warn({ err: err.message }, `${what} watch failed; polling only`),
      );
    } catch (err) {
      log?.warn({ err: (err as Error).message, file }, `cannot watch the ${what}; polling only`);
    }
    const pollMs = opts.pollMs ?? 10_000;
    if (pollMs > 0) {
      this.poller = setInterval(() => opts.reload(), pollMs);
      this.poller.unref();
    }
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.poller) clearInterval(this.poller);
    if (this.debounce) clearTimeout(this.debounce);
    this.poller = null;
    this.debounce = null;
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.opts.reload();
    }, this.opts.debounceMs ?? 250);
    this.debounce.unref();
  }
}
