// Trust settings of the daemon (docs/API.md "Settings", "Logging in"): a
// real daemon, real lanspread-peer-cli seeders and Debian's Chromium.
// The party key set in the settings panel: its fingerprint shows (the same
// the peer CLI prints for the same key), the secret never leaves the daemon
// (not in /api/settings, /api/state, the config file or the page), the
// runtime restarts under it (a seeder with the same key links, one with
// another is "other party"), --party-key-file fixes it; the UI password
// changed in the panel (old one refused, new one works from another
// browser context, the asking session stays, the others end); a login
// address past its time limit gets the login page, and --login-url a fresh
// one; the state directory and its secrets are tightened at start.
//
// The time limit of login addresses is 15 minutes; the daemon's hidden
// option --test-login-ttl-ms (not in --help, for this test only) shortens
// it.
// CTest: ui.trust. By hand: LS_BINARY_DIR=build node --test tests/ui/trust.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import * as h from './harness.mjs';

h.checkSetup({ browser: true });

const KEY_A = 'the party of 3 December 2026';
const KEY_B = 'another party, another key!';

async function launchBrowser(env) {
  const browser = await chromium.launch({ executablePath: h.CHROMIUM, headless: true, args: ['--no-sandbox'] });
  env.onCleanup(() => browser.close());
  return browser;
}

// A logged-in page of a fresh context, on the UI.
async function loggedInPage(browser, d) {
  const context = await browser.newContext();
  await d.login(context);
  const page = await context.newPage();
  await page.goto(d.url);
  await page.locator('#settings').waitFor();
  return { context, page };
}

const peerAt = (peers, addr) => peers.find((p) => p.addr === addr);

test('the party key in the settings panel', { timeout: 120000 }, async (t) => {
  await h.withEnv('trust-party', async (env) => {
    fs.writeFileSync(env.path('key-a'), `${KEY_A}\n`);
    fs.writeFileSync(env.path('key-b'), `  ${KEY_B}  \n`);
    const same = await env.startSeeder({ name: 'same', args: ['--party-key-file', env.path('key-a')] });
    const other = await env.startSeeder({ name: 'other', args: ['--party-key-file', env.path('key-b')] });
    assert.match(same.ready.party_key, /^[0-9a-f]{8}$/);
    assert.notEqual(same.ready.party_key, other.ready.party_key);
    const d = await env.startDaemon({ gameDir: env.mkdir('games'), peers: [same.addr, other.addr] });
    const browser = await launchBrowser(env);
    const { page } = await loggedInPage(browser, d);

    await t.test('without a key: none shown, both keyed seeders are of another party', async () => {
      const s = await d.ok('GET', '/api/settings');
      assert.deepEqual(s.settings.party_key, { set: false, fingerprint: null, fixed: false });
      assert.equal(s.runtime.party_key, null);
      await page.locator('#party-key-status', { hasText: 'No party key' }).waitFor();
      assert.equal(await page.locator('#clear-party-key').isDisabled(), true);
      await h.until('both seeders as other party', async () => {
        const { peers } = await d.ok('GET', '/api/peers');
        return [same, other].every((s) => peerAt(peers, s.addr)?.status === 'other party');
      }, 20000, 250);
    });

    await t.test('refused keys: too short, too long, not a string', async () => {
      for (const [value, words] of [['too short', /at least 16 characters/], ['x'.repeat(1025), /at most 1024/],
        [12345678901234567, /must be a string/]]) {
        const r = await d.api('PUT', '/api/settings', { body: { party_key: value } });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.code, 'bad_request');
        assert.match(r.json.error, words);
      }
      await page.fill('#party-key', 'short');
      await page.click('#set-party-key');
      await page.locator('#party-key-message.bad', { hasText: 'at least 16 characters' }).waitFor();
      assert.equal(fs.existsSync(env.path('state', 'party-key')), false);
    });

    let fingerprint;
    await t.test('set in the panel: its fingerprint, the runtime restarted under it', async () => {
      const before = (await d.ok('GET', '/api/state')).runtime.peer_id;
      await page.fill('#party-key', KEY_A);
      await page.click('#set-party-key');
      await page.locator('#party-key-message.ok', { hasText: 'fingerprint' }).waitFor({ timeout: 15000 * h.T });
      fingerprint = same.ready.party_key;
      await page.locator('#party-key-status', { hasText: `fingerprint ${fingerprint}` }).waitFor();
      assert.equal(await page.inputValue('#party-key'), '', 'the key stays in the field');
      const s = await d.ok('GET', '/api/state');
      assert.deepEqual(s.settings.party_key, { set: true, fingerprint, fixed: false });
      assert.equal(s.runtime.party_key, fingerprint, 'the runtime runs with the key');
      assert.equal(s.runtime.peer_id, before, 'the same identity after the restart');
      const file = env.path('state', 'party-key');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.equal(fs.readFileSync(file, 'utf8').trim(), KEY_A);
      await h.until('the seeder with the same key linked, the other refused', async () => {
        const { peers } = await d.ok('GET', '/api/peers');
        return peerAt(peers, same.addr)?.status === 'connected' &&
          peerAt(peers, other.addr)?.status === 'other party';
      }, 30000, 250);
      await page.locator(`.peer[data-peer-id="${same.peerId}"]`).waitFor({ timeout: 10000 * h.T });
    });

    await t.test('the secret is nowhere but its file', async () => {
      const texts = [(await d.api('GET', '/api/settings')).text, (await d.api('GET', '/api/state')).text,
        await page.content(), fs.existsSync(env.path('config.json')) ? fs.readFileSync(env.path('config.json'), 'utf8') : ''];
      const stream = d.events();
      env.streams.push(stream);
      await stream.waitFor('snapshot');
      texts.push(JSON.stringify(stream.events));
      for (const text of texts) {
        assert.ok(!text.includes(KEY_A), 'the party key leaked');
        assert.ok(!text.includes('party of 3'), 'part of the party key leaked');
      }
    });

    await t.test('the same key again changes nothing; a new one restarts', async () => {
      const r = await d.ok('PUT', '/api/settings', { party_key: `  ${KEY_A}\n` });
      assert.equal(r.settings.party_key.fingerprint, fingerprint);
      const b = await d.ok('PUT', '/api/settings', { party_key: KEY_B });
      assert.equal(b.settings.party_key.fingerprint, other.ready.party_key, 'trimmed like the file');
      assert.equal(b.runtime.party_key, other.ready.party_key);
      await h.until('the other seeder linked now', async () => {
        const { peers } = await d.ok('GET', '/api/peers');
        return peerAt(peers, other.addr)?.status === 'connected' &&
          peerAt(peers, same.addr)?.status === 'other party';
      }, 30000, 250);
    });

    await t.test('cleared in the panel', async () => {
      await page.locator('#party-key-status', { hasText: other.ready.party_key }).waitFor();
      await page.click('#clear-party-key');
      await page.locator('#party-key-message.ok', { hasText: 'cleared' }).waitFor({ timeout: 15000 * h.T });
      await page.locator('#party-key-status', { hasText: 'No party key' }).waitFor();
      const s = await d.ok('GET', '/api/state');
      assert.equal(s.runtime.party_key, null);
      assert.equal(s.settings.party_key.set, false);
      assert.equal(fs.existsSync(env.path('state', 'party-key')), false);
    });
  });
});

