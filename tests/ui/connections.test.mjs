// The web UI's connection limits under a slow-request attack (docs/API.md
// "Security", "Connections"): a real daemon on 127.0.0.1, and raw TCP
// clients from several loopback addresses (127.0.0.N bound as the source)
// that each send a request line and half a header, then trickle a byte a
// second and never finish. During the attack the page and the API answer
// at once, from an attacking address and from another; an event stream and
// a kept-alive connection opened before it live through it; one address
// never holds more than its share; every attack connection is closed by the
// server within the request timeout; each refusal is logged once per
// address. CTest: ui.connections. By hand:
// LS_BINARY_DIR=build node --test tests/ui/connections.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import * as h from './harness.mjs';

h.checkSetup();

// apps/lanspread/slots.h
const TOTAL = 64;
const PER_ADDRESS = 16;
const REQUEST_TIMEOUT_MS = 10000;

const ANSWER_MS = 2000 * h.T; // what "the page still loads" allows
const CLOSE_SLACK_MS = 1000 * h.T; // from the deadline to the client seeing the close

// Connections that never finish their request. Each remembers when it was
// opened and when the server closed it. While `reopen` is set, one the
// server closes is replaced 100 ms later, as an attacker would (at full,
// that one closes another: the attack goes on at 10 a second per slot
// lost).
class SlowClients {
  constructor(port, hostHeader) {
    this.port = port;
    this.hostHeader = hostHeader;
    this.all = [];
    this.reopen = false;
    this.timer = setInterval(() => this.trickle(), 1000);
  }

  open(from) {
    const c = { from, opened: Date.now(), closed: null, byUs: false };
    c.sock = net.connect({ host: '127.0.0.1', port: this.port, localAddress: from });
    c.connected = new Promise((resolve) => {
      c.sock.on('connect', () => {
        c.sock.write(`GET / HTTP/1.1\r\nHost: ${this.hostHeader}\r\nX-Slow: `);
        resolve();
      });
      c.sock.on('close', resolve);
    });
    c.sock.on('error', () => {}); // a reset by the server is a close too
    c.sock.on('close', () => {
      c.closed = Date.now();
      if (this.reopen && !c.byUs) setTimeout(() => this.reopen && this.open(from), 100);
    });
    this.all.push(c);
    return c;
  }

  trickle() {
    for (const c of this.alive()) c.sock.write('a');
  }

  alive(from = null) {
    return this.all.filter((c) => c.closed === null && (from === null || c.from === from));
  }

  stop() {
    this.reopen = false;
    clearInterval(this.timer);
    for (const c of this.alive()) {
      c.byUs = true;
      c.sock.destroy();
    }
  }
}

