// The lanspread page (docs/API.md, "The page") in headless Chromium driven
// by playwright-core: a seeding lanspread-peer-cli and the daemon on
// 127.0.0.1 (real QUIC, static peers, real files), the page clicked like a
// person would. Screenshots of the main states go to
// $LS_BINARY_DIR/ui-screenshots/. CTest: ui.browser. Run by hand:
// LS_BINARY_DIR=build node --test tests/ui/browser.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as h from './harness.mjs';

h.checkSetup({ browser: true });
const { chromium } = await import('playwright-core');

const BIG = 'big0001';
const BIG_SIZE = '512M'; // a few seconds over loopback: time to see progress and cancel

const card = (page, id) => page.locator(`.card[data-game-id="${id}"]`);
const button = (page, id, action) => card(page, id).locator(`[data-action="${action}"]`);

// Waits until the card of id shows `state`; returns the card locator.
async function waitState(page, id, state, timeoutMs = 30000) {
  const c = page.locator(`.card[data-game-id="${id}"][data-state="${state}"]`);
  try {
    await c.waitFor({ state: 'visible', timeout: timeoutMs * h.T });
  } catch (e) {
    const now = await card(page, id).getAttribute('data-state', { timeout: 1000 }).catch(() => 'no card');
    throw new Error(`card ${id} did not reach ${state} in ${timeoutMs * h.T} ms (it is ${now})`);
  }
  return c;
}

// The data-action buttons of a card, in order.
const actionsOf = (page, id) =>
  card(page, id).locator('[data-action]').evaluateAll((bs) => bs.map((b) => b.dataset.action));

async function shot(page, name) {
  await page.screenshot({ path: h.screenshotPath(name), fullPage: true });
}

async function launchBrowser(env) {
  const browser = await chromium.launch({ executablePath: h.CHROMIUM, headless: true, args: ['--no-sandbox'] });
  env.onCleanup(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  return { browser, context };
}

// A page of the daemon with its script errors and failed requests
// collected: page.problems (script errors, console errors) and
// page.failures (every answer >= 400, "STATUS METHOD PATH").
async function openPage(context, url) {
  const page = await context.newPage();
  page.problems = [];
  page.failures = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Failed requests are judged by page.failures, which has their address.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) page.failures.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  await page.goto(url);
  return page;
}

// What went wrong in a page apart from the refusals the test caused on
// purpose (`expected`: regexps of page.failures entries).
const realProblems = (page, expected = []) => [
  ...page.problems,
  ...page.failures.filter((f) => !/ \/favicon\.ico$/.test(f) && !expected.some((re) => re.test(f))),
];

// ---------------------------------------------------------------------------

