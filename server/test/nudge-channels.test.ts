/**
 * The nudge channels against real sockets: the SMTP mailer's timeouts, retries and give-up (a
 * closed port, a server that never greets), and nudge webhooks (Slack mention, JSON body, retry
 * on 5xx) against a local HTTP receiver.
 */
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { NudgeRecord } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { parseWebhookSpec } from '../src/alerts/config.ts';
import { redactSmtpUrl, SmtpMailer, smtpUrlProblem } from '../src/mail/mailer.ts';
import { NudgeWebhookSender } from '../src/nudges/webhooks.ts';
import { onCleanup, waitFor } from './helpers.ts';

const record: NudgeRecord = {
  id: 'x',
  kind: 'nudge',
  at: 1,
  node: 'gpu-01',
  gpuUuid: 'GPU-1',
  gpuIndex: 3,
  user: 'kim.minji',
  project: 'fu-video',
  idleSince: 0,
  process: 'python',
  idleGpuHours: 0.5,
  until: null,
  to: 'user',
  email: null,
  webhooks: 0,
  idleMsAfterNudge: null,
};

async function freeClosedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('SMTP mailer', () => {
  it('checks the URL without repeating it, and shows only scheme://host:port', () => {
    expect(smtpUrlProblem('http://x')).toBe('must start with smtp:// or smtps://');
    expect(smtpUrlProblem('smtps://user:secret@mail.example.org:465')).toBeNull();
    expect(redactSmtpUrl('smtps://user:secret@mail.example.org')).toBe('smtps://mail.example.org:465');
    expect(new SmtpMailer({ url: null }).describe()).toBe('not configured');
  });

  it('without a URL answers not-configured and sends nothing', async () => {
    const m = new SmtpMailer({ url: null });
    expect(m.configured).toBe(false);
    expect(await m.send({ to: 'a@example.org', subject: 's', text: 't' })).toBe('not-configured');
  });

  it('retries a refused connection with backoff, then gives up (counted)', async () => {
    const port = await freeClosedPort();
    const counts = { ok: 0, failed: 0, retried: 0 };
    const m = new SmtpMailer({
      url: `smtp://127.0.0.1:${port}`,
      maxRetries: 2,
      initialBackoffMs: 20,
      observer: { sent: (r) => counts[r]++, retried: () => counts.retried++ },
    });
    onCleanup(() => m.close());
    expect(await m.send({ to: 'a@example.org', subject: 's', text: 't' })).toBe('failed');
    expect(counts).toEqual({ ok: 0, failed: 1, retried: 2 });
  });

  it('times out on a server that never greets', async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    onCleanup(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          silent.close(() => r());
        }),
    );
    const m = new SmtpMailer({
      url: `smtp://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      timeoutMs: 300,
      maxRetries: 1,
      initialBackoffMs: 10,
    });
    onCleanup(() => m.close());
    const t0 = Date.now();
    expect(await m.send({ to: 'a@example.org', subject: 's', text: 't' })).toBe('failed');
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(500);
    expect(took).toBeLessThan(5000);
  });
});

describe('nudge webhooks', () => {
  it('Slack: mentions the user, escapes the text; JSON: the record; a 5xx is retried', async () => {
    const got: Array<{ path: string; body: Record<string, unknown> }> = [];
    let n = 0;
    const server = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        // The first JSON delivery fails once.
        const fail = req.url === '/json' && n++ === 0;
        if (!fail) got.push({ path: req.url ?? '', body: JSON.parse(body) });
        res.writeHead(fail ? 503 : 200);
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise<void>((r) => server.close(() => r())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const counts = { ok: 0, failed: 0, retried: 0 };
    const sender = new NudgeWebhookSender(
      [parseWebhookSpec(`slack+${base}/slack`), parseWebhookSpec(`json+${base}/json`)],
      { initialBackoffMs: 10, observer: { sent: (r) => counts[r]++, retried: () => counts.retried++ } },
    );
    onCleanup(() => sender.close());
    expect(
      sender.post({ kind: 'nudge', text: 'kim <!channel> holds gpu-01 idle', mention: 'U012AB3CD', record }),
    ).toBe(2);
    await waitFor(() => got.length === 2);
    const slack = got.find((g) => g.path === '/slack')!.body;
    expect(slack.text).toBe(':zzz: <@U012AB3CD> kim &lt;!channel&gt; holds gpu-01 idle');
    const json = got.find((g) => g.path === '/json')!.body;
    expect(json).toMatchObject({
      source: 'gpupulse',
      kind: 'nudge',
      mention: 'U012AB3CD',
      nudge: { user: 'kim.minji' },
    });
    expect(counts).toEqual({ ok: 2, failed: 0, retried: 1 });
  });
});
