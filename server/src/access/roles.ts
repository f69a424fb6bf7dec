/**
 * Roles of people and who holds one (issue 8). The order is total: each role sees everything the
 * roles below it see.
 */
import { type PrincipalVia, ROLES, type Role } from '@gpupulse/protocol';

export type { PrincipalVia, Role };
export { ROLES };

const RANK: Record<Role, number> = { none: 0, display: 1, viewer: 2, admin: 3 };

/** True when `role` may do what `min` may. */
export function roleAtLeast(role: Role, min: Role): boolean {
  return RANK[role] >= RANK[min];
}

/** The higher of two roles. */
export function maxRole(a: Role, b: Role): Role {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Who is asking. */
export interface Principal {
  role: Role;
  /** Unix user name: "own processes" are those whose `user` equals it. Null: no own processes. */
  user: string | null;
  /** A label for logs and `/api/v1/me`: token name, signed-in user … */
  name: string | null;
  via: PrincipalVia;
}

/** Group → role mapping of the access file (`oidc.roles`, `trustedProxy.roles`); `*` = any signed-in user. */
export interface GroupRoles {
  admin?: string[];
  viewer?: string[];
  display?: string[];
}

/**
 * The highest role whose list names one of `groups` (or `*`); null when none does (the caller
 * falls back to the anonymous role). Shared by OIDC sessions and the trusted proxy.
 */
export function roleForGroups(map: GroupRoles | undefined, groups: readonly string[]): Role | null {
  if (!map) return null;
  for (const role of ['admin', 'viewer', 'display'] as const) {
    const list = map[role];
    if (list?.some((g) => g === '*' || groups.includes(g))) return role;
  }
  return null;
}

export const ANONYMOUS_NONE: Principal = { role: 'none', user: null, name: null, via: 'anonymous' };