// GET path from a source address on a connection of its own; resolves
// {status, ms}, rejects when no answer comes in 3 × ANSWER_MS.
function timedGet(d, path, from) {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: d.port, path, localAddress: from, agent: false,
      headers: { Host: d.hostHeader, 'X-Lanspread-Key': d.key } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - t0 }));
    });
    req.setTimeout(3 * ANSWER_MS, () =>
      req.destroy(new Error(`GET ${path} from ${from}: no answer in ${3 * ANSWER_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

// GET /api/state through a keep-alive agent of one socket; resolves
// {status, reused} (reused: it went over the socket of the last request).
function keptAliveGet(d, agent) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: d.port, path: '/api/state', agent,
      headers: { Host: d.hostHeader, 'X-Lanspread-Key': d.key } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket }));
    });
    req.setTimeout(3 * ANSWER_MS, () => req.destroy(new Error('kept-alive GET /api/state: no answer')));
    req.on('error', reject);
    req.end();
  });
}

// A settings change (a new name) reaches the event stream in ANSWER_MS.
async function streamFollows(d, stream, name) {
  const since = stream.mark();
  await d.ok('PUT', '/api/settings', { name });
  await stream.waitFor('settings', (data) => data.settings?.name === name, ANSWER_MS / h.T, { since });
}

const ATTACKERS = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const PER_ATTACKER = 20; // 100 in all: more than the 64 slots
const BYSTANDER = '127.0.0.9';

test('connections that never finish their request do not lock out the page', { timeout: 90000 }, async (t) => {
  await h.withEnv('connections', async (env) => {
    const d = await env.startDaemon(); // no game directory: the UI alone
    const stream = d.events();
    env.streams.push(stream);
    await stream.waitFor('snapshot');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    env.onCleanup(() => agent.destroy());
    assert.equal((await keptAliveGet(d, agent)).status, 200);
    const slow = new SlowClients(d.port, d.hostHeader);
    env.onCleanup(() => slow.stop());

    await t.test('with 100 held half-requests the page loads at once', async () => {
      for (const from of ATTACKERS) for (let i = 0; i < PER_ATTACKER; i++) slow.open(from);
      await Promise.all(slow.all.map((c) => c.connected));
      await h.sleep(500);
      for (const from of [ATTACKERS[0], BYSTANDER]) {
        const page = await timedGet(d, '/', from);
        t.diagnostic(`GET / from ${from}: ${page.ms} ms`);
        assert.equal(page.status, 200);
        assert.ok(page.ms < ANSWER_MS, `GET / from ${from} took ${page.ms} ms`);
      }
    });

    await t.test(`one address holds at most ${PER_ADDRESS}, all together at most ${TOTAL}`, () => {
      const counts = ATTACKERS.map((from) => `${from}: ${slow.alive(from).length}`).join(', ');
      t.diagnostic(`attack connections held: ${counts}`);
      for (const from of ATTACKERS)
        assert.ok(slow.alive(from).length <= PER_ADDRESS, `attack connections held: ${counts}`);
      // 127.0.0.1 also holds the event stream and the kept-alive connection.
      assert.ok(slow.alive().length <= TOTAL - 2, `attack connections held: ${counts}`);
      assert.ok(slow.alive().length >= TOTAL - 2 - 4,
        `the attack holds nearly every free slot (else it tests nothing): ${counts}`);
    });

    await t.test('while the attack retakes every slot, the page, the API and the stream answer at once', async () => {
      const before = slow.all.length;
      slow.reopen = true;
      for (const from of ATTACKERS) slow.open(from); // every slot taken again
      for (const from of [ATTACKERS[0], ATTACKERS[4], BYSTANDER]) {
        for (const path of ['/', '/api/state']) {
          await h.sleep(200); // the attack has retaken the slot the last request freed
          const r = await timedGet(d, path, from);
          t.diagnostic(`GET ${path} from ${from} under attack: ${r.ms} ms`);
          assert.equal(r.status, 200, `GET ${path} from ${from}`);
          assert.ok(r.ms < ANSWER_MS, `GET ${path} from ${from} took ${r.ms} ms`);
        }
      }
      await h.sleep(200);
      await streamFollows(d, stream, 'under-attack');
      slow.reopen = false;
      const retaken = slow.all.length - before - ATTACKERS.length;
      t.diagnostic(`attack connections reopened meanwhile: ${retaken}`);
      assert.ok(retaken >= 7, `each request had to make room: only ${retaken} reopened`);
    });

    await t.test(`the server closes each within ${REQUEST_TIMEOUT_MS} ms`, async () => {
      await h.until('every attack connection to be closed by the server', () => slow.alive().length === 0,
        (REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS + 2000) / h.T, 200);
      const lives = slow.all.map((c) => c.closed - c.opened);
      const longest = Math.max(...lives);
      const cut = lives.filter((ms) => ms < REQUEST_TIMEOUT_MS - 500).length;
      t.diagnostic(`${slow.all.length} attack connections: ${cut} cut early to make room, ` +
        `${slow.all.length - cut} closed at the deadline; the longest lived ${longest} ms`);
      assert.ok(longest <= REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS, `one lived ${longest} ms`);
      // The last ones were kept to their deadline, though idle at most a second.
      assert.ok(longest >= REQUEST_TIMEOUT_MS - 500, `the longest lived only ${longest} ms`);
      assert.ok(!slow.all.some((c) => c.byUs));
    });

    await t.test('the event stream and the kept-alive connection lived through it', async () => {
      assert.equal(stream.closed, false, 'the event stream was closed');
      await streamFollows(d, stream, 'after-attack');
      const again = await keptAliveGet(d, agent);
      assert.equal(again.status, 200);
      assert.equal(again.reused, true, 'the kept-alive connection was closed');
    });

    await t.test('each reason is logged once per address', () => {
      const lines = d.proc.stderr.split('\n').filter((l) => l.startsWith('lanspread: UI: '));
      assert.ok(lines.some((l) => /no whole request in 10 s/.test(l)), `no timeout logged:\n${lines.join('\n')}`);
      assert.ok(lines.some((l) => /to admit a new one/.test(l)), `no eviction logged:\n${lines.join('\n')}`);
      assert.equal(new Set(lines).size, lines.length, `a line repeated:\n${lines.join('\n')}`);
      assert.ok(lines.length <= 5 * ATTACKERS.length, `${lines.length} lines:\n${lines.join('\n')}`);
    });
  });
});
