// Shared helpers of the web UI tests (api.test.mjs, browser.test.mjs): real
// processes of the build tree (lanspread, lanspread-peer-cli, lanspread-gen)
// on 127.0.0.1, real files in a temporary directory per test, raw HTTP with
// node:http (the tests send Host and Origin headers that fetch forbids) and
// a Server-Sent Events client, and a rate-limited UDP link between peers.
//
// Every test runs inside withEnv(t, async (env) => ...): the env makes the
// temporary directory, tracks every process it starts and, at the end,
// stops them with SIGTERM and checks that each exited with status 0 (in the
// ASan build a leak or sanitizer report makes it non-zero; its stderr is
// printed). On failure, SIGINT or SIGTERM every process is killed and the
// directory removed all the same; children also die with this process
// (setpriv --pdeathsig) when it is killed outright, e.g. by a CTest timeout.
//
// Environment: LS_SOURCE_DIR (the source tree; default ../.. from here),
// LS_BINARY_DIR (the build tree; default LS_SOURCE_DIR/build), CTest sets
// both. LS_UI_KEEP=1 keeps the temporary directories.

import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.LS_SOURCE_DIR || path.resolve(here, '../..');
export const BINARY_DIR = process.env.LS_BINARY_DIR || path.join(SOURCE_DIR, 'build');
export const UI_DIR = path.join(SOURCE_DIR, 'tests/ui');
export const DAEMON = path.join(BINARY_DIR, 'lanspread');
export const PEER_CLI = path.join(BINARY_DIR, 'lanspread-peer-cli');
export const GEN = path.join(BINARY_DIR, 'lanspread-gen');
export const SCREENSHOT_DIR = path.join(BINARY_DIR, 'ui-screenshots');
export const CHROMIUM = process.env.LS_CHROMIUM || '/usr/bin/chromium';
const KEEP = process.env.LS_UI_KEEP === '1';

// The version `lanspread --version` prints ("lanspread 0.1.0" -> "0.1.0").
export function daemonVersion() {
  return execFileSync(DAEMON, ['--version'], { encoding: 'utf8' }).trim().replace(/^lanspread /, '');
}

// An instrumented daemon (build-asan, build-tsan) is several times slower.
export const SLOW = fs.existsSync(path.join(BINARY_DIR, 'CMakeCache.txt')) &&
  /LS_(SANITIZE|TSAN):BOOL=ON/.test(fs.readFileSync(path.join(BINARY_DIR, 'CMakeCache.txt'), 'utf8'));
export const T = SLOW ? 2 : 1; // timeout factor

// ---- what the tests need: fail loudly, never skip ---------------------------

// Throws when the npm packages or the programs are missing, so the test
// fails with a message saying what to do.
export function checkSetup({ browser = false } = {}) {
  const problems = [];
  if (!fs.existsSync(path.join(UI_DIR, 'node_modules', 'playwright-core', 'package.json')))
    problems.push(`${UI_DIR}/node_modules is missing: run scripts/setup-ui-tests`);
  if (browser && !fs.existsSync(CHROMIUM))
    problems.push(`${CHROMIUM} is missing: run scripts/setup-ui-tests`);
  for (const p of [DAEMON, PEER_CLI, GEN])
    if (!fs.existsSync(p)) problems.push(`${p} is missing: build the tree first (LS_BINARY_DIR=${BINARY_DIR})`);
  if (problems.length) throw new Error(problems.join('\n'));
}

// ---- small utilities ---------------------------------------------------------

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() (sync or async) every `every` ms until it returns a truthy
// value, which is returned; throws with `what` (and the last value or error)
// after timeoutMs.
export async function until(what, fn, timeoutMs = 10000, every = 100) {
  const deadline = Date.now() + timeoutMs * T;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs * T} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(every);
  }
}

// promise, or a rejection after ms (the timer never outlives the race).
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Lists the files (not directories) under dir, relative, sorted; [] when
// dir does not exist.
export function listFiles(dir) {
  const out = [];
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  if (fs.existsSync(dir)) walk(dir, '');
  return out.sort();
}

export const exists = (p) => fs.existsSync(p);

// ---- processes -----------------------------------------------------------------