test('two peers through the page: download, cancel, play, update, uninstall, remove, errors, tabs', { timeout: 300000 }, async (t) => {
  await h.withEnv('browser', async (env) => {
    const marker = env.path('played-big');
    const markerAlpha = env.path('played-alpha');
    const cat = env.writeCatalog([
      { id: 'alpha', name: 'Alpha Arena', genre: 'Shooter', max_players: 8, launch: 'bin/play.sh',
        description: 'A small playable game that gets an update' },
      { id: BIG, name: 'Big Download', genre: 'Strategy', max_players: 16, launch: 'bin/play.sh',
        description: 'Big enough to watch the progress bar' },
      { id: 'broken', name: 'Broken Archive', genre: 'Puzzle', description: 'Its archive is not one' },
    ]);
    const seedGames = env.mkdir('seeder', 'games');
    env.makeGame(seedGames, { id: 'alpha', version: '1.0', files: {
      'bin/play.sh': env.playScript(markerAlpha), 'data/level.txt': 'version one\n' } });
    env.genGame(seedGames, { id: BIG, size: BIG_SIZE, archives: 4 });
    // plus a last archive with the launch script (archives extract in name order)
    env.makeGame(seedGames, { id: BIG, archiveName: `${BIG}.part99.eti`,
      files: { 'bin/play.sh': env.playScript(marker) } });
    fs.mkdirSync(path.join(seedGames, 'broken'));
    h.writeRandomFile(path.join(seedGames, 'broken', 'broken.part01.eti'), 256 * 1024);
    fs.writeFileSync(path.join(seedGames, 'broken', 'version.ini'), '1.0\n');

    const seeder = await env.startSeeder({ gameDir: seedGames, catalog: cat });
    const gameDir = env.mkdir('games');
    const d = await env.startDaemon({ catalog: cat, gameDir, peers: [seeder.addr] });
    const { context } = await launchBrowser(env);
    await d.login(context);
    const page = await openPage(context, d.url);
    const root = (id, ...rest) => path.join(gameDir, id, ...rest);

    await t.test('the page shows the seeder and its games', async () => {
      await page.locator(`#peers .peer[data-peer-id="${seeder.peerId}"]`).waitFor({ timeout: 20000 * h.T });
      for (const id of ['alpha', BIG, 'broken']) await waitState(page, id, 'available', 20000);
      assert.deepEqual(await actionsOf(page, 'alpha'), ['download']);
      await assert.doesNotReject(button(page, 'alpha', 'download').waitFor({ timeout: 5000 }));
      assert.match(await card(page, 'alpha').locator('.name').textContent(), /Alpha Arena/);
      assert.equal(await page.locator('#setup').isVisible(), false);
      assert.match(await page.locator('#peer-count').textContent(), /1 peer/);
      await shot(page, 'available');
    });

    await t.test('requests without the session or from another origin are refused', async () => {
      const withSession = await page.evaluate(async () => (await fetch('/api/state')).status);
      assert.equal(withSession, 200);
      const wrongKey = await page.evaluate(async () =>
        (await fetch('/api/state', { headers: { 'X-Lanspread-Key': 'f'.repeat(64) } })).status);
      assert.equal(wrongKey, 401);
      const noSession = await page.evaluate(async () =>
        (await fetch('/api/state', { credentials: 'omit' })).status);
      assert.equal(noSession, 401, 'a request without the session cookie');

      // A page of another origin (another port on 127.0.0.1, the same
      // site, so the session cookie goes along): its requests carry its
      // Origin and are refused.
      const evil = http.createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<!doctype html><title>evil</title><p>evil page</p>');
      });
      await new Promise((r) => evil.listen(0, '127.0.0.1', r));
      env.onCleanup(() => new Promise((r) => evil.close(r)));
      const evilPage = await context.newPage();
      await evilPage.goto(`http://127.0.0.1:${evil.address().port}/`);
      const target = `${d.url}api/games/${BIG}/download`;
      const [resp] = await Promise.all([
        evilPage.waitForResponse((r) => r.url() === target),
        evilPage.evaluate(async ({ url, key }) => {
          try {
            await fetch(url, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
              body: '{}' });
          } catch { /* the answer is opaque */ }
          try { await fetch(`${url}?key=${key}`, { method: 'POST', mode: 'no-cors' }); } catch { /* ditto */ }
        }, { url: target, key: d.key }),
      ]);
      assert.equal(resp.status(), 403, `cross-origin POST answered ${resp.status()}`);
      // A form posted from there (the classic cross-site request): refused.
      await evilPage.setContent(`<form method="post" action="${target}"><button>go</button></form>`);
      const [nav] = await Promise.all([
        evilPage.waitForResponse((r) => r.url() === target),
        evilPage.click('button'),
      ]);
      assert.equal(nav.status(), 403, `cross-site form POST answered ${nav.status()}`);
      await evilPage.close();
      assert.equal((await d.card(BIG)).state, 'available', 'the refused POST started a download');
    });

    let page2;
    await t.test('download shows progress in both tabs; cancel mid-way leaves nothing', async () => {
      page2 = await openPage(context, d.url);
      await waitState(page2, BIG, 'available');
      await page.bringToFront();
      await button(page, BIG, 'download').click();
      const progress = card(page, BIG).locator('.progress');
      await progress.waitFor({ timeout: 15000 * h.T });
      await page.waitForFunction((id) => {
        const p = document.querySelector(`.card[data-game-id="${id}"] .progress`);
        return p && p.value > 0;
      }, BIG, { timeout: 15000 * h.T, polling: 50 });
      const max = Number(await progress.getAttribute('max'));
      assert.ok(max > 512 * 1024 * 1024, `progress max ${max}`);
      // The other tab follows.
      await waitState(page2, BIG, 'downloading', 5000);
      await button(page2, BIG, 'cancel').waitFor({ timeout: 5000 });
      await button(page, BIG, 'cancel').click();
      await waitState(page, BIG, 'available', 20000);
      await button(page, BIG, 'download').waitFor({ timeout: 5000 });
      await waitState(page2, BIG, 'available', 5000);
      const c = await d.card(BIG);
      assert.equal(c.downloaded, false, `the download finished before the cancel: ${JSON.stringify(c)}`);
      assert.equal(fs.existsSync(root(BIG)), false, `left after cancel: ${h.listFiles(root(BIG)).join(', ')}`);
      assert.equal(await card(page, BIG).locator('.progress').count(), 0, 'no progress bar after cancel');
    });

    await t.test('download → installed → Play; the other tab and a reload agree', async () => {
      await page.bringToFront();
      await button(page, BIG, 'download').click();
      await page.waitForFunction((id) => {
        const p = document.querySelector(`.card[data-game-id="${id}"] .progress`);
        return p && p.value > 0;
      }, BIG, { timeout: 15000 * h.T, polling: 50 });
      await shot(page, 'downloading');
      await waitState(page, BIG, 'installed', 90000);
      await button(page, BIG, 'play').waitFor({ timeout: 5000 });
      assert.deepEqual(await actionsOf(page, BIG), ['play', 'uninstall', 'verify', 'repair']);
      assert.ok(fs.existsSync(root(BIG, 'local', 'bin', 'play.sh')));
      assert.ok(fs.existsSync(root(BIG, 'local', BIG, 'data')));
      await shot(page, 'installed');
      await waitState(page2, BIG, 'installed', 5000);
      await page2.bringToFront();
      await button(page2, BIG, 'play').click();
      await h.until('the marker file of play.sh', () => fs.existsSync(marker), 10000);
      await page2.reload();
      await waitState(page2, BIG, 'installed', 10000);
      await button(page2, BIG, 'play').waitFor({ timeout: 5000 });
    });

    await t.test('an install that fails shows its error on the card', async () => {
      await page.bringToFront();
      await button(page, 'broken', 'download').click();
      const err = card(page, 'broken').locator('.error');
      await err.waitFor({ timeout: 30000 * h.T });
      await waitState(page, 'broken', 'downloaded', 10000);
      assert.ok((await err.textContent()).trim().length > 0);
      assert.equal(await err.locator('details').count(), 1, 'the error has its detail');
      const apiCard = await d.card('broken');
      assert.equal(apiCard.error?.action, 'install', JSON.stringify(apiCard.error));
      assert.ok(!(await actionsOf(page, 'broken')).includes('play'));
      await err.locator('details summary').click();
      await shot(page, 'card-error');
      await card(page2, 'broken').locator('.error').waitFor({ timeout: 5000 });
    });

    await t.test('Remove files asks first; No keeps, Yes removes', async () => {
      assert.deepEqual(await actionsOf(page, 'broken'), ['install', 'remove', 'verify', 'repair']);
      await button(page, 'broken', 'remove').click();
      await card(page, 'broken').locator('[data-confirm=no]').click();
      await button(page, 'broken', 'remove').waitFor({ timeout: 5000 });
      assert.ok(fs.existsSync(root('broken', 'version.ini')));
      await button(page, 'broken', 'remove').click();
      await card(page, 'broken').locator('[data-confirm=yes]').click();
      await waitState(page, 'broken', 'available', 20000);
      assert.equal(fs.existsSync(root('broken')), false, 'the game root is gone');
      // Starting a new operation cleared the error.
      assert.equal(await card(page, 'broken').locator('.error').count(), 0);
    });

    await t.test('no button for what cannot succeed; the API refuses it from the page', async () => {
      // Installed: no Remove, no Download, no Install.
      const actions = await actionsOf(page, BIG);
      for (const a of ['remove', 'download', 'install', 'cancel']) assert.ok(!actions.includes(a), `${a} shown: ${actions}`);
      const refused = await page.evaluate(async (id) => {
        const r = await fetch(`/api/games/${id}/remove`, { method: 'POST' });
        return { status: r.status, body: await r.json() };
      }, BIG);
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'refused');
      assert.ok(fs.existsSync(root(BIG, 'local')));
    });

    await t.test('Uninstall asks first, then keeps the download; Remove files deletes it', async () => {
      // A tab in the background gets few animation frames: Playwright's
      // click waits for them.
      await page.bringToFront();
      await button(page, BIG, 'uninstall').click();
      await card(page, BIG).locator('[data-confirm=no]').click();
      await button(page, BIG, 'uninstall').waitFor({ timeout: 5000 });
      assert.ok(fs.existsSync(root(BIG, 'local')));
      await button(page, BIG, 'uninstall').click();
      await card(page, BIG).locator('[data-confirm=yes]').click();
      await waitState(page, BIG, 'downloaded', 30000);
      assert.equal(fs.existsSync(root(BIG, 'local')), false);
      assert.ok(fs.existsSync(root(BIG, 'version.ini')));
      assert.deepEqual(await actionsOf(page, BIG), ['install', 'remove', 'verify', 'repair']);
      await waitState(page2, BIG, 'downloaded', 5000);
      await page2.bringToFront();
      await button(page2, BIG, 'remove').click();
      await card(page2, BIG).locator('[data-confirm=yes]').click();
      await waitState(page, BIG, 'available', 30000);
      assert.equal(fs.existsSync(root(BIG)), false);
    });

    await t.test('a newer version on the peer: Update available, Update installs it', async () => {
      await page.bringToFront();
      await button(page, 'alpha', 'download').click();
      await waitState(page, 'alpha', 'installed', 30000);
      assert.equal(fs.readFileSync(root('alpha', 'local/data/level.txt'), 'utf8'), 'version one\n');
      // The seeder gets 2.0 while it runs (its monitor sees the change; the
      // daemon re-lists the peer's games every few seconds).
      env.makeGame(seedGames, { id: 'alpha', version: '2.0', files: {
        'bin/play.sh': env.playScript(markerAlpha), 'data/level.txt': 'version two\n' } });
      await waitState(page, 'alpha', 'update_available', 30000);
      await button(page, 'alpha', 'update').waitFor({ timeout: 5000 });
      assert.match(await card(page, 'alpha').locator('.version').textContent(), /1\.0.*2\.0/);
      await shot(page, 'update-available');
      await button(page, 'alpha', 'update').click();
      await h.until('alpha 2.0 installed', async () => (await d.card('alpha')).local_version === '2.0' &&
        (await d.card('alpha')).state === 'installed', 30000);
      await waitState(page, 'alpha', 'installed', 10000);
      assert.equal(fs.readFileSync(root('alpha', 'local/data/level.txt'), 'utf8'), 'version two\n');
      assert.equal(fs.readFileSync(root('alpha', 'version.ini'), 'utf8').trim(), '2.0');
      await button(page, 'alpha', 'play').click();
      await h.until('alpha played', () => fs.existsSync(markerAlpha), 10000);
    });

    await t.test('search and filter', async () => {
      await page.fill('#search', 'alpha');
      assert.equal(await card(page, 'alpha').isVisible(), true);
      assert.equal(await card(page, BIG).isVisible(), false);
      await page.fill('#search', '');
      await page.selectOption('#filter', 'installed');
      assert.equal(await card(page, 'alpha').isVisible(), true);
      assert.equal(await card(page, BIG).isVisible(), false);
      await page.selectOption('#filter', 'available');
      assert.equal(await card(page, 'alpha').isVisible(), false);
      assert.equal(await card(page, BIG).isVisible(), true);
      await page.selectOption('#filter', 'all');
    });

    await t.test('settings: a bad game directory is refused, a new name is saved', async () => {
      await page.bringToFront();
      const before = await d.ok('GET', '/api/settings');
      await page.fill('#game-dir', 'relative/games');
      await page.locator('#game-dir-check.bad').waitFor({ timeout: 5000 * h.T });
      await page.click('#save-settings');
      await page.locator('#settings-message.bad').waitFor({ timeout: 5000 * h.T });
      assert.match(await page.locator('#settings-message').textContent(), /absolute/);
      assert.deepEqual(await d.ok('GET', '/api/settings'), before);
      await page.fill('#game-dir', gameDir);
      await page.fill('#name', 'browser-box');
      await page.click('#save-settings');
      await page.locator('#settings-message.ok').waitFor({ timeout: 10000 * h.T });
      const after = await d.ok('GET', '/api/settings');
      assert.equal((after.settings ?? after).name, 'browser-box');
      assert.equal((after.settings ?? after).game_dir, gameDir);
      assert.equal(JSON.parse(fs.readFileSync(env.path('config.json'), 'utf8')).name, 'browser-box');
      await page.locator('#settings').scrollIntoViewIfNeeded();
      // The version of the daemon and the UDP address peers reach it on.
      const listen = (await d.ok('GET', '/api/state')).runtime.listen;
      await h.until('about line', async () => (await page.locator('#about').textContent()) ===
        `Lanspread ${h.daemonVersion()} \u00b7 peers reach this one on UDP ${listen}`, 10000);
      await shot(page, 'settings');
      // The runtime came back with the peer and the installed game.
      await waitState(page, 'alpha', 'installed', 20000);
      await page.locator(`#peers .peer[data-peer-id="${seeder.peerId}"][data-status="connected"]`)
        .waitFor({ timeout: 20000 * h.T });
    });

    await t.test('no script errors and no unexpected refusals in the pages', () => {
      // Expected: the key-less fetches (401), the refused remove (409), the
      // bad game directory (400 on save and on its check).
      const expected = [/^401 (GET \/api\/state|POST \/api\/games\/big0001\/download)$/,
        /^409 POST \/api\/games\/big0001\/remove$/, /^400 PUT \/api\/settings$/];
      assert.deepEqual(realProblems(page, expected), []);
      assert.deepEqual(realProblems(page2), []);
    });
  });
});

