import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.webmanifest': 'application/manifest+json',
};

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>gpupulse</title></head>
<body>
<h1>gpupulse server is running</h1>
<p>The web dashboard is not built. From the repository root run <code>pnpm build</code>
(or set <code>GPUPULSE_WEB_DIR</code> to a built dashboard) and reload.</p>
<p>API: <a href="/api/v1/health">/api/v1/health</a>, <a href="/api/v1/fleet">/api/v1/fleet</a>,
<a href="/metrics">/metrics</a></p>
</body></html>
`;

async function fileSize(path: string): Promise<number | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

/**
 * Serves a built single-page app from `root`: files with their content type, `index.html` for
 * routes without a file extension (SPA fallback), 404 for missing assets. Paths escaping `root`
 * (`..`, encoded or not) and NUL bytes are refused with 400.
 */
export function createStaticHandler(root: string) {
  const base = resolve(root);
  return async function serveStatic(
    req: IncomingMessage,
    res: ServerResponse,
    pathname: string,
  ): Promise<void> {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', head);
      return;
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'bad request\n', head);
      return;
    }
    if (decoded.includes('\0') || decoded.includes('\\') || decoded.split('/').includes('..')) {
      send(res, 400, 'text/plain; charset=utf-8', 'bad request\n', head);
      return;
    }
    const target = resolve(join(base, decoded));
    if (target !== base && !target.startsWith(base + sep)) {
      send(res, 400, 'text/plain; charset=utf-8', 'bad request\n', head);
      return;
    }
    const indexPath = join(base, 'index.html');
    let path = target;
    let size = target === base ? null : await fileSize(target);
    if (size === null) {
      if (target !== base && extname(decoded) !== '') {
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
        return;
      }
      path = indexPath;
      size = await fileSize(indexPath);
      if (size === null) {
        send(res, target === base ? 200 : 404, 'text/html; charset=utf-8', NOT_BUILT_PAGE, head);
        return;
      }
    }
    const type = CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
    const immutable = path.startsWith(join(base, 'assets') + sep);
    res.writeHead(200, {
      'content-type': type,
      'content-length': size,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (head) {
      res.end();
      return;
    }
    const stream = createReadStream(path);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  };
}