test('--party-key-file fixes the party key for the run', { timeout: 60000 }, async () => {
  await h.withEnv('trust-fixed', async (env) => {
    fs.writeFileSync(env.path('key'), `${KEY_A}\n`);
    const seeder = await env.startSeeder({ name: 'seeder', args: ['--party-key-file', env.path('key')] });
    const d = await env.startDaemon({ gameDir: env.mkdir('games'), args: ['--party-key-file', env.path('key')] });
    const s = await d.ok('GET', '/api/state');
    assert.deepEqual(s.settings.party_key, { set: true, fingerprint: seeder.ready.party_key, fixed: true });
    assert.equal(s.runtime.party_key, seeder.ready.party_key);
    for (const value of [KEY_B, null]) {
      const r = await d.api('PUT', '/api/settings', { body: { party_key: value } });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error, /set by --party-key-file/);
    }
    const browser = await launchBrowser(env);
    const { page } = await loggedInPage(browser, d);
    await page.locator('#party-key-status', { hasText: 'Set by --party-key-file' }).waitFor();
    assert.equal(await page.locator('#party-key').isDisabled(), true);
    assert.equal(await page.locator('#clear-party-key').isDisabled(), true);
    assert.equal(fs.existsSync(env.path('state', 'party-key')), false);
  });
});

