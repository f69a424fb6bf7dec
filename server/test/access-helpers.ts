/** Access-file fixtures for server tests: one token per role, written to a temp access file. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../src/access/access-file.ts';
import type { Role } from '../src/access/roles.ts';
import type { CreateServerOptions, GpupulseServer } from '../src/app.ts';
import { startServer, tempDir } from './helpers.ts';

/** Tokens of the access file `accessYaml()` writes (secrets of tests only). */
export const TOKENS = {
  display: 'display-token-0123456789',
  /** A viewer whose own processes are those of Unix user `kim`. */
  viewer: 'viewer-token-kim-0123456789',
  admin: 'admin-token-0123456789',
} as const satisfies Partial<Record<Role, string>>;

export type TokenRole = keyof typeof TOKENS;

export const bearer = (role: TokenRole): Record<string, string> => ({
  authorization: `Bearer ${TOKENS[role]}`,
});

export function accessYaml(anonymous: 'none' | 'display' | 'viewer' = 'display', extra = ''): string {
  return [
    `anonymous: ${anonymous}`,
    'tokens:',
    `  - { name: wall-1, role: display, sha256: "${sha256Hex(TOKENS.display)}" }`,
    `  - { name: kim, role: viewer, user: kim, sha256: "${sha256Hex(TOKENS.viewer)}" }`,
    `  - { name: ops, role: admin, sha256: "${sha256Hex(TOKENS.admin)}" }`,
    extra,
  ].join('\n');
}

/** Writes an access file into a fresh temp dir; returns its path. */
export async function writeAccessFile(text: string): Promise<string> {
  const file = join(await tempDir('gpupulse-access-'), 'access.yaml');
  await writeFile(file, text);
  return file;
}

/** A server with `accessYaml(anonymous)` in effect (and its own data dir for the session key). */
export async function startServerWithAccess(
  anonymous: 'none' | 'display' | 'viewer' = 'display',
  opts: CreateServerOptions = {},
  extra = '',
): Promise<GpupulseServer & { accessFile: string }> {
  const accessFile = await writeAccessFile(accessYaml(anonymous, extra));
  const server = await startServer({
    ...opts,
    config: { accessFile, accessPollMs: 0, dataDir: await tempDir('gpupulse-data-'), ...opts.config },
  });
  return Object.assign(server, { accessFile });
}