const live = new Set();    // every Proc still running, for the last-resort kill
const tempDirs = new Set(); // every temporary directory not yet removed

function lastResort() {
  for (const p of live) {
    try { process.kill(p.group ? -p.pid : p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  live.clear();
  if (!KEEP) for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}
process.on('exit', lastResort);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    lastResort();
    process.exit(128 + os.constants.signals[sig]);
  });
}

const hasSetpriv = fs.existsSync('/usr/bin/setpriv');

// A child process: stdout kept as lines, stderr kept (and in a log file).
export class Proc {
  // group: run it in a process group of its own and signal the whole group
  // (what Ctrl-C in a terminal does).
  constructor(name, cmd, args, { logDir, env, cwd, expectCode = 0, group = false } = {}) {
    this.name = name;
    this.group = group;
    this.expectCode = expectCode; // the exit status stop() wants
    this.cmdline = [cmd, ...args].join(' ');
    const [file, argv] = hasSetpriv
      ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args]]
      : [cmd, args];
    this.child = spawn(file, argv, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      cwd,
      detached: group,
    });
    this.pid = this.child.pid;
    this.lines = [];
    this.stdoutText = '';
    this.stderr = '';
    this.exit = null; // {code, signal} once exited
    this.waiters = new Set();
    this.log = logDir ? fs.createWriteStream(path.join(logDir, `${name}.stderr.log`)) : null;
    live.add(this);
    let partial = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (s) => {
      this.stdoutText += s;
      partial += s;
      const parts = partial.split('\n');
      partial = parts.pop();
      for (const l of parts) this.lines.push(l);
      this._wake();
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s) => {
      this.stderr += s;
      if (this.stderr.length > 4 << 20) this.stderr = this.stderr.slice(-(2 << 20));
      this.log?.write(s);
    });
    this.child.stdin.on('error', () => {}); // EPIPE after exit
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.stderr += `\n[spawn error: ${e.message}]`;
        this.exit = { code: -1, signal: null };
        live.delete(this);
        this._wake();
        resolve(this.exit);
      });
      this.child.on('close', (code, signal) => {
        if (partial) this.lines.push(partial), (partial = '');
        this.exit = { code, signal };
        live.delete(this);
        this.log?.end();
        this._wake();
        resolve(this.exit);
      });
    });
  }

  get running() { return this.exit === null; }

  _wake() { for (const w of this.waiters) w(); }

  // The first stdout line (from index `from`) for which pred(line, json)
  // holds; json is the parsed line or null. Resolves {line, json, index}.
  waitLine(pred, timeoutMs = 10000, from = 0, what = 'a line') {
    return new Promise((resolve, reject) => {
      let i = from;
      const check = () => {
        for (; i < this.lines.length; i++) {
          const line = this.lines[i];
          let json = null;
          try { json = JSON.parse(line); } catch { /* not JSON */ }
          if (pred(line, json)) { done(); resolve({ line, json, index: i }); return; }
        }
        if (!this.running) {
          done();
          reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before ${what}\n` +
            this.describe()));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: timed out after ${timeoutMs * T} ms waiting for ${what}\n` +
          this.describe()));
      }, timeoutMs * T);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }

  write(text) { this.child.stdin.write(text); }

  signal(sig) {
    if (this.running) try { process.kill(this.group ? -this.pid : this.pid, sig); } catch { /* gone */ }
  }

  // Last lines of stdout and stderr, for failure messages.
  describe(maxChars = 6000) {
    const tail = (s) => (s.length > maxChars ? `[...]${s.slice(-maxChars)}` : s);
    return `--- ${this.name}: ${this.cmdline}\n--- stdout:\n${tail(this.lines.join('\n'))}\n` +
      `--- stderr:\n${tail(this.stderr)}\n--- end of ${this.name}`;
  }

  // SIGTERM (or `sig`), waits, and asserts exit status 0 (no signal).
  async stop({ sig = 'SIGTERM', timeoutMs = 15000, expectCode = this.expectCode } = {}) {
    if (this.running) {
      this.signal(sig);
      try {
        await withTimeout(this.exited, timeoutMs * T, `${this.name} to exit after ${sig}`);
      } catch (e) {
        this.signal('SIGKILL');
        await this.exited;
        throw new Error(`${this.name} did not exit within ${timeoutMs * T} ms of ${sig}\n${this.describe()}`);
      }
    }
    const { code, signal } = this.exit;
    if (code !== expectCode || signal !== null) {
      throw new Error(`${this.name} exited with ${signal ? `signal ${signal}` : `status ${code}`}, ` +
        `expected status ${expectCode}\n${this.describe(20000)}`);
    }
  }

  // SIGKILL (for a group: to whatever is left of the group too).
  kill() {
    if (this.group) try { process.kill(-this.pid, 'SIGKILL'); } catch { /* gone */ }
    else this.signal('SIGKILL');
    return this.exited;
  }
}

