/**
 * Privacy mode (wall displays, screen sharing): project names stay, person names go. Every
 * place that shows users or per-person job names goes through these functions.
 */

/** The user names to show: none in privacy mode. */
export function visibleUsers(users: readonly string[] | undefined, privacy: boolean): readonly string[] {
  if (privacy || !users) return [];
  return users;
}

/**
 * Job ids / pod names to show. Pod and job names often carry a user name, so privacy mode
 * shows none (the count stays).
 */
export function visibleJobs(jobs: readonly string[] | undefined, privacy: boolean): readonly string[] {
  if (privacy || !jobs) return [];
  return jobs;
}

/**
 * An alert's server message is free text that may name a person; in privacy mode, only our own
 * localized text (built from rule + value) is shown.
 */
export function visibleAlertMessage(message: string, privacy: boolean): string | null {
  return privacy ? null : message;
}

/** Parses `?privacy=` : `1`/`true`/`on` → true, `0`/`false`/`off` → false, else undefined. */
export function parseFlag(value: string | null | undefined): boolean | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (v === '' || v === '1' || v === 'true' || v === 'on' || v === 'yes') return true;
  if (v === '0' || v === 'false' || v === 'off' || v === 'no') return false;
  return undefined;
}
