import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Alert } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { parseWebhookSpec, type WebhookTarget } from '../src/alerts/config.ts';
import { WebhookNotifier } from '../src/alerts/webhooks.ts';
import { ManualClock } from '../src/clock.ts';
import { onCleanup, waitFor } from './helpers.ts';

interface Received {
  path: string;
  body: Record<string, unknown>;
  contentType: string | undefined;
}

/** A local HTTP receiver on port 0; `answer` picks the status of each request. */
async function receiver(answer: (n: number, req: IncomingMessage) => number = () => 200) {
  const got: Received[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const status = answer(n++, req);
      if (status < 300)
        got.push({ path: req.url ?? '', body: JSON.parse(body), contentType: req.headers['content-type'] });
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, got, attempts: () => n };
}

function alert(over: Partial<Alert> = {}): Alert {
  return {
    id: 'gpu_temperature_high:n1:GPU-1:1',
    rule: 'gpu_temperature_high',
    severity: 'critical',
    state: 'firing',
    node: 'n1',
    gpuUuid: 'GPU-1',
    gpuIndex: 3,
    project: 'vision-lab',
    message: 'GPU temperature of GPU 3 on n1 is 91 °C (≥ 85 °C for 60 s)',
    value: 91,
    threshold: 85,
    startedAt: 1_750_000_000_000,
    endedAt: null,
    ...over,
  };
}

function notifier(targets: WebhookTarget[], clock = new ManualClock()) {
  const counts = { ok: 0, failed: 0, retried: 0, rateLimited: 0 };
  const n = new WebhookNotifier({
    targets,
    clock,
    initialBackoffMs: 20,
    observer: {
      sent: (r) => {
        counts[r]++;
      },
      retried: () => {
        counts.retried++;
      },
      rateLimited: (_u, k) => {
        counts.rateLimited += k;
      },
    },
  });
  onCleanup(() => n.close());
  return { n, counts, clock };
}

describe('webhooks to a local HTTP receiver', () => {
  it('posts the generic JSON body and the Slack body', async () => {
    const rx = await receiver();
    const { n, counts } = notifier([
      parseWebhookSpec(`${rx.url}/generic`),
      parseWebhookSpec(`slack+${rx.url}/slack`),
    ]);
    n.notify([alert()]);
    // The receiver sees a body before the sender has read the answer: wait for both sides.
    await waitFor(() => rx.got.length === 2 && counts.ok === 2, 3000, 'two deliveries');
    const generic = rx.got.find((g) => g.path === '/generic')!;
    const slack = rx.got.find((g) => g.path === '/slack')!;
    expect(generic.contentType).toBe('application/json');
    expect(generic.body).toMatchObject({ source: 'gpupulse', kind: 'alert', alerts: [alert()] });
    expect(generic.body.text).toContain('[CRITICAL] gpu_temperature_high firing on n1');
    expect(typeof slack.body.text).toBe('string');
    expect(slack.body.text).toContain(':red_circle:');
    const blocks = slack.body.blocks as Array<{ type: string; fields?: Array<{ text: string }> }>;
    expect(blocks[0]!.type).toBe('section');
    expect(blocks[1]!.fields!.map((f) => f.text)).toContain('*Project*\nvision-lab');
    expect(Object.keys(slack.body).sort()).toEqual(['blocks', 'text']);
    expect(counts.ok).toBe(2);
  });

  it('retries on 500 and 429, gives up on 400', async () => {
    const rx = await receiver((i, req) => (req.url === '/bad' ? 400 : i < 2 ? (i === 0 ? 500 : 429) : 200));
    const { n, counts } = notifier([{ ...parseWebhookSpec(`${rx.url}/flaky`), maxRetries: 3 }]);
    n.notify([alert()]);
    await waitFor(() => rx.got.length === 1 && counts.ok === 1, 5000, 'delivery after retries');
    expect(rx.attempts()).toBe(3);
    expect(counts).toMatchObject({ ok: 1, retried: 2, failed: 0 });

    const rx2 = await receiver(() => 400);
    const b = notifier([parseWebhookSpec(`${rx2.url}/bad`)]);
    b.n.notify([alert()]);
    await waitFor(() => b.counts.failed === 1, 3000, 'give up');
    await new Promise((r) => setTimeout(r, 100));
    expect(rx2.attempts()).toBe(1);
    expect(b.counts.retried).toBe(0);
  });

  it('a network error is retried, then given up on after maxRetries', async () => {
    const { n, counts } = notifier([{ ...parseWebhookSpec('http://127.0.0.1:9/x'), maxRetries: 2 }]);
    n.notify([alert()]);
    await waitFor(() => counts.failed === 1, 3000, 'give up');
    expect(counts.retried).toBe(2);
  });

  it('rate limit: N per minute, the excess is coalesced into one summary and counted', async () => {
    const rx = await receiver();
    const clock = new ManualClock(1_750_000_000_000);
    const { n, counts } = notifier([{ ...parseWebhookSpec(rx.url), ratePerMinute: 3 }], clock);
    const many = Array.from({ length: 10 }, (_, i) =>
      alert({ id: `a${i}`, rule: i % 2 ? 'node_offline' : 'gpu_temperature_high' }),
    );
    n.notify(many);
    await waitFor(() => rx.got.length === 3, 3000, 'three messages');
    expect(counts.rateLimited).toBe(7);
    // No token yet: nothing more.
    n.flushSummaries();
    await new Promise((r) => setTimeout(r, 100));
    expect(rx.got).toHaveLength(3);
    // 20 s later one token is back: one summary for the 7 held back.
    clock.advance(20_000);
    n.flushSummaries();
    await waitFor(() => rx.got.length === 4, 3000, 'summary');
    expect(rx.got[3]!.body).toMatchObject({
      kind: 'summary',
      suppressed: 7,
      suppressedByRule: { gpu_temperature_high: 3, node_offline: 4 },
    });
    expect(rx.got[3]!.body.text).toContain('7 more alert change(s)');
  });

  it('severity filter per webhook', async () => {
    const rx = await receiver();
    const { n } = notifier([{ ...parseWebhookSpec(rx.url), minSeverity: 'critical' }]);
    n.notify([alert({ severity: 'info', rule: 'gpu_idle_held' }), alert()]);
    await waitFor(() => rx.got.length === 1, 3000, 'one message');
    await new Promise((r) => setTimeout(r, 50));
    expect(rx.got).toHaveLength(1);
    expect((rx.got[0]!.body.alerts as Alert[])[0]!.severity).toBe('critical');
  });
});

