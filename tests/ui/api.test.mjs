// The lanspread daemon's REST API and event stream (docs/API.md), end to
// end: a real daemon and a real seeding lanspread-peer-cli on 127.0.0.1
// (QUIC over loopback, static peers), real files in a temporary directory.
// CTest: ui.api. Run by hand: LS_BINARY_DIR=build node --test tests/ui/api.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as h from './harness.mjs';

h.checkSetup();

const HEX64 = /^[0-9a-f]{64}$/;

// Asserts an error answer: HTTP status, JSON {"error": text, "code": code}.
function assertError(r, status, code, what = '') {
  const where = `${what} → ${r.status} ${r.text.slice(0, 300)}`;
  assert.equal(r.status, status, `expected ${status} ${code}: ${where}`);
  assert.ok(r.json && typeof r.json === 'object', `error body is not JSON: ${where}`);
  assert.equal(r.json.code, code, `expected code ${code}: ${where}`);
  assert.equal(typeof r.json.error, 'string', `no error text: ${where}`);
  assert.ok(r.json.error.length > 0, `empty error text: ${where}`);
  assert.match(String(r.headers['content-type']), /application\/json/, `content-type: ${where}`);
}

// Runs every check (async functions) and fails once with all the failures,
// so that one refusal missing does not hide the next.
async function all(checks) {
  const failures = [];
  for (const c of checks) {
    try { await c(); } catch (e) { failures.push(e.message.split('\n')[0]); }
  }
  assert.equal(failures.length, 0, `${failures.length} of ${checks.length} checks failed:\n  ${failures.join('\n  ')}`);
}

// POSTs each action to a game that must refuse it (409 refused), one
// after the other; one accepted by mistake is let finish and the game is
// brought back to idleState before the next, and all mistakes are reported
// at the end.
const BUSY = ['downloading', 'verifying', 'installing', 'uninstalling', 'removing'];
async function refusals(d, id, actions, idleState, what) {
  await all(actions.map((action) => async () => {
    const r = await d.api('POST', `/api/games/${id}/${action}`);
    if (r.status !== 409) {
      await h.sleep(300);
      let c = await d.waitCard(id, (x) => !BUSY.includes(x.state), 'idle again', 30000);
      if (c.state === 'installed' && idleState === 'downloaded') {
        await d.ok('POST', `/api/games/${id}/uninstall`, undefined, 202);
        c = await d.waitCard(id, (x) => x.state === 'downloaded', 'downloaded again', 30000);
      }
    }
    assertError(r, 409, 'refused', `${action} of ${what}`);
  }));
}

// Settings as returned by GET/PUT /api/settings ({settings, runtime,
// setup_needed}).
const settingsOf = (j) => j.settings ?? j;

// The catalog every test uses, and the small games a seeder offers.
function catalog(env, extra = []) {
  return env.writeCatalog([
    { id: 'alpha', name: 'Alpha Arena', genre: 'Shooter', max_players: 8, launch: 'bin/play.sh',
      description: 'A playable test game' },
    { id: 'nolaunch', name: 'No Launch', genre: 'Puzzle' },
    { id: 'ghost', name: 'Ghost (nobody has it)' },
    ...extra,
  ]);
}

function seedSmallGames(env, gameDir) {
  env.makeGame(gameDir, {
    id: 'alpha', version: '1.0',
    files: { 'bin/play.sh': env.playScript(env.path('played-alpha')), 'data/level1.txt': 'level one\n' },
  });
  env.makeGame(gameDir, { id: 'nolaunch', version: '3', files: { 'readme.txt': 'no launch file\n' } });
}

// A seeder with the small games (and `extra` setup), a daemon with
// --game-dir (unless gameDir: null) and --peer seeder; waits until the
// daemon lists the seeder's games.
async function pair(env, { extraCatalog = [], seed = () => {}, daemon = {} } = {}) {
  const cat = catalog(env, extraCatalog);
  const seedGames = env.mkdir('seeder', 'games');
  seedSmallGames(env, seedGames);
  seed(seedGames);
  const seeder = await env.startSeeder({ gameDir: seedGames, catalog: cat });
  const gameDir = daemon.gameDir === null ? undefined : env.mkdir('games');
  const d = await env.startDaemon({ catalog: cat, gameDir, peers: [seeder.addr], ...daemon });
  return { cat, seeder, d, gameDir, seedGames };
}

async function waitPeerGames(d, ids) {
  await h.until(`the daemon to list ${ids.join(', ')}`, async () => {
    const r = await d.api('GET', '/api/games');
    return r.status === 200 && ids.every((id) => r.json.games.some((g) => g.id === id && g.peers >= 1));
  }, 20000);
}

// ---------------------------------------------------------------------------

