/**
 * Holds the projects config in effect and reloads it when the file changes: `fs.watch` on the
 * directory (editors replace files by rename) with a debounce, a content hash so only real changes
 * count, and a poll as a fallback (network filesystems, missed events). A bad (re)load keeps the
 * last good config and records why.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { FileWatch } from '../file-watch.ts';
import {
  EMPTY_PROJECTS,
  type ProjectsConfig,
  ProjectsFileError,
  parseProjectsFile,
} from './projects-file.ts';
import { type GroupDb, NO_GROUPS, readGroupDb } from './unix-groups.ts';

export interface ProjectsRegistryOptions {
  /** Absolute path; null: no projects (everything is `unassigned`). */
  file: string | null;
  logger?: Logger;
  /** Debounce of watch events (default 250 ms). */
  debounceMs?: number;
  /** Fallback poll (default 10 s; 0: none). */
  pollMs?: number;
  /** Group database for `groups` rules (default: /etc/group + /etc/passwd, re-read on each reload). */
  readGroups?: () => GroupDb;
  now?: () => number;
}

export interface ProjectsStatus {
  file: string | null;
  projects: number;
  loadedAt: number | null;
  error: string | null;
}

export class ProjectsRegistry {
  readonly file: string | null;
  private config: ProjectsConfig = EMPTY_PROJECTS;
  private groupDb: GroupDb = NO_GROUPS;
  private hash: string | null = null;
  private loadedAt: number | null = null;
  private lastError: string | null = null;
  private watch: FileWatch | null = null;
  private readonly listeners = new Set<(c: ProjectsConfig) => void>();
  private readonly log: Logger | undefined;
  private readonly readGroups: () => GroupDb;
  private readonly now: () => number;

  constructor(private readonly opts: ProjectsRegistryOptions) {
    this.file = opts.file;
    this.log = opts.logger;
    this.readGroups = opts.readGroups ?? (() => readGroupDb());
    this.now = opts.now ?? Date.now;
  }

  /** The config in effect (the last good one). */
  get current(): ProjectsConfig {
    return this.config;
  }

  get groups(): GroupDb {
    return this.groupDb;
  }

  /** Why the last load failed (the previous config stays in effect); null when it succeeded. */
  get error(): string | null {
    return this.lastError;
  }

  status(): ProjectsStatus {
    return {
      file: this.file,
      projects: this.config.projects.size,
      loadedAt: this.loadedAt,
      error: this.lastError,
    };
  }

  /** Called with the new config after every successful load that changed it. */
  onChange(fn: (c: ProjectsConfig) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Reads the file now. Returns true when a new config took effect. Never throws: a failure is
   * logged, kept in `error`, and the last good config stays.
   */
  reload(): boolean {
    if (!this.file) return false;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      return this.failed(
        `${this.file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    const hash = createHash('sha256').update(text).digest('hex');
    this.groupDb = this.readGroups();
    if (hash === this.hash) {
      if (this.lastError) {
        // Same content as the good config again (e.g. a bad edit reverted).
        this.lastError = null;
        this.emit();
      }
      return false;
    }
    try {
      this.config = parseProjectsFile(text, this.file);
    } catch (err) {
      if (err instanceof ProjectsFileError) return this.failed(err.message, hash);
      return this.failed(`${this.file}: ${(err as Error).message}`, hash);
    }
    this.hash = hash;
    this.loadedAt = this.now();
    this.lastError = null;
    this.failedHash = null;
    this.log?.info({ file: this.file, projects: this.config.projects.size }, 'projects file loaded');
    this.emit();
    return true;
  }

  /** Starts watching the file's directory (and polling). Call `close()` to stop. */
  start(): void {
    if (!this.file) return;
    this.reload();
    this.watch?.close();
    this.watch = new FileWatch(this.file, {
      what: 'projects file',
      reload: () => this.reload(),
      pollMs: this.opts.pollMs,
      debounceMs: this.opts.debounceMs,
      log: this.log,
    });
  }

  close(): void {
    this.watch?.close();
    this.watch = null;
  }

  private failedHash: string | null = null;

  private failed(message: string, hash?: string): false {
    // Log a given bad content once, not on every poll.
    if (hash === undefined || hash !== this.failedHash) {
      this.log?.error(
        { file: this.file, err: message },
        this.hash
          ? 'projects file reload failed; keeping the last good config'
          : 'projects file failed to load',
      );
    }
    this.failedHash = hash ?? null;
    const changed = this.lastError !== message;
    this.lastError = message;
    if (changed) this.emit();
    return false;
  }

  private emit(): void {
    for (const fn of this.listeners) {
      try {
        fn(this.config);
      } catch (err) {
        this.log?.error({ err }, 'projects listener failed');
      }
    }
  }
}
