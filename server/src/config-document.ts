import { isMap, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';

type PathKey = string | number;

export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${k}` : k;
  return out || '(top level)';
}

export interface ConfigDocument<T> {
  data: T;
  /** The line of the deepest node that exists along `path` (its value; for a missing key, the enclosing map). */
  lineOf(path: readonly PathKey[]): number | null;
  /** Throws the caller's error with `<file>:<line>: <message>`. */
  fail(message: string, line: number | null): never;
}

/**
 * Parses a YAML/JSON config file (access file, projects file) and validates it with `schema`.
 * Every error names the file, the line and the key path, e.g.
 * `projects.yaml:14: projects[2].match.users[0]: must not be empty`, thrown as `makeError(message,
 * line)`. `hideValues`: never put a value from the file in a message (it may be a secret).
 */
export function parseConfigDocument<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  makeError: (message: string, line: number | null) => Error,
  opts: { hideValues?: boolean } = {},
): ConfigDocument<z.output<S>> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number | undefined): number | null =>
    offset === undefined ? null : lc.linePos(offset).line;
  const fail = (message: string, line: number | null): never => {
    throw makeError(`${file}${line !== null ? `:${line}` : ''}: ${message}`, line);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    fail(`invalid YAML/JSON: ${e.message.split('\n')[0]}`, lineAt(e.pos[0]));
  }
  const lineOf = (path: readonly PathKey[]): number | null => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) return lineAt(node.range[0]);
    }
    return null;
  };
  if (!isMap(doc.contents) && doc.contents !== null) fail('the top level must be a map', lineOf([]));
  const raw = doc.contents === null ? {} : doc.toJS();
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      path.push(issue.keys[0]!);
    } else if (opts.hideValues && (issue.code === 'invalid_value' || issue.code === 'invalid_type')) {
      // zod's own text, without echoing the value.
      message = issue.message.replace(/, received .*$/, '');
    }
    fail(`${formatPath(path)}: ${message}`, lineOf(path));
  }
  return { data: parsed.data as z.output<S>, lineOf, fail };
}