test('security checks, errors and static parts', { timeout: 120000 }, async (t) => {
  await h.withEnv('security', async (env) => {
    const { d, gameDir } = await pair(env);
    const P = d.port;
    const raw = (o) => h.httpRequest({ port: P, ...o });

    await t.test('the API key: 64 hex in STATE/api-key (0600), in no page', async () => {
      assert.match(d.key, HEX64);
      const file = env.path('state', 'api-key');
      const st = fs.statSync(file);
      assert.equal(st.mode & 0o777, 0o600, `mode of ${file}: ${(st.mode & 0o777).toString(8)}`);
      assert.equal(fs.statSync(env.path('state')).mode & 0o777, 0o700, 'mode of STATE');
      for (const p of ['/', '/index.html', '/app.js', '/login']) {
        const r = await raw({ path: p });
        assert.ok(!r.text.includes(d.key), `${p} holds the API key`);
      }
    });

    await t.test('no credentials → 401 login_required; a wrong key → 401 bad_key', async () => {
      assertError(await d.api('GET', '/api/state', { key: null }), 401, 'login_required', 'no key');
      assertError(await d.api('GET', '/api/state', { key: '0'.repeat(64) }), 401, 'bad_key', 'wrong key');
      assertError(await d.api('GET', '/api/state', { key: d.key.slice(0, 63) }), 401, 'bad_key', 'short key');
      assertError(await d.api('GET', '/api/state', { key: `${d.key}0` }), 401, 'bad_key', 'long key');
      assertError(await d.api('GET', '/api/state', { key: d.key.toUpperCase().replace(/[0-9]/g, '0') }), 401, 'bad_key', 'other key');
      assertError(await d.api('POST', '/api/games/alpha/download', { key: null }), 401, 'login_required', 'POST no key');
      assertError(await d.api('PUT', '/api/settings', { key: null, body: { name: 'x' } }), 401, 'login_required', 'PUT no key');
      assertError(await d.api('GET', '/api/nothing-here', { key: null }), 401, 'login_required', 'unknown endpoint without key');
      assertError(await raw({ path: '/api/events', headers: { 'X-Lanspread-Key': '1'.repeat(64) } }), 401,
        'bad_key', 'events wrong key');
      assertError(await raw({ path: `/api/events?key=${d.key}` }), 401, 'login_required',
        'events with the key in the URL (no secret in URLs)');
      assertError(await raw({ path: '/api/events' }), 401, 'login_required', 'events no key');
      // Nothing was started by the refused POST.
      assert.equal((await d.card('alpha')).state, 'available');
    });

    await t.test('a foreign Host → 403 bad_host, even for / and with the key', async () => {
      for (const host of [`evil.example:${P}`, `evil.example`, `127.0.0.1:${P + 1}`, '127.0.0.1',
        `127.0.0.2:${P}`, `localhost.evil.example:${P}`, `[::1]:${P}`, `0.0.0.0:${P}`]) {
        assertError(await raw({ path: '/', host }), 403, 'bad_host', `GET / Host ${host}`);
        assertError(await raw({ path: '/app.js', host }), 403, 'bad_host', `GET /app.js Host ${host}`);
        assertError(await d.api('GET', '/api/state', { host }), 403, 'bad_host', `GET /api/state Host ${host}`);
      }
      assertError(await d.api('POST', '/api/games/alpha/download', { host: `evil.example:${P}` }), 403,
        'bad_host', 'POST with foreign Host');
      // The Host check comes before the key check.
      assertError(await d.api('GET', '/api/state', { host: `evil.example:${P}`, key: null }), 403, 'bad_host', 'no key, foreign Host');
      assert.equal((await d.card('alpha')).state, 'available');
    });

    await t.test('a request without Host is refused', async () => {
      // HTTP/1.1 requires Host; whoever refuses it (the daemon or
      // libmicrohttpd), it must not be served.
      const r = await new Promise((resolve, reject) => {
        import('node:net').then(({ connect }) => {
          const s = connect(P, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nConnection: close\r\n\r\n'));
          let text = '';
          s.setEncoding('utf8');
          s.on('data', (c) => { text += c; });
          s.on('end', () => resolve(text));
          s.on('error', reject);
        });
      });
      const status = Number(/^HTTP\/1\.[01] (\d+)/.exec(r)?.[1]);
      assert.ok(status === 400 || status === 403, `no Host answered ${r.slice(0, 200)}`);
    });

    await t.test('localhost:PORT and 127.0.0.1:PORT are accepted Hosts', async () => {
      for (const host of [`localhost:${P}`, `127.0.0.1:${P}`]) {
        const page = await raw({ path: '/', host });
        assert.equal(page.status, 200, `GET / with Host ${host}: ${page.status}`);
        const r = await d.api('GET', '/api/state', { host });
        assert.equal(r.status, 200, `GET /api/state with Host ${host}: ${r.status} ${r.text}`);
      }
    });

    await t.test('a foreign Origin → 403 bad_origin', async () => {
      for (const origin of ['http://evil.example', `http://evil.example:${P}`, 'null',
        `https://127.0.0.1:${P}`, `http://127.0.0.1:${P + 1}`, `http://127.0.0.1:${P}.evil.example`]) {
        const headers = { Origin: origin };
        assertError(await d.api('GET', '/api/state', { headers }), 403, 'bad_origin', `Origin ${origin}`);
        assertError(await d.api('POST', '/api/games/alpha/download', { headers }), 403, 'bad_origin',
          `POST download, Origin ${origin}`);
        assertError(await d.api('PUT', '/api/settings', { headers, body: { name: 'evil' } }), 403,
          'bad_origin', `PUT settings, Origin ${origin}`);
        assertError(await raw({ path: '/api/events', headers: { ...headers, 'X-Lanspread-Key': d.key } }), 403, 'bad_origin',
          `events, Origin ${origin}`);
      }
      // Nothing happened.
      assert.equal((await d.card('alpha')).state, 'available');
      assert.notEqual(settingsOf(await d.ok('GET', '/api/settings')).name, 'evil');
      for (const origin of [`http://127.0.0.1:${P}`, `http://localhost:${P}`]) {
        const r = await d.api('GET', '/api/state', { headers: { Origin: origin } });
        assert.equal(r.status, 200, `Origin ${origin}: ${r.status} ${r.text}`);
      }
    });

    await t.test('unknown endpoints → 404 not_found; wrong methods → 405 method', async () => {
      for (const p of ['/api/nothing', '/api/state/more', '/api/', '/api'])
        assertError(await d.api('GET', p), 404, 'not_found', `GET ${p}`);
      assertError(await d.api('POST', '/api/games/alpha/frobnicate'), 404, 'not_found', 'unknown action');
      // GET of an unknown action: no such endpoint, or the wrong method.
      const r = await d.api('GET', '/api/games/alpha/nothing');
      assert.ok([404, 405].includes(r.status), `GET /api/games/alpha/nothing: ${r.status}`);
      const page = await raw({ path: '/no-such-page.html' });
      assert.equal(page.status, 404, `GET /no-such-page.html: ${page.status}`);
      for (const [m, p] of [['DELETE', '/api/state'], ['POST', '/api/state'], ['PUT', '/api/games'],
        ['GET', '/api/games/alpha/download'], ['DELETE', '/api/games/alpha'], ['POST', '/api/settings'],
        ['GET', '/api/check-game-dir'], ['POST', '/api/peers'], ['POST', '/api/events']])
        assertError(await d.api(m, p), 405, 'method', `${m} ${p}`);
      const post = await raw({ method: 'POST', path: '/' });
      assert.equal(post.status, 405, `POST /: ${post.status}`);
    });

    await t.test('unknown game ids → 404 unknown_game, before anything else', async () => {
      for (const id of ['nosuch', 'ALPHA', '..', '%2e%2e', 'a%00b', '%2Fetc', 'x'.repeat(300), 'alpha%2F..']) {
        const r = await d.api('POST', `/api/games/${id}/download`);
        assert.equal(r.status, 404, `POST /api/games/${id}/download: ${r.status} ${r.text}`);
        assert.ok(['unknown_game', 'not_found'].includes(r.json?.code), `POST /api/games/${id}/download: ${r.text}`);
      }
      for (const action of ['download', 'update', 'pause', 'cancel', 'verify', 'repair', 'install', 'uninstall', 'remove', 'play'])
        assertError(await d.api('POST', `/api/games/nosuch/${action}`), 404, 'unknown_game', `POST nosuch/${action}`);
      assertError(await d.api('GET', '/api/games/nosuch'), 404, 'unknown_game', 'GET nosuch');
    });

    await t.test('bodies that are not a JSON object → 400 bad_json', async () => {
      for (const body of ['{nope', '[1,2]', '"text"', '42', 'null', '{"game_dir": "/tmp",}', '\u00ff\u00fe'])
        assertError(await d.api('PUT', '/api/settings', { body }), 400, 'bad_json', `PUT settings ${body}`);
      assertError(await d.api('POST', '/api/check-game-dir', { body: '{' }), 400, 'bad_json', 'check-game-dir {');
      assertError(await d.api('POST', '/api/games/alpha/download', { body: '{bad' }), 400, 'bad_json', 'download {bad');
      assert.equal((await d.card('alpha')).state, 'available');
      // An empty or {} body is fine for a command (checked on play: refused, not bad_json).
      assertError(await d.api('POST', '/api/games/alpha/play', { body: '{}' }), 409, 'refused', 'play {} while available');
    });

    await t.test('bodies over 16 KiB → 413 too_large', async () => {
      const pad = (n) => { // {"path": gameDir} padded with spaces to n bytes
        const core = JSON.stringify({ path: gameDir });
        return `${core.slice(0, -1)}${' '.repeat(n - core.length)}}`;
      };
      const at = await d.api('POST', '/api/check-game-dir', { body: pad(16384) });
      assert.equal(at.status, 200, `16384-byte body: ${at.status} ${at.text}`);
      assert.equal(at.json.ok, true, at.text);
      assertError(await d.api('POST', '/api/check-game-dir', { body: pad(16385) }), 413, 'too_large', '16385-byte body');
      assertError(await d.api('PUT', '/api/settings', { body: { name: 'n'.repeat(17 * 1024) } }), 413, 'too_large', '17 KiB name');
      assertError(await d.api('PUT', '/api/settings', { body: `{"name": "${'x'.repeat(1 << 20)}"}` }), 413,
        'too_large', '1 MiB body');
      const chunked = await d.api('PUT', '/api/settings', {
        headers: { 'Transfer-Encoding': 'chunked' }, body: `{"name": "${'c'.repeat(20000)}"}`,
      });
      assertError(chunked, 413, 'too_large', 'chunked 20 KB body');
      assert.notEqual(settingsOf(await d.ok('GET', '/api/settings')).name, 'n'.repeat(17 * 1024));
    });

    await t.test('security headers and content types', async () => {
      const page = await raw({ path: '/' });
      const app = await raw({ path: '/app.js' });
      const css = await raw({ path: '/style.css' });
      const api = await d.api('GET', '/api/state');
      const err = await d.api('GET', '/api/state', { key: null });
      for (const [what, r] of [['/', page], ['/app.js', app], ['/style.css', css], ['/api/state', api],
        ['401', err]]) {
        assert.equal(r.headers['x-frame-options'], 'DENY', `${what}: X-Frame-Options`);
        assert.equal(r.headers['x-content-type-options'], 'nosniff', `${what}: X-Content-Type-Options`);
        const csp = r.headers['content-security-policy'];
        assert.ok(csp, `${what}: no Content-Security-Policy`);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, `${what}: CSP ${csp}`);
      }
      assert.match(page.headers['content-security-policy'], /script-src 'self'|default-src 'self'/);
      assert.match(String(page.headers['content-type']), /^text\/html/);
      assert.match(String(app.headers['content-type']), /javascript/);
      assert.match(String(css.headers['content-type']), /^text\/css/);
      assert.match(String(api.headers['content-type']), /^application\/json/);
      assert.equal(app.status, 200);
      assert.equal(css.status, 200);
      assert.ok(app.text.length > 1000 && css.text.length > 100, 'app.js and style.css have content');
      // The page carries no inline script (the CSP would block it).
      assert.doesNotMatch(page.text.replace(/<script src="[^"]*"[^>]*><\/script>/g, ''), /<script/i);
      assert.doesNotMatch(page.text, /lanspread-api-key|[0-9a-f]{64}/, 'a secret in the login page');
    });

    await t.test('the event stream starts with a snapshot (= GET /api/state)', async () => {
      const s = d.events();
      env.streams.push(s);
      assert.equal(await s.opened, 200);
      assert.match(String(s.headers['content-type']), /^text\/event-stream/);
      const first = await s.waitFor(null);
      assert.equal(first.event, 'snapshot');
      assert.equal(first.index, 0);
      const snap = first.data;
      for (const k of ['seq', 'setup_needed', 'runtime', 'settings', 'games', 'peers'])
        assert.ok(k in snap, `snapshot lacks ${k}: ${JSON.stringify(snap).slice(0, 500)}`);
      assert.equal(Number(first.id), snap.seq, 'the snapshot id is its seq');
      const state = await d.ok('GET', '/api/state');
      assert.ok(state.seq >= snap.seq);
      assert.deepEqual(Object.keys(state).sort(), Object.keys(snap).sort());
      assert.deepEqual(snap.settings, state.settings);
      // A second stream gets its own snapshot.
      const s2 = d.events();
      env.streams.push(s2);
      await s2.waitFor('snapshot');
      s2.close();
    });
  });
});

// ---------------------------------------------------------------------------

test('settings: first start without a game directory, validation, persistence, restart', { timeout: 120000 }, async (t) => {
  await h.withEnv('settings', async (env) => {
    const { d: d0, seeder, cat } = await pair(env, { daemon: { gameDir: null } });
    let d = d0;
    const config = env.path('config.json');
    const readConfig = () => (fs.existsSync(config) ? fs.readFileSync(config, 'utf8') : null);

    await t.test('setup_needed, runtime not running', async () => {
      const st = await d.ok('GET', '/api/state');
      assert.equal(st.setup_needed, true, JSON.stringify(st));
      assert.equal(st.runtime.running, false, JSON.stringify(st.runtime));
      assert.equal(st.settings.game_dir ?? null, null);
      assert.equal(st.settings.config_file, config);
      assert.equal(st.version, h.daemonVersion()); // what lanspread --version prints
      const s = await d.ok('GET', '/api/settings');
      assert.equal(s.setup_needed, true);
      assert.equal(settingsOf(s).game_dir ?? null, null);
      assertError(await d.api('POST', '/api/games/alpha/download'), 409, 'setup_needed', 'download before setup');
    });

    const before = await d.ok('GET', '/api/settings');
    const configBefore = readConfig();
    const file = env.path('a-file');
    fs.writeFileSync(file, 'not a directory\n');
    const missing = env.path('missing', 'games');
    env.mkdir('exists');
    const bad = [
      ['a relative path', { game_dir: 'games' }],
      ['a relative ./ path', { game_dir: './games', create: true }],
      ['an empty path', { game_dir: '' }],
      ['a number', { game_dir: 42 }],
      ['a missing directory', { game_dir: missing }],
      ['a file', { game_dir: file }],
      ['a file, create', { game_dir: file, create: true }],
      ['below a file, create', { game_dir: path.join(file, 'games'), create: true }],
      ['../ to a missing directory', { game_dir: `${env.path('exists')}/../missing2` }],
      ['a NUL byte', { game_dir: `${env.path('exists')}\u0000/x` }],
      ['a name that is not a string', { name: 42 }],
      ['static_peers not a list', { static_peers: '127.0.0.1:1' }],
      ['a static peer that is not HOST:PORT', { static_peers: ['not an address'] }],
      ['a static peer with a bad port', { static_peers: ['127.0.0.1:99999'] }],
      ['a gui that is not HOST:PORT', { gui: 'nope' }],
      ['a good game_dir with a bad name', { game_dir: env.path('exists'), name: ['x'] }],
      ['a good game_dir with a bad static peer', { game_dir: env.path('exists'), static_peers: [7] }],
      // The last ones change the settings when accepted: after all others.
      ['../ tricks, create', { game_dir: `${env.path('exists')}/../../${path.basename(env.dir)}/made-by-dotdot`, create: true }],
      ['create not a boolean', { game_dir: env.path('exists'), create: 'yes' }],
    ];
    await t.test('bad settings → 400 and nothing stored', async () => {
      await all(bad.map(([what, body]) => async () => {
        const prev = await d.ok('GET', '/api/settings');
        const prevConfig = readConfig();
        const r = await d.api('PUT', '/api/settings', { body });
        if (what === 'a NUL byte') assert.ok(r.status === 400 && ['bad_request', 'bad_json'].includes(r.json?.code), r.text);
        else assertError(r, 400, 'bad_request', `${what}: ${JSON.stringify(body)}`);
        assert.deepEqual(await d.ok('GET', '/api/settings'), prev, `settings changed by ${what}`);
        assert.equal(readConfig(), prevConfig, `config file changed by ${what}`);
      }));
      assert.deepEqual(await d.ok('GET', '/api/settings'), before);
      assert.equal(readConfig(), configBefore);
      assert.equal(fs.existsSync(missing), false, 'a missing directory was created');
      assert.equal(fs.existsSync(env.path('made-by-dotdot')), false, 'the ../ path was created');
      assert.equal((await d.ok('GET', '/api/state')).setup_needed, true);
    });

    await t.test('check-game-dir: the same checks, nothing stored or created', async () => {
      const before = await d.ok('GET', '/api/settings');
      const configBefore = readConfig();
      for (const [what, p] of [['relative', 'games'], ['missing', missing], ['file', file], ['empty', '']]) {
        const r = await d.ok('POST', '/api/check-game-dir', { path: p });
        assert.equal(r.ok, false, `${what}: ${JSON.stringify(r)}`);
        assert.ok(typeof r.error === 'string' && r.error.length > 0, `${what}: ${JSON.stringify(r)}`);
      }
      assert.deepEqual(await d.ok('POST', '/api/check-game-dir', { path: env.path('exists') }), { ok: true });
      // With create: a missing directory will be made (but is not made now).
      const c = await d.ok('POST', '/api/check-game-dir', { path: missing, create: true });
      assert.equal(c.ok, true, JSON.stringify(c));
      assert.equal(typeof c.note, 'string');
      const cf = await d.ok('POST', '/api/check-game-dir', { path: path.join(file, 'games'), create: true });
      assert.equal(cf.ok, false, `below a file, create: ${JSON.stringify(cf)}`);
      const cr = await d.ok('POST', '/api/check-game-dir', { path: 'relative', create: true });
      assert.equal(cr.ok, false, `relative, create: ${JSON.stringify(cr)}`);
      assertError(await d.api('POST', '/api/check-game-dir', { body: {} }), 400, 'bad_request', 'no path');
      assertError(await d.api('POST', '/api/check-game-dir', { body: { path: 7 } }), 400, 'bad_request', 'path 7');
      assert.equal(fs.existsSync(missing), false);
      assert.equal(readConfig(), configBefore);
      assert.deepEqual(await d.ok('GET', '/api/settings'), before);
    });

    const gameDir = env.path('chosen', 'games');
    await t.test('PUT game_dir with create:true makes it and starts the runtime', async () => {
      const s = d.events();
      env.streams.push(s);
      await s.waitFor('snapshot');
      const mark = s.mark();
      const r = await d.ok('PUT', '/api/settings', { game_dir: gameDir, create: true });
      assert.equal(settingsOf(r).game_dir, gameDir);
      assert.equal(r.setup_needed, false);
      assert.equal(r.runtime.running, true, JSON.stringify(r.runtime));
      assert.match(r.runtime.peer_id, HEX64);
      assert.ok(fs.statSync(gameDir).isDirectory());
      await s.waitFor('settings', (x) => x.setup_needed === false && x.runtime?.running, 5000, { since: mark });
      const conf = JSON.parse(readConfig());
      assert.equal(conf.game_dir, gameDir);
      // The runtime starts with --peer: the seeder's games appear.
      await waitPeerGames(d, ['alpha', 'nolaunch']);
      const st = await d.ok('GET', '/api/state');
      assert.equal(st.setup_needed, false);
      assert.ok(st.peers.some((p) => p.peer_id === seeder.peerId && p.status === 'connected'), JSON.stringify(st.peers));
      s.close();
    });

    await t.test('name, static_peers and gui are stored', async () => {
      const r = await d.ok('PUT', '/api/settings', { name: 'ui-test-box', static_peers: [seeder.addr], gui: '127.0.0.1:0' });
      assert.equal(settingsOf(r).name, 'ui-test-box');
      assert.deepEqual(settingsOf(r).static_peers, [seeder.addr]);
      const conf = JSON.parse(readConfig());
      assert.equal(conf.name, 'ui-test-box');
      assert.deepEqual(conf.static_peers, [seeder.addr]);
      assert.equal(conf.gui, '127.0.0.1:0');
      assert.equal(conf.game_dir, gameDir);
      // The runtime was restarted with the new name; the seeder sees it.
      await h.until('the seeder to see the name ui-test-box', async () => {
        const reply = await seeder.command('peers');
        return reply.peers?.some((p) => p.name === 'ui-test-box');
      }, 10000, 500);
      await waitPeerGames(d, ['alpha']);
    });

    const key = d.key;
    const configText = readConfig();
    await t.test('a restart keeps the settings and the API key; overrides are not written back', async () => {
      await d.stop();
      // No --game-dir, no --peer: both come from the config file. --name is
      // an override for this run only.
      d = await env.startDaemon({ name: 'lanspread-2', catalog: cat, args: ['--name', 'override-name'] });
      assert.equal(d.key, key, 'the API key changed across a restart');
      assert.equal(fs.statSync(env.path('state', 'api-key')).mode & 0o777, 0o600);
      const st = await d.ok('GET', '/api/state');
      assert.equal(st.setup_needed, false);
      assert.equal(st.runtime.running, true);
      assert.equal(st.settings.game_dir, gameDir);
      assert.deepEqual(st.settings.static_peers, [seeder.addr]);
      await waitPeerGames(d, ['alpha', 'nolaunch']);
      await d.stop();
      assert.equal(readConfig(), configText, 'the config file changed by a run with overrides');
    });

    await t.test('an unreadable config file → exit status 1; a usage error → 2', async () => {
      const broken = env.path('broken.json');
      fs.writeFileSync(broken, '{"game_dir": ');
      const p1 = env.spawn('lanspread-badconfig', h.DAEMON, ['--no-browser', '--gui', '127.0.0.1:0', '--config', broken,
        '--state-dir', env.path('state-b'), '--no-mdns', '--listen', '127.0.0.1:0'], { expectCode: 1 });
      const e1 = await p1.exited;
      assert.deepEqual(e1, { code: 1, signal: null }, p1.describe());
      assert.match(p1.stderr, /broken\.json/, 'the error names the file');
      const p2 = env.spawn('lanspread-usage', h.DAEMON, ['--no-such-option'], { expectCode: 2 });
      assert.deepEqual(await p2.exited, { code: 2, signal: null }, p2.describe());
    });
  });
});

// ---------------------------------------------------------------------------

test('the address taken → exit status 1', { timeout: 60000 }, async () => {
  await h.withEnv('address-taken', async (env) => {
    const cat = catalog(env);
    const d = await env.startDaemon({ catalog: cat, gameDir: env.mkdir('games') });
    const p = env.spawn('lanspread-second', h.DAEMON, ['--no-browser', '--gui', `127.0.0.1:${d.port}`,
      '--config', env.path('config2.json'), '--state-dir', env.path('state2'), '--catalog', cat,
      '--game-dir', env.mkdir('games2'), '--listen', '127.0.0.1:0', '--no-mdns'], { expectCode: 1 });
    assert.deepEqual(await p.exited, { code: 1, signal: null }, p.describe());
    // The first one still serves.
    assert.equal((await d.api('GET', '/api/state')).status, 200);
  });
});

test('the UI opens in a browser when there is a graphical session, and not without one', { timeout: 60000 }, async () => {
  await h.withEnv('browser', async (env) => {
    // A stand-in xdg-open that records the address it was asked to open.
    const bin = env.mkdir('bin');
    const opened = env.path('opened');
    fs.writeFileSync(path.join(bin, 'xdg-open'), `#!/bin/sh\necho "$1" >> '${opened}'\n`, { mode: 0o755 });
    const PATH = `${bin}:${process.env.PATH}`;
    const cat = catalog(env);
    const headless = await env.startDaemon({ name: 'headless', catalog: cat, browser: true,
      stateDir: env.path('state1'), config: env.path('c1.json'),
      env: { PATH, DISPLAY: '', WAYLAND_DISPLAY: '' } });
    const d = await env.startDaemon({ catalog: cat, browser: true, env: { PATH, DISPLAY: ':0' } });
    await h.until('xdg-open was run with the UI address', () => fs.existsSync(opened), 10000);
    await h.sleep(500);
    // Only the daemon with a display asked for a browser, at its login page
    // STATE/login.html (0600), which goes on to its one-time login address
    // (still unspent), so its user gets in at once. Never the address
    // itself: a command line is readable by every local user.
    const page = path.join(env.path('state'), 'login.html');
    assert.deepEqual(fs.readFileSync(opened, 'utf8').trim().split('\n'), [`file://${page}`]);
    assert.equal(fs.statSync(page).mode & 0o777, 0o600, 'mode of STATE/login.html');
    assert.ok(fs.readFileSync(page, 'utf8').includes(`content="0;url=${d.loginUrl()}"`));
    assert.ok(d.loginUrl().startsWith(`${d.url}login?token=`));
    assert.notEqual(headless.url, d.url);
  });
});

// ---------------------------------------------------------------------------

test('games: download, install, play, uninstall, remove, cancel, refusals, peers', { timeout: 180000 }, async (t) => {
  await h.withEnv('games', async (env) => {
    const BIG = 'big0001';
    const { d, seeder, gameDir } = await pair(env, {
      extraCatalog: [{ id: BIG, name: 'Big Download' }],
      seed: (dir) => env.genGame(dir, { id: BIG, size: '512M', archives: 4 }),
    });
    const s = d.events();
    env.streams.push(s);
    await s.waitFor('snapshot');
    await waitPeerGames(d, ['alpha', 'nolaunch', BIG]);
    const root = (id, ...rest) => path.join(gameDir, id, ...rest);

    await t.test('GET /api/peers and /api/state', async () => {
      const peers = await d.ok('GET', '/api/peers');
      assert.equal(peers.count, 1, JSON.stringify(peers));
      assert.equal(peers.peers.length, 1);
      const p = peers.peers[0];
      assert.equal(p.peer_id, seeder.peerId);
      assert.equal(p.addr, seeder.addr);
      assert.equal(p.name, 'seeder');
      assert.equal(p.status, 'connected');
      assert.equal(p.games, 3);
      const st = await d.ok('GET', '/api/state');
      assert.equal(typeof st.seq, 'number');
      assert.equal(st.setup_needed, false);
      assert.equal(st.runtime.running, true);
      assert.match(st.runtime.peer_id, HEX64);
      assert.match(st.runtime.listen, /^127\.0\.0\.1:\d+$/);
      assert.equal(st.runtime.error, null);
      assert.equal(st.settings.game_dir, gameDir);
      assert.deepEqual(st.peers, peers.peers);
      assert.deepEqual(st.games.map((g) => g.id).sort(), ['alpha', BIG, 'nolaunch']);
    });

    await t.test('GET /api/games and /api/games/ID: cards of available games', async () => {
      const { games } = await d.ok('GET', '/api/games');
      assert.deepEqual(games.map((g) => g.id).sort(), ['alpha', BIG, 'nolaunch']);
      const a = await d.card('alpha');
      assert.deepEqual(a, games.find((g) => g.id === 'alpha'));
      assert.equal(a.name, 'Alpha Arena');
      assert.equal(a.genre, 'Shooter');
      assert.equal(a.max_players, 8);
      assert.equal(a.description, 'A playable test game');
      assert.equal(a.state, 'available');
      assert.equal(a.downloaded, false);
      assert.equal(a.installed, false);
      assert.equal(a.local_version, null);
      assert.equal(a.latest_version, '1.0');
      assert.equal(a.peers, 1);
      assert.equal(a.progress, null);
      assert.equal(a.error, null);
      assert.deepEqual(a.actions, ['download']);
      assert.equal(typeof a.size, 'number');
      const n = await d.card('nolaunch');
      assert.equal(n.latest_version, '3');
      // A catalog game nobody has: not in the library.
      const g = await d.api('GET', '/api/games/ghost');
      assert.ok(g.status === 404 || g.json?.state === 'unavailable', `ghost: ${g.status} ${g.text}`);
    });

    await t.test('refusals of a game that is only on a peer → 409 refused', async () => {
      await all([
        ...['install', 'uninstall', 'remove', 'play', 'cancel', 'update'].map((action) => async () =>
          assertError(await d.api('POST', `/api/games/alpha/${action}`), 409, 'refused', `${action} of an available game`)),
        async () => assertError(await d.api('POST', '/api/games/ghost/download'), 409, 'refused', 'download of a game nobody has'),
      ]);
      assert.equal(fs.existsSync(root('alpha')), false);
    });

    await t.test('download → install → installed, files in GAME_DIR/ID/local', async () => {
      const mark = s.mark();
      const r = await d.api('POST', '/api/games/alpha/download');
      assert.equal(r.status, 202, r.text);
      assert.deepEqual(r.json, { ok: true, id: 'alpha' });
      const seq = [];
      for (const name of ['game-download-begin', 'game-download-finished', 'game-install-begin', 'game-install-finished']) {
        const e = await s.waitFor(name, (x) => x.id === 'alpha', 20000, { since: mark });
        seq.push(e.index);
      }
      assert.deepEqual([...seq].sort((a, b) => a - b), seq, `events out of order: ${s.names(mark).join(', ')}`);
      assert.equal(s.events.slice(mark).filter((e) => e.event === 'game-download-failed' || e.event === 'game-install-failed').length, 0);
      // Each runtime event is followed by the changed card; the last says installed.
      await s.waitFor('game-state', (c) => c.id === 'alpha' && c.state === 'installed', 10000, { since: mark });
      const card = await d.card('alpha');
      assert.equal(card.state, 'installed');
      assert.equal(card.downloaded, true);
      assert.equal(card.installed, true);
      assert.equal(card.local_version, '1.0');
      assert.equal(card.progress, null);
      assert.equal(card.error, null);
      assert.deepEqual(card.actions, ['play', 'uninstall', 'verify', 'repair']);
      assert.deepEqual(h.listFiles(root('alpha', 'local')), ['bin/play.sh', 'data/level1.txt']);
      assert.equal(fs.readFileSync(root('alpha', 'local/data/level1.txt'), 'utf8'), 'level one\n');
      assert.equal(fs.readFileSync(root('alpha', 'version.ini'), 'utf8').trim(), '1.0');
      assert.ok(fs.statSync(root('alpha', 'local/bin/play.sh')).mode & 0o100, 'play.sh kept its x bit');
      // Event ids are increasing numbers.
      const ids = s.events.map((e) => Number(e.id));
      assert.ok(ids.every((v, i) => Number.isInteger(v) && (i === 0 || v > ids[i - 1])), `ids ${ids.join(',')}`);
    });

    await t.test('refusals of an installed game', async () => {
      // Only remove is checked before the others: a download accepted by
      // mistake would make the rest race with it.
      const r = await d.api('POST', '/api/games/alpha/remove');
      assertError(r, 409, 'refused', 'remove of an installed game');
      assert.match(r.json.error, /uninstall/i, 'the refusal of remove says to uninstall first');
      assert.equal(r.json.runtime_code, 'LS_ESTATE', 'the runtime\'s code comes with its reason');
      await refusals(d, 'alpha', ['cancel', 'update', 'download'], 'installed', 'an installed game');
      assert.ok(fs.existsSync(root('alpha', 'local/bin/play.sh')));
    });

    await t.test('install of an installed game reinstalls it from its archives', async () => {
      fs.rmSync(root('alpha', 'local/bin/play.sh')); // a broken install...
      const mark = s.events.length;
      const r = await d.api('POST', '/api/games/alpha/install');
      assert.equal(r.status, 202, JSON.stringify(r.json));
      await s.waitFor('game-install-finished', (x) => x.id === 'alpha', 20000, { since: mark });
      await d.waitCard('alpha', (c) => c.state === 'installed', 'installed again');
      assert.ok(fs.existsSync(root('alpha', 'local/bin/play.sh')), '...is repaired');
    });

    await t.test('play → pid, the launch file runs', async () => {
      const marker = env.path('played-alpha');
      const r = await d.ok('POST', '/api/games/alpha/play');
      assert.equal(r.ok, true);
      assert.ok(Number.isInteger(r.pid) && r.pid > 1, JSON.stringify(r));
      await h.until('the marker file of play.sh', () => fs.existsSync(marker), 10000);
      const text = fs.readFileSync(marker, 'utf8');
      assert.match(text, /^played \d+ in \//);
      // The script ran inside the installed game.
      assert.ok(text.trim().split(' in ')[1].startsWith(root('alpha', 'local')), `play.sh ran in: ${text}`);
    });

    await t.test('play of a game without launch → 409; of a missing launch file → 409', async () => {
      const mark = s.mark();
      assert.equal((await d.api('POST', '/api/games/nolaunch/download')).status, 202);
      await s.waitFor('game-install-finished', (x) => x.id === 'nolaunch', 20000, { since: mark });
      const card = await d.waitCard('nolaunch', (c) => c.state === 'installed', 'installed');
      assert.deepEqual(card.actions, ['uninstall', 'verify', 'repair']);
      assertError(await d.api('POST', '/api/games/nolaunch/play'), 409, 'refused', 'play without launch');
      // alpha with its launch file deleted: no play action, play refused.
      fs.renameSync(root('alpha', 'local/bin/play.sh'), env.path('play.sh.saved'));
      try {
        const a = await d.waitCard('alpha', (c) => !c.actions.includes('play'), 'no play without the file', 10000);
        assert.equal(a.state, 'installed');
        assertError(await d.api('POST', '/api/games/alpha/play'), 409, 'refused', 'play with the launch file gone');
      } finally {
        fs.renameSync(env.path('play.sh.saved'), root('alpha', 'local/bin/play.sh'));
      }
      await d.waitCard('alpha', (c) => c.actions.includes('play'), 'play is back', 10000);
    });

    await t.test('uninstall → downloaded; install → installed; uninstall, remove → available', async () => {
      let mark = s.mark();
      let r = await d.api('POST', '/api/games/alpha/uninstall');
      assert.equal(r.status, 202, r.text);
      assert.deepEqual(r.json, { ok: true, id: 'alpha' });
      await s.waitFor('game-uninstall-begin', (x) => x.id === 'alpha', 10000, { since: mark });
      await s.waitFor('game-uninstall-finished', (x) => x.id === 'alpha', 20000, { since: mark });
      let card = await d.waitCard('alpha', (c) => c.state === 'downloaded', 'downloaded');
      assert.equal(card.installed, false);
      assert.equal(card.downloaded, true);
      assert.deepEqual(card.actions, ['install', 'remove', 'verify', 'repair']);
      assert.equal(fs.existsSync(root('alpha', 'local')), false);
      assert.ok(fs.existsSync(root('alpha', 'version.ini')));
      assert.ok(fs.existsSync(root('alpha', 'alpha.part01.eti')));
      await refusals(d, 'alpha', ['uninstall', 'play', 'cancel', 'update', 'download'], 'downloaded', 'a downloaded game');

      mark = s.mark();
      r = await d.api('POST', '/api/games/alpha/install');
      assert.equal(r.status, 202, r.text);
      await s.waitFor('game-install-finished', (x) => x.id === 'alpha', 20000, { since: mark });
      card = await d.waitCard('alpha', (c) => c.state === 'installed', 'installed again');
      assert.deepEqual(h.listFiles(root('alpha', 'local')), ['bin/play.sh', 'data/level1.txt']);

      mark = s.mark();
      assert.equal((await d.api('POST', '/api/games/alpha/uninstall')).status, 202);
      await s.waitFor('game-uninstall-finished', (x) => x.id === 'alpha', 20000, { since: mark });
      await d.waitCard('alpha', (c) => c.state === 'downloaded', 'downloaded again');
      mark = s.mark();
      r = await d.api('POST', '/api/games/alpha/remove');
      assert.equal(r.status, 202, r.text);
      await s.waitFor('game-remove-finished', (x) => x.id === 'alpha', 20000, { since: mark });
      card = await d.waitCard('alpha', (c) => c.state === 'available', 'available after remove');
      assert.equal(card.downloaded, false);
      assert.deepEqual(card.actions, ['download']);
      assert.equal(fs.existsSync(root('alpha')), false, 'the game root is gone');
      assertError(await d.api('POST', '/api/games/alpha/remove'), 409, 'refused', 'remove twice');
    });

    await t.test('cancel mid-download: no game root left; busy refusals meanwhile', async () => {
      const mark = s.mark();
      const r = await d.api('POST', `/api/games/${BIG}/download`);
      assert.equal(r.status, 202, r.text);
      await s.waitFor('game-download-progress', (x) => x.id === BIG && x.bytes > 0, 20000, { since: mark });
      const card = await d.card(BIG);
      assert.equal(card.state, 'downloading', JSON.stringify(card));
      assert.ok(card.actions.includes('cancel'), JSON.stringify(card.actions));
      assert.ok(card.progress && card.progress.total_bytes > 512 * 1024 * 1024 && card.progress.bytes >= 0,
        JSON.stringify(card.progress));
      await s.waitFor('game-state', (c) => c.id === BIG && c.state === 'downloading' && c.progress?.bytes > 0,
        5000, { since: mark });
      // While it runs: a second download, SetGameDir and a runtime restart are refused.
      assertError(await d.api('POST', `/api/games/${BIG}/download`), 409, 'refused', 'download twice');
      assertError(await d.api('PUT', '/api/settings', { body: { game_dir: env.mkdir('other-games') } }), 409,
        'refused', 'SetGameDir while downloading');
      assertError(await d.api('PUT', '/api/settings', { body: { name: 'busy' } }), 409, 'refused',
        'a name change while downloading');
      const c = await d.api('POST', `/api/games/${BIG}/cancel`);
      assert.equal(c.status, 200, `cancel: ${c.status} ${c.text} (events: ${s.names(mark).slice(-5).join(', ')})`);
      assert.deepEqual(c.json, { ok: true, id: BIG });
      await s.waitFor('game-download-cancelled', (x) => x.id === BIG, 20000, { since: mark });
      assert.equal(s.events.slice(mark).some((e) => e.event === 'game-download-finished' && e.data.id === BIG), false,
        'the download finished before the cancel: make the game bigger');
      const after = await d.waitCard(BIG, (x) => x.state === 'available', 'available after cancel');
      assert.deepEqual(after.actions, ['download']);
      assert.equal(after.progress, null);
      assert.equal(after.downloaded, false);
      assert.equal(fs.existsSync(root(BIG)), false, `left after cancel: ${h.listFiles(root(BIG)).join(', ')}`);
      assertError(await d.api('POST', `/api/games/${BIG}/cancel`), 409, 'refused', 'cancel with no download');
      assert.notEqual(settingsOf(await d.ok('GET', '/api/settings')).name, 'busy');
    });

    await t.test('pause → a paused card; its refusals; cancel discards it', async () => {
      let r = await d.api('POST', `/api/games/${BIG}/pause`);
      assertError(r, 409, 'refused', 'pause with no download');
      assert.equal(r.json.runtime_code, 'LS_ESTATE');
      assert.match(r.json.error, /no download of big0001 is running/);
      const mark = s.mark();
      assert.equal((await d.api('POST', `/api/games/${BIG}/download`)).status, 202);
      await s.waitFor('game-download-progress', (x) => x.id === BIG && x.bytes > 0, 20000, { since: mark });
      // The runtime's library (a fresh one) says what runs.
      const running = (await d.ok('GET', '/api/games')).games.find((g) => g.id === BIG);
      assert.deepEqual(running.actions, ['pause', 'cancel']);
      assert.equal(running.download?.state, 'running', JSON.stringify(running.download));
      r = await d.api('POST', `/api/games/${BIG}/pause`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { ok: true, id: BIG });
      const paused = await s.waitFor('game-download-paused', (x) => x.id === BIG, 20000, { since: mark });
      assert.equal(s.events.slice(mark).some((e) => e.event === 'game-download-finished' && e.data.id === BIG), false,
        'the download finished before the pause: make the game bigger');
      const card = await d.waitCard(BIG, (c) => c.state === 'paused', 'paused');
      assert.deepEqual(card.actions, ['download', 'cancel']);
      assert.equal(card.progress, null);
      assert.equal(card.operation, null);
      assert.equal(card.error, null);
      assert.equal(card.downloaded, false);
      assert.equal(card.download.state, 'paused');
      assert.equal(card.download.version, card.latest_version);
      assert.equal(card.download.bytes, paused.data.bytes);
      assert.ok(card.download.bytes > 0 && card.download.bytes < card.download.total_bytes, JSON.stringify(card.download));
      assert.ok(fs.existsSync(root(BIG, '.lanspread.download')));
      r = await d.api('POST', `/api/games/${BIG}/pause`);
      assertError(r, 409, 'refused', 'pause of a paused game');
      assert.equal(r.json.runtime_code, 'LS_ESTATE');
      r = await d.api('POST', `/api/games/${BIG}/verify`);
      assertError(r, 409, 'refused', 'verify of a paused game');
      assert.equal(r.json.runtime_code, 'LS_ESTATE');
      assert.equal((await d.card(BIG)).state, 'paused');
      r = await d.api('POST', `/api/games/${BIG}/cancel`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { ok: true, id: BIG });
      await s.waitFor('game-download-cancelled', (x) => x.id === BIG, 20000, { since: mark });
      const after = await d.waitCard(BIG, (c) => c.state === 'available', 'available after the discard');
      assert.equal(after.download, null);
      assert.deepEqual(after.actions, ['download']);
      assert.equal(fs.existsSync(root(BIG)), false, `left after the discard: ${h.listFiles(root(BIG)).join(', ')}`);
    });

    await t.test('verify → its result on the card; a flipped byte → a bad chunk; repair → clean again', async () => {
      const id = 'nolaunch';
      assert.deepEqual((await d.card(id)).actions, ['uninstall', 'verify', 'repair']);
      const local = fs.readFileSync(root(id, 'local', 'readme.txt'));
      const verify = async (what) => {
        const mark = s.mark();
        const r = await d.api('POST', `/api/games/${id}/verify`);
        assert.equal(r.status, 202, `${what}: ${r.text}`);
        assert.deepEqual(r.json, { ok: true, id });
        const done = await s.waitFor('game-verify-finished', (x) => x.id === id, 20000, { since: mark });
        await s.waitFor('game-state', (c) => c.id === id && c.verify?.chunks === done.data.chunks &&
          c.state === 'installed', 10000, { since: mark });
        return { done: done.data, card: await d.card(id) };
      };
      let { done, card } = await verify('a clean game');
      assert.equal(done.ok, true, JSON.stringify(done));
      assert.equal(card.verify.ok, true);
      assert.equal(card.verify.repair, false);
      assert.equal(card.verify.message, `Verified: all ${done.chunks} ${done.chunks === 1 ? 'chunk' : 'chunks'} OK.`);

      const archive = root(id, `${id}.part01.eti`);
      const bytes = fs.readFileSync(archive);
      bytes[600] ^= 0x55;
      fs.writeFileSync(archive, bytes);
      ({ done, card } = await verify('a flipped byte'));
      assert.equal(done.ok, false);
      assert.equal(done.bad_chunks, 1);
      assert.deepEqual(done.files.map((f) => f.path), [`${id}.part01.eti`]);
      assert.equal(card.verify.ok, false);
      assert.equal(card.verify.message, 'Verify found 1 bad chunk in 1 file: Repair fetches them.');

      const mark = s.mark();
      const r = await d.api('POST', `/api/games/${id}/repair`);
      assert.equal(r.status, 202, r.text);
      assert.deepEqual(r.json, { ok: true, id });
      const begin = await s.waitFor('game-download-begin', (x) => x.id === id, 20000, { since: mark });
      assert.equal(begin.data.repair, true);
      const fin = await s.waitFor('game-download-finished', (x) => x.id === id, 20000, { since: mark });
      assert.equal(fin.data.repair, true);
      card = await d.waitCard(id, (c) => c.verify?.repair === true && c.state === 'installed', 'repaired');
      assert.equal(card.verify.ok, true);
      assert.match(card.verify.message, /^Repaired: /);
      assert.equal(s.events.slice(mark).some((e) => e.event === 'game-install-begin'), false, 'a repair reinstalled');
      assert.deepEqual(fs.readFileSync(root(id, 'local', 'readme.txt')), local);
      ({ done } = await verify('the repaired game'));
      assert.equal(done.ok, true, JSON.stringify(done));
      // Repair and verify of a game that is not here: refused by the runtime.
      for (const action of ['verify', 'repair']) {
        const no = await d.api('POST', `/api/games/alpha/${action}`);
        assertError(no, 409, 'refused', `${action} of a game that is not downloaded`);
        assert.equal(no.json.runtime_code, 'LS_ESTATE');
      }
    });

    await t.test('a peer that goes: peer-disconnected, status disconnected, installed games stay', async () => {
      const mark = s.mark();
      await seeder.stop();
      await s.waitFor('peer-disconnected', () => true, 15000, { since: mark });
      await s.waitFor('peers', (x) => x.peers.every((p) => p.status !== 'connected'), 10000, { since: mark });
      const peers = await d.ok('GET', '/api/peers');
      assert.ok(peers.peers.every((p) => p.status === 'disconnected'), JSON.stringify(peers));
      const n = await d.card('nolaunch');
      assert.equal(n.state, 'installed');
      assert.equal(n.peers, 0);
      const { games } = await d.ok('GET', '/api/games');
      assert.ok(!games.some((g) => g.id === BIG), `a game only the gone peer had is no longer listed: ${JSON.stringify(games.find((g) => g.id === BIG))}`);
    });

    await t.test('SIGTERM with an event stream open: exit status 0, the stream ends', async () => {
      const extra = d.events();
      await extra.waitFor('snapshot');
      await d.stop();
      await h.until('the stream to end', () => extra.closed && s.closed, 5000);
    });
  });
});
