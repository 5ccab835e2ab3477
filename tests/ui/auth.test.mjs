// Who may drive the web UI (docs/API.md "Logging in"): a real daemon, raw
// HTTP, Debian's Chromium and, for a UI on a LAN address, two network
// namespaces joined by a veth pair. Without a session a request sees the
// login page and no secret, /api/* answers 401; the one-time login address
// gives a session once; changes need the page's Origin; logout and a new
// password end sessions; off loopback the daemon needs a password, and
// another machine logs in with it (not without, not with a wrong one).
// CTest: ui.auth. By hand: LS_BINARY_DIR=build node --test tests/ui/auth.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import * as h from './harness.mjs';

h.checkSetup({ browser: true });
const run = promisify(execFile);

const assertError = (r, status, code, what) => {
  assert.equal(r.status, status, `${what}: status ${r.status} ${r.text}`);
  assert.equal(r.json?.code, code, `${what}: ${r.text}`);
};

// What `lanspread --set-ui-password` stores, from stdin.
function setPassword(stateDir, password) {
  execFileSync(h.DAEMON, ['--set-ui-password', '--state-dir', stateDir], { input: `${password}\n` });
}

test('sessions: the login page, the one-time address, CSRF, logout, a new password', { timeout: 60000 }, async (t) => {
  await h.withEnv('auth', async (env) => {
    const d = await env.startDaemon({ gameDir: env.mkdir('games') });
    const raw = (o) => h.httpRequest({ port: d.port, ...o });
    const first = d.loginUrl();

    await t.test('without a session: the login page, no secret, 401 on /api', async () => {
      const page = await raw({ path: '/' });
      assert.equal(page.status, 200);
      assert.match(page.text, /lanspread --login-url/);
      assert.match(page.text, /<form[^>]*hidden/, 'a password form without a password');
      assert.doesNotMatch(page.text, /id="library"/, 'the UI without a session');
      const token = new URL(first).searchParams.get('token');
      for (const secret of [d.key, token]) assert.ok(!page.text.includes(secret), 'a secret in the page');
      assert.doesNotMatch(page.text, /[0-9a-f]{64}/);
      assertError(await raw({ path: '/api/state' }), 401, 'login_required', 'GET /api/state');
      assertError(await raw({ path: '/api/events' }), 401, 'login_required', 'GET /api/events');
      assertError(await raw({ method: 'POST', path: '/api/games/x/download', body: {} }), 401,
        'login_required', 'POST');
      const st = fs.statSync(env.path('state', 'login-url'));
      assert.equal(st.mode & 0o777, 0o600, 'mode of STATE/login-url');
    });

    let cookie;
    await t.test('the one-time address logs in once; --login-url prints the next', async () => {
      const u = new URL(first);
      const r = await raw({ path: u.pathname + u.search });
      assert.equal(r.status, 200, r.text); // a page that goes on to / itself
      assert.match(r.text, /<meta http-equiv="refresh" content="0;url=\/">/);
      const set = String(r.headers['set-cookie']);
      assert.match(set, /^lanspread_session=[0-9a-f]{64}; /);
      assert.match(set, /HttpOnly/);
      assert.match(set, /SameSite=Strict/);
      cookie = set.split(';')[0];
      const again = await raw({ path: u.pathname + u.search });
      assert.equal(again.status, 403, 'a spent address logged in again');
      assert.equal(again.headers['set-cookie'], undefined);
      const printed = execFileSync(h.DAEMON, ['--login-url', '--state-dir', env.path('state')],
        { encoding: 'utf8' }).trim();
      assert.equal(printed, d.loginUrl());
      assert.notEqual(printed, first);
      const wrong = await raw({ path: `/login?token=${'0'.repeat(64)}` });
      assert.equal(wrong.status, 403);
    });

    await t.test('with the session: the UI, /api and the event stream', async () => {
      const page = await raw({ path: '/', headers: { Cookie: cookie } });
      assert.match(page.text, /id="library"/);
      assert.ok(!page.text.includes(d.key) && !page.text.includes(cookie.split('=')[1]));
      assert.equal((await raw({ path: '/api/state', headers: { Cookie: cookie } })).status, 200);
      const s = d.events({ key: null, headers: { Cookie: cookie } });
      env.streams.push(s);
      assert.equal(await s.opened, 200);
    });

    await t.test('a change needs the page\'s Origin (or Sec-Fetch-Site: same-origin)', async () => {
      const put = (headers) => raw({ method: 'PUT', path: '/api/settings', body: { name: 'changed' },
        headers: { Cookie: cookie, ...headers } });
      assertError(await put({}), 403, 'csrf', 'no Origin');
      assertError(await put({ 'Sec-Fetch-Site': 'cross-site' }), 403, 'csrf', 'cross-site');
      assertError(await put({ Origin: 'http://evil.example' }), 403, 'bad_origin', 'foreign Origin');
      // The login form (posted under Referrer-Policy: no-referrer, so with
      // Origin: null): Sec-Fetch-Site decides.
      const form = (headers) => raw({ method: 'POST', path: '/login', body: 'password=x',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'null', ...headers } });
      assertError(await form({}), 403, 'csrf', 'login form, Origin null');
      assertError(await form({ 'Sec-Fetch-Site': 'cross-site' }), 403, 'csrf', 'login form, Origin null, cross-site');
      const same = await form({ 'Sec-Fetch-Site': 'same-origin' });
      assert.equal(same.status, 403);
      assert.match(same.text, /Wrong password/, 'the same-origin form was not checked');
      assertError(await raw({ method: 'POST', path: '/login', body: 'password=x',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 403, 'csrf', 'login form');
      assert.equal((await put({ 'Sec-Fetch-Site': 'same-origin' })).status, 200);
      assert.equal((await put({ Origin: `http://${d.hostHeader}` })).status, 200);
    });

    await t.test('logout ends the session, its event stream and the cookie', async () => {
      const other = (await d.sessionHeaders()).Cookie;
      const stream = d.events({ key: null, headers: { Cookie: cookie } });
      env.streams.push(stream);
      assert.equal(await stream.opened, 200);
      await stream.waitFor('snapshot');
      const r = await raw({ method: 'POST', path: '/api/logout',
        headers: { Cookie: cookie, Origin: `http://${d.hostHeader}` } });
      assert.equal(r.status, 200, r.text);
      assert.match(String(r.headers['set-cookie']), /^lanspread_session=; .*Max-Age=0/);
      assertError(await raw({ path: '/api/state', headers: { Cookie: cookie } }), 401, 'login_required',
        'after logout');
      assert.equal((await raw({ path: '/api/state', headers: { Cookie: other } })).status, 200,
        'logout ended another session');
      // The next record ends the logged-out session's stream.
      await d.ok('PUT', '/api/settings', { name: 'after-logout' });
      await h.until('the stream of the ended session to close', () => stream.closed, 5000);
      cookie = other;
    });

    await t.test('the settings refuse a LAN gui without a password', async () => {
      const r = await d.api('PUT', '/api/settings', { body: { gui: '0.0.0.0:8360' } });
      assertError(r, 400, 'bad_request', 'PUT gui 0.0.0.0:8360');
      assert.match(r.json.error, /not loopback: set a UI password first/);
      assert.equal((await d.ok('GET', '/api/settings')).settings?.gui ?? '127.0.0.1:0', '127.0.0.1:0');
    });

    await t.test('a new password ends every session', async () => {
      setPassword(env.path('state'), 'a new password');
      const st = fs.statSync(env.path('state', 'ui-password'));
      assert.equal(st.mode & 0o777, 0o600, 'mode of STATE/ui-password');
      assert.match(fs.readFileSync(env.path('state', 'ui-password'), 'utf8'),
        /^pbkdf2-sha256 \d{6,} [0-9a-f]{32} [0-9a-f]{64}\n$/);
      assertError(await raw({ path: '/api/state', headers: { Cookie: cookie } }), 401, 'login_required',
        'a session after a new password');
      assert.doesNotMatch((await raw({ path: '/' })).text, /<form[^>]*hidden/, 'no password form');
    });
  });
});

test('a browser: login page, the one-time link, a cross-origin POST, logout', { timeout: 60000 }, async (t) => {
  await h.withEnv('auth-browser', async (env) => {
    const d = await env.startDaemon({ gameDir: env.mkdir('games') });
    const browser = await chromium.launch({ executablePath: h.CHROMIUM, headless: true, args: ['--no-sandbox'] });
    env.onCleanup(() => browser.close());
    const context = await browser.newContext();
    const page = await context.newPage();

    await t.test('a fresh context sees the login page and no data', async () => {
      await page.goto(d.url);
      await page.locator('#login').waitFor();
      assert.equal(await page.locator('#library').count(), 0);
      assert.ok(!(await page.content()).includes(d.key));
      const status = await page.evaluate(async () => (await fetch('/api/state')).status);
      assert.equal(status, 401);
    });

    await t.test('the one-time link logs in, and is spent', async () => {
      const link = d.loginUrl();
      await page.goto(link);
      await page.waitForURL((u) => u.pathname === '/');
      await page.locator('#library').waitFor({ state: 'attached' });
      assert.equal(await page.evaluate(async () => (await fetch('/api/state')).status), 200);
      const cookies = await context.cookies();
      assert.ok(cookies.some((c) => c.name === 'lanspread_session' && c.httpOnly && c.sameSite === 'Strict'));
      assert.equal(await page.evaluate(() => document.cookie), '', 'the session is readable by script');
      const other = await browser.newContext();
      const p2 = await other.newPage();
      const res = await p2.goto(link);
      assert.equal(res.status(), 403, 'the spent link logged in again');
      await p2.locator('#login').waitFor();
      await other.close();
    });

    await t.test('the browser the daemon opens gets in by its login page, which no command line shows', async () => {
      const bin = env.mkdir('bin');
      const opened = env.path('opened');
      // A stand-in xdg-open: records its command line, as ps would show it.
      fs.writeFileSync(`${bin}/xdg-open`, `#!/bin/sh\necho "$@" >> '${opened}'\n`, { mode: 0o755 });
      const shown = await env.startDaemon({ name: 'shown', gameDir: env.mkdir('games2'), browser: true,
        stateDir: env.path('state2'), config: env.path('c2.json'),
        env: { PATH: `${bin}:${process.env.PATH}`, DISPLAY: ':0' } });
      await h.until('xdg-open was run', () => fs.existsSync(opened), 10000);
      const argv = fs.readFileSync(opened, 'utf8').trim();
      assert.ok(!argv.includes('token='), `the login token on a command line: ${argv}`);
      const own = await browser.newContext();
      const p = await own.newPage();
      await p.goto(argv); // file://STATE/login.html
      await p.waitForURL((u) => u.href.startsWith(shown.url) && u.pathname === '/');
      await p.locator('#library').waitFor({ state: 'attached' });
      assert.equal(await p.evaluate(async () => (await fetch('/api/state')).status), 200);
      await own.close();
    });

    await t.test('a cross-origin POST is refused', async () => {
      // Another port of 127.0.0.1 is the same site for cookies: the Origin
      // check stops the request.
      const evil = http.createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<!doctype html><title>evil</title>');
      });
      await new Promise((r) => evil.listen(0, '127.0.0.1', r));
      env.onCleanup(() => new Promise((r) => evil.close(r)));
      const evilPage = await context.newPage();
      await evilPage.goto(`http://127.0.0.1:${evil.address().port}/`);
      const target = `${d.url}api/logout`;
      const [resp] = await Promise.all([
        evilPage.waitForResponse((r) => r.url() === target),
        evilPage.evaluate(async (url) => {
          try { await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include' }); } catch { /* opaque */ }
        }, target),
      ]);
      assert.equal(resp.status(), 403);
      // A form posted from there (a navigation: its answer is readable).
      await evilPage.setContent(`<form method="post" action="${target}"><button>go</button></form>`);
      const [nav] = await Promise.all([
        evilPage.waitForResponse((r) => r.url() === target),
        evilPage.click('button'),
      ]);
      assert.equal(nav.status(), 403);
      assert.equal((await nav.json()).code, 'bad_origin');
      await evilPage.close();
      assert.equal(await page.evaluate(async () => (await fetch('/api/state')).status), 200,
        'the cross-origin logout ended the session');
    });

    await t.test('Log out ends the session', async () => {
      await page.locator('#logout').click();
      await page.locator('#login').waitFor({ timeout: 10000 * h.T });
      assert.equal(await page.evaluate(async () => (await fetch('/api/state')).status), 401);
    });
  });
});

