/** SMTP URL checks without loading nodemailer (config.ts uses them). */

/** Checks an SMTP URL; the error never repeats the URL (it may hold a password). */
export function smtpUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be a URL like smtp://mail.example.org:25 or smtps://user:password@mail.example.org:465';
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') return 'must start with smtp:// or smtps://';
  if (!u.hostname) return 'has no host';
  if (u.password && !u.username) return 'has a password but no user name';
  return null;
}

/** `scheme://host:port` of an SMTP URL, for logs and status. */
export function redactSmtpUrl(url: string): string {
  try {
    const u = new URL(url);
    const port = u.port || (u.protocol === 'smtps:' ? '465' : '25');
    return `${u.protocol}//${u.hostname}:${port}`;
  } catch {
    return '(bad url)';
  }
}