// ---- raw HTTP ------------------------------------------------------------------

// One HTTP request with exactly the headers given (Host included: `host`
// defaults to the address connected to). body: a string, Buffer or object
// (sent as JSON). Resolves {status, headers, text, json}.
export function httpRequest({ port, addr = '127.0.0.1', method = 'GET', path: p = '/',
  headers = {}, host, body, timeoutMs = 15000 }) {
  return new Promise((resolve, reject) => {
    const h = { Host: host ?? `${addr}:${port}`, ...headers };
    let payload = null;
    if (body !== undefined && body !== null) {
      payload = Buffer.isBuffer(body) ? body
        : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type'))
        h['Content-Type'] = 'application/json';
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'transfer-encoding'))
        h['Content-Length'] = String(payload.length);
    }
    let settled = false;
    const req = http.request({ host: addr, port, method, path: p, headers: h, agent: false,
      setHost: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        settled = true;
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    });
    req.setTimeout(timeoutMs * T, () => req.destroy(new Error(`${method} ${p}: no answer in ${timeoutMs * T} ms`)));
    // A server may answer (413) and close before it has read the whole body:
    // a write error after the answer started is not a failure.
    req.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    if (payload) req.end(payload);
    else req.end();
  });
}

// ---- Server-Sent Events ----------------------------------------------------------

