/**
 * The one HTTP route table: every route declares its path, its methods and the least role that
 * may use it (`none` = open). `createRouter` matches a path, answers 405 for a wrong method, and
 * leaves the role check to the caller (app.ts), which knows who is asking.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal, Role } from '../access/roles.ts';

export type Method = 'GET' | 'POST';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** `:name` segments of the path, decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  head: boolean;
  principal: Principal;
}

export interface Route {
  /** `/api/v1/fleet`, `/api/v1/nodes/:name/processes`, or a prefix `/auth/*`. */
  path: string;
  /** GET routes answer HEAD too. */
  methods: readonly Method[];
  /** The least role that may use the route. */
  role: Role;
  /** Lets a request in that its role alone would not (e.g. `/metrics` by address). */
  admit?(ctx: { req: IncomingMessage; principal: Principal }): boolean;
  handle(ctx: RouteContext): Promise<void> | void;
}

/** A client error a handler throws: becomes `{ error: { code, message } }` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  head = false,
  extra: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : text);
}

export const sendError = (
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  head = false,
  extra: Record<string, string> = {},
): void => sendJson(res, status, { error: { code, message } }, head, extra);

export type RouteMatch =
  | { kind: 'route'; route: Route; params: Record<string, string> }
  | { kind: 'method'; allow: string }
  | { kind: 'bad-param'; name: string };

interface Compiled {
  route: Route;
  re: RegExp;
  names: string[];
}

function compile(route: Route): Compiled {
  const names: string[] = [];
  if (route.path.endsWith('/*')) {
    const prefix = route.path.slice(0, -1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return { route, re: new RegExp(`^${prefix}`), names };
  }
  const src = route.path
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) {
        names.push(seg.slice(1));
        return '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { route, re: new RegExp(`^${src}$`), names };
}

/** `METHOD path` keys of a table, e.g. `GET /api/v1/fleet` (tests compare them with a list). */
export const routeKeys = (routes: readonly Route[]): string[] =>
  routes.flatMap((r) => r.methods.map((m) => `${m} ${r.path}`));

export function createRouter(
  routes: readonly Route[],
): (method: string, pathname: string) => RouteMatch | null {
  const seen = new Set<string>();
  for (const r of routes) {
    if (!r.role) throw new Error(`route ${r.path} declares no role`);
    if (r.methods.length === 0) throw new Error(`route ${r.path} declares no method`);
    if (seen.has(r.path)) throw new Error(`route ${r.path} is declared twice`);
    seen.add(r.path);
  }
  const table = routes.map(compile);
  return (method, pathname) => {
    for (const c of table) {
      const m = c.re.exec(pathname);
      if (!m) continue;
      const allowed =
        c.route.methods.includes(method as Method) || (method === 'HEAD' && c.route.methods.includes('GET'));
      if (!allowed) {
        const list = c.route.methods.includes('GET') ? [...c.route.methods, 'HEAD'] : [...c.route.methods];
        return { kind: 'method', allow: list.join(', ') };
      }
      const params: Record<string, string> = {};
      for (let i = 0; i < c.names.length; i++) {
        try {
          params[c.names[i]!] = decodeURIComponent(m[i + 1]!);
        } catch {
          return { kind: 'bad-param', name: c.names[i]! };
        }
      }
      return { kind: 'route', route: c.route, params };
    }
    return null;
  };
}
