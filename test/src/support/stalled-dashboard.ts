// A dashboard that connects (real WebSocket upgrade, Engine.IO v4 + Socket.IO v5 framing by hand)
// and then never reads again: the TCP socket is paused, so the kernel buffers fill and the server
// can only queue. To look alive it still sends a blind Engine.IO pong every 10 s — a worst case
// that the server's ping timeout alone does not catch.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface StalledDashboard {
  /** Bytes read before the socket was paused. */
  readBefore: number;
  /** True once the server closed the TCP connection. */
  closed(): boolean;
  close(): void;
}

/** A masked client text frame (RFC 6455). */
function textFrame(payload: string): Buffer {
  const data = Buffer.from(payload, 'utf8');
  if (data.length > 125) throw new Error('short frames only');
  const mask = randomBytes(4);
  const out = Buffer.alloc(2 + 4 + data.length);
  out[0] = 0x81;
  out[1] = 0x80 | data.length;
  mask.copy(out, 2);
  for (let i = 0; i < data.length; i++) out[6 + i] = data[i]! ^ mask[i % 4]!;
  return out;
}

export function openStalledDashboard(url: string, namespace = '/dashboard'): Promise<StalledDashboard> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(Number(u.port), u.hostname);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let readBefore = 0;
    let closed = false;
    let pong: NodeJS.Timeout | null = null;
    sock.on('close', () => {
      closed = true;
      if (pong) clearInterval(pong);
    });
    sock.on('error', (err) => {
      if (!upgraded) reject(err);
    });
    sock.on('connect', () => {
      sock.write(
        `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    sock.on('data', (chunk: Buffer) => {
      readBefore += chunk.length;
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith('HTTP/1.1 101')) {
          reject(new Error(`no WebSocket upgrade: ${head.split('\r\n')[0]}`));
          sock.destroy();
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        // Engine.IO sends its open packet; join the namespace right away.
        sock.write(textFrame(`40${namespace},`));
      }
      // Wait for the namespace's first event (the snapshot) to start arriving, then stop reading.
      if (buf.includes(Buffer.from('fleet:snapshot'))) {
        sock.pause();
        pong = setInterval(() => sock.write(textFrame('3')), 10_000);
        resolve({
          readBefore,
          closed: () => closed,
          close: () => sock.destroy(),
        });
      }
    });
  });
}