// A client of GET /api/events: keeps every record {event, id, data (parsed
// JSON, or the raw string), index}.
export class EventStream {
  constructor(daemon, { key = daemon.key, headers = {} } = {}) {
    this.daemon = daemon;
    this.events = [];
    this.comments = 0;
    this.waiters = new Set();
    this.closed = false;
    this.status = null;
    this.headers = null;
    this.opened = new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: daemon.port, method: 'GET', agent: false, setHost: false,
        path: '/api/events',
        headers: { Host: daemon.hostHeader, Accept: 'text/event-stream',
          ...(key !== null ? { 'X-Lanspread-Key': key } : {}), ...headers },
      }, (res) => {
        this.res = res;
        this.status = res.statusCode;
        this.headers = res.headers;
        res.setEncoding('utf8');
        let buf = '';
        let rec = { event: 'message', id: null, data: [] };
        res.on('data', (s) => {
          buf += s;
          const lines = buf.split(/\r\n|\r|\n/);
          buf = lines.pop();
          for (const line of lines) {
            if (line === '') {
              if (rec.data.length) {
                const raw = rec.data.join('\n');
                let data;
                try { data = JSON.parse(raw); } catch { data = raw; }
                this.events.push({ event: rec.event, id: rec.id, data, index: this.events.length });
              }
              rec = { event: 'message', id: null, data: [] };
              continue;
            }
            if (line.startsWith(':')) { this.comments++; continue; }
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            let value = c < 0 ? '' : line.slice(c + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'event') rec.event = value;
            else if (field === 'id') rec.id = value;
            else if (field === 'data') rec.data.push(value);
          }
          this._wake();
        });
        res.on('end', () => { this.closed = true; this._wake(); });
        res.on('error', () => { this.closed = true; this._wake(); });
        resolve(res.statusCode);
      });
      req.on('error', (e) => { this.closed = true; this._wake(); reject(e); });
      req.end();
      this.req = req;
    });
  }

  _wake() { for (const w of this.waiters) w(); }

  // Index of the next event to come: pass it as `since` to wait only for
  // events after this point.
  mark() { return this.events.length; }

  names(since = 0) { return this.events.slice(since).map((e) => e.event); }

  // The first event named `name` (any name when null) at index >= since
  // for which pred(data, event) holds.
  waitFor(name, pred = () => true, timeoutMs = 10000, { since = 0 } = {}) {
    return new Promise((resolve, reject) => {
      let i = since;
      const check = () => {
        for (; i < this.events.length; i++) {
          const e = this.events[i];
          if ((name === null || e.event === name) && pred(e.data, e)) { done(); resolve(e); return; }
        }
        if (this.closed) { done(); reject(new Error(`event stream closed while waiting for ${name}`)); }
      };
      const timer = setTimeout(() => {
        done();
        const seen = this.names(since).slice(-40).join(', ');
        reject(new Error(`timed out after ${timeoutMs * T} ms waiting for event ${name}; ` +
          `events since: ${seen}`));
      }, timeoutMs * T);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }

  close() {
    this.closed = true;
    this.req?.destroy();
    this._wake();
  }
}

// ---- a rate-limited link ------------------------------------------------------------

// A UDP relay on 127.0.0.1 that stands for `target` (HOST:PORT of a peer):
// what its one client (the first address that sends to it) sends goes to
// the target unchanged; what comes back (from the target, on the relay's
// other socket, whichever side opened the QUIC connection) reaches the
// client through a token bucket of `rate` bytes/s with a drop-tail queue
// of `queueBytes`, as tbf shapes a link. So a peer given relay.addr
// instead of the seeder's downloads from it at about `rate`.
export class Relay {
  static async start({ target, rate, queueBytes = 256 * 1024, burst = 64 * 1024 }) {
    const r = new Relay(target, rate, queueBytes, burst);
    await Promise.all([r.front, r.back].map((sock) => new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => { sock.off('error', reject); resolve(); });
    })));
    r.port = r.front.address().port;
    r.addr = `127.0.0.1:${r.port}`;
    return r;
  }

  constructor(target, rate, queueBytes, burst) {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.split(':').pop())];
    Object.assign(this, { rate, queueBytes, burst, tokens: burst, last: process.hrtime.bigint() });
    this.queue = [];
    this.queued = 0;
    this.dropped = 0;
    this.client = null;
    this.timer = null;
    const opts = { type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 };
    this.front = dgram.createSocket(opts); // faces the client
    this.back = dgram.createSocket(opts);  // faces the target
    this.front.on('message', (msg, from) => {
      this.client = { port: from.port, address: from.address };
      this.back.send(msg, port, host);
    });
    this.back.on('message', (msg) => {
      if (!this.client || this.queued + msg.length > this.queueBytes) { this.dropped++; return; }
      this.queue.push(msg);
      this.queued += msg.length;
      this._pump();
    });
    for (const sock of [this.front, this.back]) sock.on('error', () => {}); // ICMP errors: the peer went
  }

  _pump() {
    const now = process.hrtime.bigint();
    this.tokens = Math.min(this.burst, this.tokens + (Number(now - this.last) / 1e9) * this.rate);
    this.last = now;
    while (this.queue.length && this.tokens >= this.queue[0].length) {
      const msg = this.queue.shift();
      this.queued -= msg.length;
      this.tokens -= msg.length;
      this.front.send(msg, this.client.port, this.client.address);
    }
    if (this.queue.length && !this.timer && !this.closed) {
      this.timer = setTimeout(() => { this.timer = null; this._pump(); }, 1);
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    for (const sock of [this.front, this.back]) try { sock.close(); } catch { /* closed */ }
  }
}

// ---- the daemon ----------------------------------------------------------------

export class Daemon {
  constructor(proc, opts) {
    this.proc = proc;
    this.opts = opts;
  }

  get hostHeader() { return `127.0.0.1:${this.port}`; }

  // A request with the API key (unless key: null) and the right Host.
  api(method, p, { key = this.key, headers = {}, body, host } = {}) {
    const h = { ...headers };
    if (key !== null) h['X-Lanspread-Key'] = key;
    return httpRequest({ port: this.port, method, path: p, headers: h, body, host });
  }