test('the UI password in the settings panel', { timeout: 120000 }, async (t) => {
  await h.withEnv('trust-password', async (env) => {
    const d = await env.startDaemon({ gameDir: env.mkdir('games') });
    const browser = await launchBrowser(env);
    const { page } = await loggedInPage(browser, d);
    const stateOf = (p) => p.evaluate(async () => (await fetch('/api/state')).status);
    // A fresh context that logs in with a password on the login page:
    // whether it got the UI.
    const passwordLogin = async (password) => {
      const context = await browser.newContext();
      const p = await context.newPage();
      await p.goto(d.url);
      await p.fill('#password', password);
      await Promise.all([p.waitForNavigation(), p.click('#login-form button')]);
      const ok = new URL(p.url()).pathname === '/' && await p.locator('#settings').count() === 1;
      const text = ok ? '' : await p.locator('#login-message').textContent();
      return { context, page: p, ok, text };
    };

    await t.test('none yet: a new one without a current one', async () => {
      await page.locator('#password-status', { hasText: 'No UI password' }).waitFor();
      assert.equal(await page.locator('#current-password').isHidden(), true);
      await page.fill('#new-password', 'short');
      await page.click('#save-password');
      await page.locator('#password-message.bad', { hasText: '8 to 1024 bytes' }).waitFor();
      await page.fill('#new-password', 'first password');
      await page.click('#save-password');
      await page.locator('#password-message.ok', { hasText: 'Password changed' }).waitFor({ timeout: 15000 * h.T });
      await page.locator('#password-status', { hasText: 'A UI password is set' }).waitFor();
      assert.equal(await page.locator('#current-password').isVisible(), true);
      assert.equal(fs.statSync(env.path('state', 'ui-password')).mode & 0o777, 0o600);
      assert.equal(await stateOf(page), 200, 'the session that set it was logged out');
    });

    let other;
    await t.test('another context logs in with it', async () => {
      other = await passwordLogin('first password');
      assert.ok(other.ok, `the password did not log in: ${other.text}`);
    });

    await t.test('a wrong current password is refused', async () => {
      await page.fill('#current-password', 'not the password');
      await page.fill('#new-password', 'second password');
      await page.click('#save-password');
      await page.locator('#password-message.bad', { hasText: 'current password is wrong' }).waitFor({ timeout: 15000 * h.T });
      assert.equal(await stateOf(other.page), 200, 'a refused change ended a session');
      const r = await d.api('PUT', '/api/password', { body: { current: 'not the password', new: 'x'.repeat(9) } });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json.code, 'wrong_password');
    });

    await t.test('changed: the asking session stays, the others end; old refused, new works', async () => {
      await page.fill('#current-password', 'first password');
      await page.fill('#new-password', 'second password');
      await page.click('#save-password');
      await page.locator('#password-message.ok', { hasText: 'every other session' }).waitFor({ timeout: 15000 * h.T });
      assert.equal(await stateOf(page), 200, 'the asking session ended');
      assert.equal(await stateOf(other.page), 401, 'another session outlived the change');
      const old = await passwordLogin('first password');
      assert.equal(old.ok, false, 'the old password still logs in');
      assert.match(old.text, /Wrong password/);
      const fresh = await passwordLogin('second password');
      assert.ok(fresh.ok, `the new password did not log in: ${fresh.text}`);
      for (const c of [old, fresh, other]) await c.context.close();
    });

    await t.test('removed on a loopback UI', async () => {
      await page.fill('#current-password', 'second password');
      await page.click('#remove-password');
      await page.locator('#password-message.ok', { hasText: 'Password removed' }).waitFor({ timeout: 15000 * h.T });
      await page.locator('#password-status', { hasText: 'No UI password' }).waitFor();
      assert.equal(fs.existsSync(env.path('state', 'ui-password')), false);
      assert.equal(await stateOf(page), 200);
    });
  });
});

test('a login address expires; --login-url gives a fresh one', { timeout: 60000 }, async () => {
  await h.withEnv('trust-expiry', async (env) => {
    const ttl = 1500 * h.T;
    const d = await env.startDaemon({ gameDir: env.mkdir('games'), args: ['--test-login-ttl-ms', String(ttl)] });
    const first = new URL(d.loginUrl());
    await h.sleep(ttl + 500);
    const r = await h.httpRequest({ port: d.port, path: first.pathname + first.search });
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /This login address has expired/);
    assert.match(r.text, /lanspread --login-url/);
    assert.equal(r.headers['set-cookie'], undefined, 'an expired address gave a session');
    const printed = execFileSync(h.DAEMON, ['--login-url', '--state-dir', env.path('state')], { encoding: 'utf8' }).trim();
    assert.notEqual(printed, first.href);
    const u = new URL(printed);
    const ok = await h.httpRequest({ port: d.port, path: u.pathname + u.search });
    assert.equal(ok.status, 200, `the fresh address: ${ok.status} ${ok.text}`);
    assert.match(String(ok.headers['set-cookie']), /^lanspread_session=[0-9a-f]{64}; /);
    const again = await h.httpRequest({ port: d.port, path: first.pathname + first.search });
    assert.equal(again.status, 403);
  });
});

test('the state directory and its secrets are made private at start', { timeout: 60000 }, async () => {
  await h.withEnv('trust-modes', async (env) => {
    const state = env.mkdir('state');
    fs.writeFileSync(env.path('state', 'api-key'), 'a'.repeat(64), { mode: 0o644 });
    fs.chmodSync(env.path('state', 'api-key'), 0o644);
    fs.chmodSync(state, 0o755);
    const d = await env.startDaemon({ gameDir: env.mkdir('games'), stateDir: state });
    assert.equal(fs.statSync(state).mode & 0o777, 0o700);
    assert.equal(fs.statSync(env.path('state', 'api-key')).mode & 0o777, 0o600);
    assert.match(d.proc.stderr, /state directory .* had mode 0755, open to other users: it is 0700 now/);
    assert.match(d.proc.stderr, /api-key had mode 0644, open to other users: it is 0600 now/);
    // The runtime's own rule, in the peer CLI.
    const seederState = env.mkdir('seeder-state');
    fs.chmodSync(seederState, 0o750);
    const s = await env.startSeeder({ name: 'seeder', stateDir: seederState });
    assert.equal(fs.statSync(seederState).mode & 0o777, 0o700);
    await h.until('the log line', () => /had mode 0750, open to other users: it is 0700 now/.test(s.stderr), 5000);
  });
});
