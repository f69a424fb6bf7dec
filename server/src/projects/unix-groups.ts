/**
 * Unix group membership for `groups` match rules. The agent reports a process's uid/user, not its
 * groups, so the server resolves them from its own group database: supplementary members from
 * `/etc/group` and the primary group from `/etc/passwd`. This is only right when the server sees
 * the same users and groups as the GPU nodes (same files, or the same LDAP/SSSD exported there);
 * groups known only to a directory service are not seen.
 */
import { readFileSync } from 'node:fs';

export interface GroupDb {
  /** Group names of a user (primary first), empty when unknown. */
  groupsOf(user: string): readonly string[];
}

export const NO_GROUPS: GroupDb = { groupsOf: () => [] };

/** Pure: builds the membership from the text of `/etc/group` and `/etc/passwd`. */
export function parseGroupDb(groupText: string, passwdText = ''): GroupDb {
  const byGid = new Map<string, string>();
  const byUser = new Map<string, string[]>();
  const add = (user: string, group: string, first = false) => {
    const list = byUser.get(user) ?? [];
    if (!list.includes(group)) first ? list.unshift(group) : list.push(group);
    byUser.set(user, list);
  };
  for (const line of groupText.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, , gid, members] = line.split(':');
    if (!name || gid === undefined) continue;
    byGid.set(gid, name);
    for (const m of (members ?? '').split(',')) if (m.trim()) add(m.trim(), name);
  }
  for (const line of passwdText.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [user, , , gid] = line.split(':');
    const group = gid !== undefined ? byGid.get(gid) : undefined;
    if (user && group) add(user, group, true);
  }
  return { groupsOf: (user) => byUser.get(user) ?? [] };
}

/** Reads the group database; a missing/unreadable file counts as empty. */
export function readGroupDb(groupFile = '/etc/group', passwdFile = '/etc/passwd'): GroupDb {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  return parseGroupDb(read(groupFile), read(passwdFile));
}