// ---------------------------------------------------------------------------

// The payload of a game root: its files without local/ and the names that
// start with a dot (journal, chunk map, install markers), each with its
// SHA-256.
function payload(root) {
  return Object.fromEntries(h.listFiles(root)
    .filter((f) => !f.startsWith('local/') && !f.split('/').some((c) => c.startsWith('.')))
    .map((f) => [f, h.sha256File(path.join(root, f))]));
}

// Every file under dir with its size, mode, mtime and SHA-256.
function treeState(dir) {
  return Object.fromEntries(h.listFiles(dir).map((f) => {
    const st = fs.statSync(path.join(dir, f));
    return [f, `${st.size} ${st.mode.toString(8)} ${st.mtimeMs} ${h.sha256File(path.join(dir, f))}`];
  }));
}

// Waits until the page shows a running download of id with bytes > 0.
async function waitBytes(page, id) {
  await page.waitForFunction((gid) => {
    const p = document.querySelector(`.card[data-game-id="${gid}"][data-state="downloading"] .progress`);
    return p && p.value > 0;
  }, id, { timeout: 20000 * h.T, polling: 50 });
}

// The label of a card's button.
const labelOf = async (page, id, action) => (await button(page, id, action).textContent()).trim();

test('pause, resume, discard, verify and repair through the page, on a rate-limited link', { timeout: 300000 }, async (t) => {
  await h.withEnv('browser-resume', async (env) => {
    const ONE = 'big0001', TWO = 'big0002';
    const RATE = 16 << 20; // bytes/s: a 96 MiB game takes about 6 s
    const cat = env.writeCatalog([
      { id: ONE, name: 'Paused Game', description: 'Paused, resumed, verified and repaired' },
      { id: TWO, name: 'Discarded Game', description: 'Paused and discarded' },
    ]);
    const seedGames = env.mkdir('seeder', 'games');
    env.genGame(seedGames, { id: ONE, size: '96M', archives: 3 });
    env.genGame(seedGames, { id: TWO, size: '64M', archives: 2 });
    const seeder = await env.startSeeder({ gameDir: seedGames, catalog: cat });
    const relay = await env.startRelay({ target: seeder.addr, rate: RATE });
    const gameDir = env.mkdir('games');
    const d = await env.startDaemon({ catalog: cat, gameDir, peers: [relay.addr] });
    const s = d.events();
    env.streams.push(s);
    await s.waitFor('snapshot');
    const { context } = await launchBrowser(env);
    await d.login(context);
    const page = await openPage(context, d.url);
    const root = (id, ...rest) => path.join(gameDir, id, ...rest);
    const seedPayload = payload(path.join(seedGames, ONE));
    for (const id of [ONE, TWO]) await waitState(page, id, 'available', 20000);

    let pausedAt;
    await t.test('Pause keeps the partial download: "Paused N%", Resume and Discard', async () => {
      const mark = s.mark();
      await button(page, ONE, 'download').click();
      await waitBytes(page, ONE);
      assert.deepEqual(await actionsOf(page, ONE), ['pause', 'cancel']);
      assert.equal(await labelOf(page, ONE, 'pause'), 'Pause');
      assert.equal(await labelOf(page, ONE, 'cancel'), 'Cancel');
      await button(page, ONE, 'pause').click();
      const paused = await s.waitFor('game-download-paused', (x) => x.id === ONE, 20000, { since: mark });
      assert.equal(s.events.slice(mark).some((e) => e.event === 'game-download-finished'), false,
        'the download finished before the pause: lower the rate');
      await waitState(page, ONE, 'paused', 10000);
      const c = await d.card(ONE);
      assert.equal(c.state, 'paused');
      assert.equal(c.downloaded, false);
      assert.equal(c.operation, null);
      assert.equal(c.progress, null);
      assert.equal(c.download?.state, 'paused', JSON.stringify(c.download));
      assert.ok(c.download.bytes > 0 && c.download.bytes < c.download.total_bytes, JSON.stringify(c.download));
      assert.equal(c.download.bytes, paused.data.bytes);
      const pct = Math.floor((100 * c.download.bytes) / c.download.total_bytes);
      assert.equal((await card(page, ONE).locator('.state').textContent()).trim(), `Paused ${pct}%`);
      assert.match(await card(page, ONE).locator('.progress-text').textContent(), new RegExp(`^Paused · ${pct}%`));
      assert.deepEqual(await actionsOf(page, ONE), ['download', 'cancel']);
      assert.equal(await labelOf(page, ONE, 'download'), 'Resume');
      assert.equal(await labelOf(page, ONE, 'cancel'), 'Discard');
      // The root keeps the partial files, and is no downloaded game.
      const files = h.listFiles(root(ONE));
      assert.equal(files.includes('version.ini'), false, `version.ini after a pause: ${files}`);
      assert.ok(files.includes('.lanspread.download'), `no journal after a pause: ${files}`);
      assert.ok(files.some((f) => f.endsWith('.eti')), `no partial payload after a pause: ${files}`);
      pausedAt = c.download.bytes;
      await shot(page, 'paused');
    });

    await t.test('Resume fetches the rest; the payload matches the seeder byte for byte', async () => {
      const mark = s.mark();
      await button(page, ONE, 'download').click();
      const begin = await s.waitFor('game-download-begin', (x) => x.id === ONE, 20000, { since: mark });
      const began = Date.now();
      assert.equal(begin.data.resumed, true, JSON.stringify(begin.data));
      assert.ok(begin.data.kept_bytes > 0 && begin.data.kept_bytes <= pausedAt, JSON.stringify(begin.data));
      const done = await s.waitFor('game-download-finished', (x) => x.id === ONE, 60000, { since: mark });
      assert.ok(done.data.bytes_fetched < done.data.bytes, `a resume fetched everything: ${JSON.stringify(done.data)}`);
      const rate = done.data.bytes_fetched / ((Date.now() - began) / 1000);
      assert.ok(rate < RATE * 1.5, `the link was not shaped: ${Math.round(rate)} B/s`);
      await waitState(page, ONE, 'installed', 60000);
      const c = await d.card(ONE);
      assert.equal(c.downloaded, true);
      assert.equal(c.download, null);
      assert.deepEqual(payload(root(ONE)), seedPayload);
      assert.equal(h.listFiles(root(ONE)).some((f) => f.startsWith('.lanspread.')), false,
        `journal or chunk map left: ${h.listFiles(root(ONE))}`);
    });

    await t.test('Verify reports a flipped byte; Repair fetches its chunk; local/ is untouched', async () => {
      assert.deepEqual(await actionsOf(page, ONE), ['uninstall', 'verify', 'repair']);
      assert.equal(await labelOf(page, ONE, 'verify'), 'Verify');
      assert.equal(await labelOf(page, ONE, 'repair'), 'Repair');
      const local = treeState(root(ONE, 'local'));
      assert.ok(Object.keys(local).length > 0, 'nothing installed');
      const victim = Object.keys(seedPayload).filter((f) => f.endsWith('.eti')).sort()[1];
      const file = root(ONE, victim);
      const at = Math.floor(fs.statSync(file).size / 2);
      const fd = fs.openSync(file, 'r+');
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, at);
      b[0] ^= 0xff;
      fs.writeSync(fd, b, 0, 1, at);
      fs.closeSync(fd);

      await button(page, ONE, 'verify').click();
      const bad = card(page, ONE).locator('.verify[data-ok="false"]');
      await bad.waitFor({ timeout: 60000 * h.T });
      assert.equal((await bad.textContent()).trim(), 'Verify found 1 bad chunk in 1 file: Repair fetches them.');
      const v = (await d.card(ONE)).verify;
      assert.equal(v.bad_chunks, 1, JSON.stringify(v));
      assert.equal(v.files_bad, 1);
      assert.deepEqual(v.files.map((f) => f.path), [victim]);
      await waitState(page, ONE, 'installed', 10000);
      await shot(page, 'verify-bad');

      const mark = s.mark();
      await button(page, ONE, 'repair').click();
      const repaired = card(page, ONE).locator('.verify[data-ok="true"]');
      await repaired.waitFor({ timeout: 60000 * h.T });
      assert.match(await repaired.textContent(), /^Repaired: 1\.0 MiB fetched again from the peers, 95\.0 MiB was intact\.$/);
      const done = await s.waitFor('game-download-finished', (x) => x.id === ONE, 5000, { since: mark });
      assert.equal(done.data.repair, true);
      // The bad chunk, and version.ini, which every download commits last.
      const sentinel = fs.statSync(root(ONE, 'version.ini')).size;
      assert.equal(done.data.bytes_fetched, (1 << 20) + sentinel, JSON.stringify(done.data));
      assert.equal(s.events.slice(mark).some((e) => e.event === 'game-install-begin'), false,
        'a repair reinstalled the game');
      await waitState(page, ONE, 'installed', 10000);
      assert.deepEqual(payload(root(ONE)), seedPayload);
      assert.deepEqual(treeState(root(ONE, 'local')), local, 'the repair changed local/');

      await button(page, ONE, 'verify').click();
      const clean = card(page, ONE).locator('.verify[data-ok="true"]', { hasText: /^Verified/ });
      await clean.waitFor({ timeout: 60000 * h.T });
      const chunks = (await d.card(ONE)).verify.chunks;
      assert.ok(chunks >= 96, `chunks ${chunks}`);
      assert.equal((await clean.textContent()).trim(), `Verified: all ${chunks} chunks OK.`);
      await shot(page, 'verified');
    });

    await t.test('a second pause, then Discard leaves the root as a cancel leaves it', async () => {
      const mark = s.mark();
      await button(page, TWO, 'download').click();
      await waitBytes(page, TWO);
      await button(page, TWO, 'pause').click();
      await waitState(page, TWO, 'paused', 20000);
      assert.equal(s.events.slice(mark).some((e) => e.event === 'game-download-finished'), false,
        'the download finished before the pause: lower the rate');
      assert.match((await card(page, TWO).locator('.state').textContent()).trim(), /^Paused \d+%$/);
      assert.ok(h.exists(root(TWO, '.lanspread.download')), `${h.listFiles(root(TWO))}`);
      assert.equal(await labelOf(page, TWO, 'cancel'), 'Discard');
      await button(page, TWO, 'cancel').click();
      await s.waitFor('game-download-cancelled', (x) => x.id === TWO, 20000, { since: mark });
      await waitState(page, TWO, 'available', 20000);
      assert.deepEqual(await actionsOf(page, TWO), ['download']);
      assert.equal(await card(page, TWO).locator('.progress').count(), 0);
      const c = await d.card(TWO);
      assert.equal(c.download, null);
      assert.equal(c.downloaded, false);
      assert.equal(h.exists(root(TWO)), false, `left after Discard: ${h.listFiles(root(TWO)).join(', ')}`);
    });

    await t.test('no script errors and no refusals in the page', () => {
      assert.deepEqual(realProblems(page), []);
    });
  });
});