  // GET/POST/PUT that must answer `status`; returns the JSON body.
  async ok(method, p, body, status = 200) {
    const r = await this.api(method, p, { body });
    assert.equal(r.status, status, `${method} ${p} ${body ? JSON.stringify(body) : ''}: ` +
      `expected ${status}, got ${r.status} ${r.text}`);
    return r.json;
  }

  card(id) { return this.ok('GET', `/api/games/${id}`); }

  // Polls GET /api/games/ID until pred(card) holds; returns the card.
  async waitCard(id, pred, what, timeoutMs = 30000) {
    let last = null;
    try {
      return await until(`card ${id}: ${what}`, async () => {
        const r = await this.api('GET', `/api/games/${id}`);
        last = r.json ?? r.text;
        return r.status === 200 && pred(r.json) ? r.json : false;
      }, timeoutMs, 150);
    } catch (e) {
      throw new Error(`${e.message}\nlast card: ${JSON.stringify(last)}`);
    }
  }

  events(opts) { return new EventStream(this, opts); }

  // The one-time login address the daemon keeps in STATE/login-url (what
  // `lanspread --login-url` prints); each works once.
  loginUrl() {
    return fs.readFileSync(path.join(this.opts.stateDir, 'login-url'), 'utf8').trim();
  }

  // Logs a browser context in: a page of it opens a fresh login address,
  // which sets the session cookie and lands on the UI.
  async login(context) {
    const page = await context.newPage();
    const url = this.loginUrl();
    const res = await page.goto(url); // a page that goes on to / itself
    await page.waitForURL((u) => u.pathname === '/', { timeout: 10000 * T })
      .catch(() => assert.fail(`${url} led to ${page.url()} (${res?.status()})`));
    await page.close();
  }

  // A session cookie from a login address, for raw requests
  // ({Cookie: ...}); with the page's Origin for changes.
  async sessionHeaders() {
    const u = new URL(this.loginUrl());
    const r = await httpRequest({ port: this.port, path: u.pathname + u.search });
    assert.equal(r.status, 200, `login answered ${r.status}: ${r.text}`);
    const cookie = String(r.headers['set-cookie']).split(';')[0];
    return { Cookie: cookie, Origin: `http://${this.hostHeader}` };
  }

  stop(opts) { return this.proc.stop(opts); }
}

// ---- a test's environment --------------------------------------------------------

let envCount = 0;

export class Env {
  constructor(name) {
    this.name = name;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanspread-ui-'));
    tempDirs.add(this.dir);
    this.procs = [];
    this.cleanups = []; // async functions run first at the end (browsers, servers)
    this.streams = [];
    this.id = ++envCount;
  }

  path(...parts) { return path.join(this.dir, ...parts); }

  mkdir(...parts) {
    const p = this.path(...parts);
    fs.mkdirSync(p, { recursive: true });
    return p;
  }

  onCleanup(fn) { this.cleanups.push(fn); }

  // Writes a catalog; games: [{id, name, genre, max_players, size, launch,
  // description}] (name defaults from the id).
  writeCatalog(games, file = 'catalog.json') {
    const p = this.path(file);
    const list = games.map((g) => ({
      name: `Test game ${g.id}`, genre: 'Test', max_players: 4, ...g,
    }));
    fs.writeFileSync(p, JSON.stringify({ games: list }, null, 2));
    return p;
  }