// Two namespaces joined by a veth pair: the daemon's "LAN" and another machine.
async function twoHosts(env) {
  const tag = `${process.pid % 100000}`;
  const a = `lsuia${tag}`, b = `lsuib${tag}`, net = `10.215.${process.pid % 250}`;
  const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ip('netns', 'add', a);
  env.onCleanup(async () => { try { ip('netns', 'del', a); } catch { /* gone */ } });
  ip('netns', 'add', b);
  env.onCleanup(async () => { try { ip('netns', 'del', b); } catch { /* gone */ } });
  ip('link', 'add', `lsva${tag}`, 'netns', a, 'type', 'veth', 'peer', 'name', `lsvb${tag}`, 'netns', b);
  for (const [ns, dev, addr] of [[a, `lsva${tag}`, `${net}.1`], [b, `lsvb${tag}`, `${net}.2`]]) {
    ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
    ip('-n', ns, 'link', 'set', dev, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  return { a, b, server: `${net}.1` };
}

test('a UI on a LAN address: refused without a password; with one, another machine logs in', { timeout: 60000 }, async (t) => {
  await h.withEnv('auth-lan', async (env) => {
    await t.test('a non-loopback gui without a password does not start', async () => {
      const p = env.spawn('no-password', h.DAEMON, ['--no-browser', '--gui', '0.0.0.0:0', '--state-dir',
        env.path('nopw'), '--config', env.path('nopw.json'), '--no-mdns', '--listen', '127.0.0.1:0'], { expectCode: 1 });
      let timer;
      const late = new Promise((r) => { timer = setTimeout(() => r(null), 10000 * h.T); });
      const exit = await Promise.race([p.exited, late]);
      clearTimeout(timer);
      assert.ok(exit, 'it started: still running after 10 s');
      assert.equal(exit.code, 1);
      assert.match(p.stderr, /the UI address 0\.0\.0\.0:0 is not loopback: set a UI password first \(lanspread --set-ui-password\)/);
    });

    if (process.getuid?.() !== 0) {
      t.skip('network namespaces need root');
      return;
    }
    const { a, b, server } = await twoHosts(env);
    setPassword(env.path('state'), 'lan party 2026');
    const d = await env.startDaemon({ gameDir: env.mkdir('games'), gui: `${server}:0`, listen: `${server}:0`,
      prefix: ['ip', 'netns', 'exec', a] });
    const base = `http://${server}:${d.port}`;
    const jar = env.path('jar');
    // curl from the other machine: its status code (and the jar's cookie).
    const curl = async (...args) => (await run('ip', ['netns', 'exec', b, 'curl', '-s', '-o', '/dev/null',
      '-w', '%{http_code}', '-b', jar, '-c', jar, ...args])).stdout;
    const login = (password) => curl('-H', `Origin: ${base}`, '--data-urlencode', `password=${password}`, `${base}/login`);

    await t.test('no password, a wrong one: no session', async () => {
      assert.equal(await curl(`${base}/api/state`), '401');
      assert.equal(await login(''), '403');
      assert.equal(await login('lan party 2025'), '403');
      assert.equal(await curl(`${base}/api/state`), '401');
    });

    await t.test('the right password: a session', async () => {
      assert.equal(await login('lan party 2026'), '303');
      assert.equal(await curl(`${base}/api/state`), '200');
    });

    await t.test('failed attempts are throttled per address', async () => {
      fs.rmSync(jar, { force: true });
      const codes = [];
      for (let i = 0; i < 5; i++) codes.push(await login(`wrong ${i}`));
      // 2 failures above, 5 here: the address is past its 5 a minute.
      assert.ok(codes.includes('429'), `no 429 after 7 wrong passwords: ${codes}`);
      assert.equal(await login('lan party 2026'), '429', 'the right password while throttled');
    });
  });
});

test('a UI on 0.0.0.0: another machine reaches it by this one\'s address, a name is refused', { timeout: 60000 }, async (t) => {
  await h.withEnv('auth-any', async (env) => {
    if (process.getuid?.() !== 0) {
      t.skip('network namespaces need root');
      return;
    }
    const { a, b, server } = await twoHosts(env);
    setPassword(env.path('state'), 'lan party 2026');
    const d = await env.startDaemon({ gameDir: env.mkdir('games'), gui: '0.0.0.0:0', listen: `${server}:0`,
      prefix: ['ip', 'netns', 'exec', a] });
    const status = async (host) => (await run('ip', ['netns', 'exec', b, 'curl', '-s', '-o', '/dev/null',
      '-w', '%{http_code}', '-H', `Host: ${host}`, `http://${server}:${d.port}/`])).stdout;
    assert.equal(await status(`${server}:${d.port}`), '200', 'by its LAN address');
    assert.equal(await status(`127.0.0.1:${d.port}`), '200', 'by an address literal');
    // A name may be a DNS rebinding; another port is not this server.
    assert.equal(await status(`rebind.example:${d.port}`), '403');
    assert.equal(await status(`${server}:${d.port + 1}`), '403');
    assert.equal(await status(`${server}`), '403');
  });
});