// ---------------------------------------------------------------------------

// Trust (docs/DEPLOYMENT.md, "Pinning versions"): the card names who
// offers a version before anyone updates to it, marks a version only peers
// new to this session offer and a pinned one, and after a pin refusal says
// which peer's list was refused and offers no Update to that version; the
// honest copy of the pinned version, once a peer has it, still downloads.
test('offers: who offers a version, new peers only, pinned, a refused list, the honest download', { timeout: 240000 }, async (t) => {
  await h.withEnv('browser-offers', async (env) => {
    const games = (pins) => [
      { id: 'guard', name: 'Guarded Game', description: 'Its 2.0 is pinned', ...(pins ? { versions: pins } : {}) },
      { id: 'fresh', name: 'Fresh Game', description: 'Not pinned' },
    ];
    // The organiser's step: the digest of the real 2.0, made aside.
    const stage = env.mkdir('stage', 'games');
    env.makeGame(stage, { id: 'guard', version: '2.0', files: { 'data/level.txt': 'honest two\n' } });
    const organiser = await env.startSeeder({ name: 'organiser', gameDir: stage, catalog: env.writeCatalog(games(), 'plain.json') });
    const digest = (await organiser.command('manifest-digest guard')).digest;
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    await organiser.stop();
    const cat = env.writeCatalog(games({ '2.0': digest }));

    // evil: another 2.0 of guard and an unpinned 1.1 of fresh.
    const evilGames = env.mkdir('evil', 'games');
    env.makeGame(evilGames, { id: 'guard', version: '2.0', files: { 'data/level.txt': 'forged two\n' } });
    env.makeGame(evilGames, { id: 'fresh', version: '1.1', files: { 'data/level.txt': 'fresh 1.1\n' } });
    const evil = await env.startSeeder({ name: 'evil', gameDir: evilGames, catalog: cat });
    // the honest seeder: fresh 1.0 only, for now.
    const seedGames = env.mkdir('seeder', 'games');
    env.makeGame(seedGames, { id: 'fresh', version: '1.0', files: { 'data/level.txt': 'fresh 1.0\n' } });
    const seeder = await env.startSeeder({ name: 'seeder', gameDir: seedGames, catalog: cat });
    // here: both games in 1.0, downloaded.
    const gameDir = env.mkdir('games');
    env.makeGame(gameDir, { id: 'guard', version: '1.0', files: { 'data/level.txt': 'one\n' } });
    env.makeGame(gameDir, { id: 'fresh', version: '1.0', files: { 'data/level.txt': 'fresh 1.0\n' } });
    const d = await env.startDaemon({ catalog: cat, gameDir, peers: [evil.addr, seeder.addr] });
    const { context } = await launchBrowser(env);
    await d.login(context);
    const page = await openPage(context, d.url);
    const offersText = async (id) => (await card(page, id).locator('.offers-slot').innerText()).replace(/\s+/g, ' ');

    await t.test('an unpinned newer version from a peer first seen now: "(new peers only)" and who offers it', async () => {
      await h.until('evil 1.1 of fresh on the card', async () => (await d.card('fresh')).latest_version === '1.1', 20000);
      await card(page, 'fresh').locator('.offered-by').waitFor({ timeout: 10000 * h.T });
      assert.match(await card(page, 'fresh').locator('.version').textContent(), /^1\.0 → 1\.1 \(new peers only\)$/);
      const line = await card(page, 'fresh').locator('.offered-by').innerText();
      assert.equal(line, `Offered: 1.1 (new peers only) from evil (${evil.peerId.slice(0, 8)}…)`);
      assert.equal(await card(page, 'fresh').locator('.offered-by').isVisible(), true);
      // The other version is one click away, with its peer too.
      await card(page, 'fresh').locator('.other-offers summary').click();
      assert.match(await card(page, 'fresh').locator('.other-offers li').innerText(),
        new RegExp(`^1\\.0 \\(new peers only\\) from seeder \\(${seeder.peerId.slice(0, 8)}…\\)$`));
      assert.ok((await actionsOf(page, 'fresh')).includes('update'));
    });

    await t.test('a pinned version: "(pinned)"; Update refused by the pin leaves no Update to it', async () => {
      await h.until('guard 2.0 offered', async () => (await d.card('guard')).latest_version === '2.0', 20000);
      await button(page, 'guard', 'update').waitFor({ timeout: 10000 * h.T });
      assert.match(await card(page, 'guard').locator('.version').textContent(), /^1\.0 → 2\.0 \(pinned\)$/);
      assert.equal(await card(page, 'guard').locator('.offered-by').innerText(),
        `Offered: 2.0 (pinned, new peers only) from evil (${evil.peerId.slice(0, 8)}…)`);
      const before = treeState(path.join(gameDir, 'guard'));
      await shot(page, 'offers-before-refusal');
      await button(page, 'guard', 'update').click();
      const refusal = card(page, 'guard').locator('.refused-offer');
      await refusal.waitFor({ timeout: 20000 * h.T });
      assert.equal(await refusal.innerText(),
        `2.0 from evil (${evil.peerId.slice(0, 8)}…) refused: its file list is not the pinned one`);
      await waitState(page, 'guard', 'downloaded', 10000);
      await h.until('no Update for guard', async () => !(await actionsOf(page, 'guard')).includes('update'), 10000);
      assert.equal(await card(page, 'guard').locator('.version').textContent(), '1.0');
      assert.equal(await card(page, 'guard').locator('.offered-by').count(), 0);
      assert.match(await card(page, 'guard').locator('.error-message').last().innerText(), /not the ones the catalog names/);
      const c = await d.card('guard');
      assert.equal(c.latest_version, '1.0');
      assert.equal(c.update_available, false);
      assert.deepEqual(c.offers.map((o) => o.version), []);
      assert.equal(c.refused_offers.length, 1);
      assert.equal(c.refused_offers[0].code, 'LS_EPIN');
      assert.equal(c.refused_offers[0].peer_id, evil.peerId);
      assert.match(c.refused_offers[0].error, /guard 2\.0/);
      assert.deepEqual(treeState(path.join(gameDir, 'guard')), before, 'nothing written');
      // It stays refused: the next re-listings of evil change nothing.
      await h.sleep(6000);
      assert.ok(!(await actionsOf(page, 'guard')).includes('update'));
      await shot(page, 'offers-refused');
    });

    await t.test('the honest 2.0 on a peer: pinned, offered by it alone, and it downloads', async () => {
      const tmp = path.join(seedGames, '.guard.tmp'); // not a catalog id: the seeder ignores it
      fs.cpSync(path.join(stage, 'guard'), tmp, { recursive: true });
      fs.renameSync(tmp, path.join(seedGames, 'guard'));
      await button(page, 'guard', 'update').waitFor({ timeout: 30000 * h.T });
      assert.equal(await card(page, 'guard').locator('.offered-by').innerText(),
        `Offered: 2.0 (pinned, new peers only) from seeder (${seeder.peerId.slice(0, 8)}…)`);
      assert.equal(await card(page, 'guard').locator('.refused-offer').count(), 1); // evil's, still
      await button(page, 'guard', 'update').click();
      await h.until('guard 2.0 here', async () => (await d.card('guard')).local_version === '2.0', 30000);
      assert.deepEqual(payload(path.join(gameDir, 'guard')), payload(path.join(seedGames, 'guard')));
    });

    await t.test('no script errors and no unexpected refusals in the page', () => {
      assert.deepEqual(realProblems(page, [/^409 POST \/api\/games\/guard\/update$/]), []);
    });
  });
});