  // A downloaded game root gameDir/ID: version.ini plus one tar archive
  // (ID.part01.eti, or archiveName) made from `files` ({relpath: string |
  // {content, mode} | {random: bytes}}) with tar -cf; several archives
  // (ID.partNN.eti): `archives`, a list of such file maps. Writing into an
  // existing root replaces those files (how a seeder gets a new version).
  // Returns the root.
  makeGame(gameDir, { id, version = '1.0', files = {}, archives, archiveName }) {
    const root = path.join(gameDir, id);
    fs.mkdirSync(root, { recursive: true });
    const sets = archives ?? [files];
    sets.forEach((set, i) => {
      const stage = fs.mkdtempSync(path.join(this.dir, `stage-${id}-`));
      for (const [rel, spec] of Object.entries(set)) {
        const f = path.join(stage, rel);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        const s = typeof spec === 'string' ? { content: spec } : spec;
        if (s.random !== undefined) writeRandomFile(f, s.random);
        else fs.writeFileSync(f, s.content ?? '');
        fs.chmodSync(f, s.mode ?? 0o644);
      }
      const name = archiveName && sets.length === 1 ? archiveName
        : `${id}.part${String(i + 1).padStart(2, '0')}.eti`;
      const tmp = path.join(this.dir, `.${id}.${process.pid}.${i}.tmp`);
      execFileSync('tar', ['-cf', tmp, '-C', stage, ...fs.readdirSync(stage).sort()]);
      fs.renameSync(tmp, path.join(root, name)); // atomic: a running seeder never sees half of it
      fs.rmSync(stage, { recursive: true, force: true });
    });
    writeAtomic(path.join(root, 'version.ini'), `${version}\n`);
    return root;
  }

  // Big games made fast by lanspread-gen (tar archives of pseudo-random
  // data); returns the root of gameDir/ID.
  genGame(gameDir, { id, size, archives = 4, version = '1.0' }) {
    const m = /^(.*?)(\d{4})$/.exec(id);
    assert.ok(m, `genGame: id must end in 4 digits: ${id}`);
    execFileSync(GEN, ['--quiet', '--game-dir', gameDir, '--id-prefix', m[1], '--first', String(Number(m[2])),
      '--games', '1', '--archives', String(archives), '--size', size, '--format', 'tar',
      '--game-version', version]);
    return path.join(gameDir, id);
  }

  // A script bin/play.sh that writes `marker` (an absolute path) with its
  // arguments and working directory: the payload of a playable game.
  playScript(marker) {
    return {
      content: `#!/bin/sh\necho "played $$ in $(pwd)" > '${marker}.tmp'\nmv '${marker}.tmp' '${marker}'\n`,
      mode: 0o755,
    };
  }

  _track(proc) {
    this.procs.push(proc);
    return proc;
  }

  // A seeding lanspread-peer-cli (--serve), with `args` added (e.g.
  // ['--party-key-file', F]). Resolves the Proc with .addr (HOST:PORT),
  // .port and .ready (its ready line).
  async startSeeder({ name = 'seeder', gameDir, stateDir, catalog, listen = '127.0.0.1:0',
    peers = [], env, args: extra = [] } = {}) {
    gameDir ??= this.mkdir(name, 'games');
    stateDir ??= this.path(name, 'state');
    const args = ['--game-dir', gameDir, '--state-dir', stateDir, '--listen', listen,
      '--no-mdns', '--serve', '--name', name];
    if (catalog) args.push('--catalog', catalog);
    for (const p of peers) args.push('--peer', p);
    args.push(...extra);
    const p = this._track(new Proc(name, PEER_CLI, args, { logDir: this.dir, env }));
    const { json } = await p.waitLine((l, j) => j?.type === 'ready', 20000, 0, 'the ready line');
    p.ready = json;
    p.addr = json.listen;
    p.port = Number(json.listen.split(':').pop());
    p.gameDir = gameDir;
    p.stateDir = stateDir;
    p.peerId = json.peer_id;
    // Sends a command line, resolves its reply.
    p.command = async (line, timeoutMs = 20000) => {
      const from = p.lines.length;
      p.write(`${line}\n`);
      const cmd = line.split(' ')[0];
      const { json: reply } = await p.waitLine((l, j) => j?.type === 'reply' && j.cmd === cmd,
        timeoutMs, from, `the reply to '${line}'`);
      return reply;
    };
    return p;
  }

