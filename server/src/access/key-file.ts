/**
 * Secret keys kept in the data directory (session cookies, nudge links): 32 random bytes, created
 * 0600 on first start so what they signed survives restarts; delete the file to revoke it all.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Reads `<dataDir>/<file>`, creating it (0600, 32 random bytes) when missing. */
export function openKeyFile(dataDir: string, file: string): Buffer {
  const path = join(dataDir, file);
  mkdirSync(dataDir, { recursive: true });
  let key: Buffer;
  try {
    key = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    try {
      writeFileSync(path, randomBytes(32), { mode: 0o600, flag: 'wx' });
    } catch (e) {
      // Another process created it first: use theirs.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    key = readFileSync(path);
  }
  if (key.length < 32) throw new Error(`${path}: the key is shorter than 32 bytes; delete the file`);
  try {
    chmodSync(path, 0o600);
  } catch {
    // read-only data dir: keep going
  }
  return key;
}