test('first start: the setup screen, then the library', { timeout: 120000 }, async () => {
  await h.withEnv('browser-setup', async (env) => {
    const cat = env.writeCatalog([{ id: 'alpha', name: 'Alpha Arena' }]);
    const seedGames = env.mkdir('seeder', 'games');
    env.makeGame(seedGames, { id: 'alpha', files: { 'readme.txt': 'hi\n' } });
    const seeder = await env.startSeeder({ gameDir: seedGames, catalog: cat });
    const d = await env.startDaemon({ catalog: cat, peers: [seeder.addr] });
    const { context } = await launchBrowser(env);
    await d.login(context);
    const page = await openPage(context, d.url);
    await page.locator('#setup').waitFor({ timeout: 10000 * h.T });
    assert.equal(await page.locator('#library-panel').isVisible(), false);
    const wanted = env.path('my games');
    await page.fill('#setup-game-dir', wanted);
    // The page proposes to create its suggested directory: untick that, and
    // type once more so that the check runs with the box as it is now.
    await page.uncheck('#setup-create');
    await page.press('#setup-game-dir', 'Space');
    await page.press('#setup-game-dir', 'Backspace');
    await page.locator('#setup-game-dir-check.bad').waitFor({ timeout: 5000 * h.T });
    assert.match(await page.locator('#setup-game-dir-check').textContent(), /does not exist/);
    await shot(page, 'setup');
    // Without "create it": refused, nothing made.
    await page.click('#setup-save');
    await page.locator('#setup-message.bad').waitFor({ timeout: 5000 * h.T });
    assert.equal(fs.existsSync(wanted), false);
    assert.equal(await page.locator('#setup').isVisible(), true);
    await page.check('#setup-create');
    await page.press('#setup-game-dir', 'Space');
    await page.press('#setup-game-dir', 'Backspace');
    await page.locator('#setup-game-dir-check.ok').waitFor({ timeout: 5000 * h.T });
    assert.equal(fs.existsSync(wanted), false, 'the check created the directory');
    await page.click('#setup-save');
    await page.locator('#setup').waitFor({ state: 'hidden', timeout: 10000 * h.T });
    assert.ok(fs.statSync(wanted).isDirectory());
    await waitState(page, 'alpha', 'available', 20000);
    assert.equal(JSON.parse(fs.readFileSync(env.path('config.json'), 'utf8')).game_dir, wanted);
    assert.deepEqual(realProblems(page, [/^400 PUT \/api\/settings$/]), []);
  });
});

