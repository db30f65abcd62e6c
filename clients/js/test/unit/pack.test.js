// The package as a user gets it: `npm pack`, install the tarball into an empty project
// (offline: the package has no runtime dependency), import it by name, and find the
// declarations and README in it — and nothing of the tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('npm pack gives a package that installs and imports by name', (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-client-pack-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], ROOT));
  const files = packed[0].files.map((f) => f.path).sort();
  assert.ok(files.includes('src/index.js') && files.includes('src/index.d.ts') && files.includes('README.md'), files.join());
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), files.join());

  const app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  npm(['install', '--offline', '--no-audit', '--no-fund', path.join(tmp, packed[0].filename)], app);
  const probe = `
    import * as sb from '@switchboard/client';
    import pkg from '@switchboard/client/package.json' with { type: 'json' };
    const c = new sb.SwitchboardClient({ url: 'http://127.0.0.1:9', token: 'x', WebSocket: class {} });
    console.log(JSON.stringify({ names: Object.keys(sb).sort(), types: pkg.types, state: c.state }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: app, encoding: 'utf8' }));
  for (const name of ['SwitchboardClient', 'Rest', 'ApiError', 'ClientError', 'backoffDelay', 'decodeToken', 'newClientId']) {
    assert.ok(out.names.includes(name), `${name} missing from ${out.names}`);
  }
  assert.equal(out.state, 'stopped');
  assert.ok(fs.existsSync(path.join(app, 'node_modules/@switchboard/client', out.types)));
});