describe('hostile names in webhook bodies', () => {
  const hostile = '<!channel> <https://evil.example|click> & <@U123> <!date^1^{date}|x>';

  /** Every mrkdwn string of a Slack body. */
  function slackTexts(body: Record<string, unknown>): string[] {
    const out: string[] = [];
    const walk = (v: unknown, key: string) => {
      if (typeof v === 'string' && key === 'text') out.push(v);
      else if (Array.isArray(v)) for (const x of v) walk(x, key);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
    };
    walk(body, '');
    return out;
  }

  it('Slack: node, GPU, project, rule and message are escaped; no mention or link gets through', async () => {
    const rx = await receiver();
    const { n, counts } = notifier([
      parseWebhookSpec(`slack+${rx.url}/slack`),
      parseWebhookSpec(`${rx.url}/json`),
    ]);
    const a = alert({
      node: `node ${hostile}`,
      gpuUuid: `GPU-${hostile}`,
      project: `proj ${hostile}`,
      rule: `rule ${hostile}`,
      message: `GPU ${hostile} on ${hostile} is hot`,
    });
    n.notify([a]);
    await waitFor(() => rx.got.length === 2 && counts.ok === 2, 3000, 'two deliveries');
    const slack = rx.got.find((g) => g.path === '/slack')!.body;
    const texts = slackTexts(slack);
    expect(texts.length).toBeGreaterThanOrEqual(6);
    for (const t of texts) {
      // Only our own date token may open Slack markup; nothing from the alert does.
      const markup = t.match(/<[^>]*>/g) ?? [];
      expect(
        markup.every((m) => m.startsWith(`<!date^${Math.floor(a.startedAt / 1000)}^`)),
        t,
      ).toBe(true);
      expect(t).not.toContain('<!channel>');
      expect(t).not.toContain('<https://evil');
      expect(t).not.toMatch(/&(?!amp;|lt;|gt;)/);
    }
    expect(texts.join('\n')).toContain(
      'node &lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; &lt;@U123&gt;',
    );
    expect(texts.join('\n')).toContain('*Project*\nproj &lt;!channel&gt;');

    // The generic body stays JSON with the values as they are.
    const json = rx.got.find((g) => g.path === '/json')!.body;
    expect(json.alerts).toEqual([a]);
    expect(json.text).toContain(`rule ${hostile} firing on node ${hostile}`);
  });

  it('Slack summary text is escaped too', async () => {
    const rx = await receiver();
    const target = { ...parseWebhookSpec(`slack+${rx.url}/slack`), ratePerMinute: 1 };
    const { n, clock } = notifier([target]);
    n.notify([alert({ rule: `<!here> ${hostile}` }), alert({ rule: `<!here> ${hostile}` })]);
    clock.advance(61_000);
    n.flushSummaries();
    await waitFor(() => rx.got.length === 2, 3000, 'alert and summary');
    const summary = rx.got[1]!.body.text as string;
    expect(summary).toContain('held back');
    expect(summary).not.toMatch(/<[^>]*>/);
  });
});