// ---------------------------------------------------------------------------

test('scripts/demo --ui: download a game through the page, Ctrl-C cleans up', { timeout: 180000 }, async (t) => {
  const demo = path.join(h.SOURCE_DIR, 'scripts', 'demo');
  if (!/--ui/.test(fs.readFileSync(demo, 'utf8'))) {
    t.skip('scripts/demo has no --ui mode yet');
    return;
  }
  await h.withEnv('demo-ui', async (env) => {
    const tmp = env.mkdir('demo-tmp');
    const p = env.spawn('demo', demo, ['--ui', '--no-browser', '--size', '16M'], {
      env: { LS_BUILD_DIR: h.BINARY_DIR, TMPDIR: tmp }, group: true, expectCode: 130,
    });
    const { line } = await p.waitLine((l) => /Lanspread UI: http:\/\/\S+\/$/.test(l), 60000, 0,
      'the "Lanspread UI: URL" line');
    const url = line.slice(line.indexOf('http'));
    const { line: login } = await p.waitLine((l) => /^Log in once: http:\/\/\S+$/.test(l), 10000, 0,
      'the "Log in once: URL" line');
    const { context } = await launchBrowser(env);
    const loginPage = await context.newPage();
    await loginPage.goto(login.slice(login.indexOf('http')));
    await loginPage.close();
    const page = await openPage(context, url);
    await waitState(page, 'game0001', 'available', 30000);
    await button(page, 'game0001', 'download').click();
    await waitState(page, 'game0001', 'installed', 60000);
    assert.ok((await actionsOf(page, 'game0001')).includes('uninstall'));
    await page.close();
    // Ctrl-C: SIGINT to the demo's process group, as a terminal does.
    p.signal('SIGINT');
    const exit = await h.withTimeout(p.exited, 30000 * h.T, `the demo to stop after Ctrl-C\n${p.describe()}`);
    assert.ok(exit.code === 0 || exit.code === 130, `demo exit ${JSON.stringify(exit)}\n${p.describe()}`);
    p.expectCode = exit.code;
    assert.deepEqual(fs.readdirSync(tmp), [], 'the demo left files in its TMPDIR');
    // Nothing answers on the UI address any more, and no process of the demo is left.
    await assert.rejects(h.httpRequest({ port: Number(new URL(url).port), path: '/', timeoutMs: 2000 }));
    const left = fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x)).filter((pid) => {
      try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(tmp); } catch { return false; }
    });
    assert.deepEqual(left, [], 'processes of the demo still running');
  });
});