  // The daemon. Options: config, stateDir, catalog, gameDir (null: no
  // --game-dir), peers, gui (default 127.0.0.1:0), listen, name, extra args,
  // env, browser (true: no --no-browser), prefix (a command that runs the
  // daemon, e.g. ['ip', 'netns', 'exec', NS]).
  async startDaemon({ name = 'lanspread', config = this.path('config.json'), stateDir = this.path('state'),
    catalog, gameDir, peers = [], gui = '127.0.0.1:0', listen = '127.0.0.1:0', args: extra = [],
    env, noMdns = true, browser = false, prefix = [] } = {}) {
    const args = browser ? [] : ['--no-browser'];
    if (gui !== null) args.push('--gui', gui);
    if (config !== null) args.push('--config', config);
    if (stateDir !== null) args.push('--state-dir', stateDir);
    if (catalog) args.push('--catalog', catalog);
    if (gameDir) args.push('--game-dir', gameDir);
    if (listen !== null) args.push('--listen', listen);
    if (noMdns) args.push('--no-mdns');
    for (const p of peers) args.push('--peer', p);
    args.push(...extra);
    const [cmd, ...argv] = [...prefix, DAEMON, ...args];
    const proc = this._track(new Proc(name, cmd, argv, { logDir: this.dir, env }));
    const { line } = await proc.waitLine((l) => /^Lanspread UI: http:\/\/\S+\/$/.test(l), 20000, 0,
      'the "Lanspread UI: URL" line');
    const d = new Daemon(proc, { config, stateDir, catalog, gameDir, peers });
    d.url = line.slice('Lanspread UI: '.length);
    const u = new URL(d.url);
    d.port = Number(u.port);
    d.addr = u.hostname;
    // Local programs (these tests) use the API key of STATE/api-key; a
    // browser logs in (d.login).
    d.key = fs.readFileSync(path.join(stateDir, 'api-key'), 'utf8').trim();
    return d;
  }

  // A rate-limited link to a peer (Relay), closed at the end.
  async startRelay(opts) {
    const relay = await Relay.start(opts);
    this.onCleanup(() => relay.close());
    return relay;
  }

  // Starts another program: a Proc the env will stop and check (exit
  // status opts.expectCode, default 0).
  spawn(name, cmd, args, opts = {}) {
    return this._track(new Proc(name, cmd, args, { logDir: this.dir, ...opts }));
  }

  // SIGTERM to every process still running (newest first: the daemon before
  // the seeders it talks to), each must exit with status 0.
  async stopAll() {
    for (const s of this.streams) s.close();
    const errors = [];
    for (const p of [...this.procs].reverse()) {
      try {
        await p.stop();
      } catch (e) {
        errors.push(e.message);
      }
    }
    if (errors.length) throw new Error(errors.join('\n\n'));
  }

  // Kills what is left and removes the directory (also after a failure).
  async destroy({ failed = false } = {}) {
    for (const fn of this.cleanups.reverse()) {
      try { await fn(); } catch (e) { console.error(`cleanup: ${e.message}`); }
    }
    for (const s of this.streams) s.close();
    if (failed) {
      for (const p of this.procs) console.error(p.describe(12000));
    }
    await Promise.all(this.procs.map((p) => p.kill()));
    if (KEEP) console.error(`kept ${this.dir}`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
    tempDirs.delete(this.dir);
  }
}

// Runs fn(env) and then stops every process, asserting clean exits; on any
// failure prints every process's output, kills them and removes the files.
export async function withEnv(name, fn) {
  const env = new Env(name);
  let failed = true;
  try {
    const result = await fn(env);
    await env.stopAll();
    failed = false;
    return result;
  } finally {
    await env.destroy({ failed });
  }
}

// ---- files ---------------------------------------------------------------------

export function writeAtomic(file, content) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

// `bytes` of random-looking data: one random 1 MiB block, each copy
// stamped with its number (fast; not compressible by gzip's 32 KiB window).
export function writeRandomFile(file, bytes) {
  const fd = fs.openSync(file, 'w');
  const block = randomFillSync(Buffer.alloc(Math.min(bytes, 1 << 20)));
  for (let off = 0, n = 0; off < bytes; n++) {
    const len = Math.min(block.length, bytes - off);
    if (len >= 4) block.writeUInt32LE(n, 0);
    fs.writeSync(fd, block, 0, len, off);
    off += len;
  }
  fs.closeSync(fd);
}

// SHA-256 (hex) of a file's content.
export function sha256File(file) {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

// Screenshot path $LS_BINARY_DIR/ui-screenshots/NAME.png (dir created).
export function screenshotPath(name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return path.join(SCREENSHOT_DIR, `${name}.png`);
}
