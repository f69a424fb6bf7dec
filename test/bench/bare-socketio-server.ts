// Baseline for the server benchmark: a bare Socket.IO server that accepts the same /agent
// connections and acks every samples:report without validating or storing anything.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.argv[2] ?? 0);
const http = createServer();
const io = new Server(http, { maxHttpBufferSize: 4 * 1024 * 1024, serveClient: false });
io.of('/agent').on('connection', (socket) => {
  socket.on('samples:report', (report: { samples: { seq: number }[] }, ack: (a: unknown) => void) => {
    if (typeof ack === 'function')
      ack({ ok: true, data: { acked: report.samples.map((s) => s.seq), serverTime: Date.now() } });
  });
  socket.on('inventory:report', (_inv: unknown, ack: (a: unknown) => void) => {
    if (typeof ack === 'function') ack({ ok: true, data: { serverTime: Date.now() } });
  });
});
http.listen(port, '127.0.0.1', () => {
  const a = http.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : port}\n`);
});
