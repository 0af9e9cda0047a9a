// Runs the end-to-end tests: starts the release server on a fresh database and a free port,
// runs every end2end/tests/*.test.mjs with Node's test runner, then stops the server.
//
//   MANDATE_BIN=target/release/mandate node end2end/run.mjs
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const bin = path.resolve(root, process.env.MANDATE_BIN || 'target/release/mandate');
const baseDatabaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/mandate_test';
const server = baseDatabaseUrl.slice(0, baseDatabaseUrl.lastIndexOf('/'));
const databaseUrl = `${server}/mandate_e2e`;


const drop = spawnSync('psql', [`${server}/postgres`, '-qc', 'drop database if exists mandate_e2e with (force)'], { stdio: 'inherit' });
if (drop.status !== 0) {
  console.error('could not reset the mandate_e2e database');
  process.exit(1);
}

// The server runs as it should in production: the schema owner (DATABASE_URL's role) migrates,
// a runtime role that cannot alter the audit trail serves.
const role = spawnSync('psql', [`${server}/postgres`, '-qc',
  "do $$ begin create role mandate_app login; exception when duplicate_object then null; end $$"], { stdio: 'inherit' });
if (role.status !== 0) {
  console.error('could not create the runtime role mandate_app');
  process.exit(1);
}
const runtimeUrl = new URL(databaseUrl);
runtimeUrl.username = 'mandate_app';
runtimeUrl.password = '';
const canSignIn = spawnSync('psql', [new URL('/postgres', runtimeUrl).toString(), '-qtAc', 'select 1'], { stdio: 'ignore' });
if (canSignIn.status !== 0) {
  console.error('the runtime role mandate_app cannot sign in to PostgreSQL: run scripts/setup (it allows it for a local cluster it set up) or allow it in pg_hba.conf');
  process.exit(1);
}

const dnsRecords = path.join(mkdtempSync(path.join(os.tmpdir(), 'mandate-dns-')), 'records.json');
writeFileSync(dnsRecords, '{}');
const dns = spawn(process.execPath, [path.join(here, 'dns.mjs'), dnsRecords], { stdio: ['ignore', 'pipe', 'inherit'] });
const dnsPort = await new Promise((resolve, reject) => {
  dns.stdout.once('data', (data) => resolve(Number(String(data).trim())));
  dns.once('exit', () => reject(new Error('the test DNS server did not start')));
});

const port = await freePort();
const baseUrl = `http://127.0.0.1:${port}`;
const env = {
  ...process.env,
  DATABASE_URL: runtimeUrl.toString(),
  MANDATE_OWNER_DATABASE_URL: databaseUrl,
  MANDATE_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'mandate-state-')),
  LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
  MANDATE_PUBLIC_URL: baseUrl,
  RUST_LOG: process.env.RUST_LOG || 'warn',
  MANDATE_MASTER_KEY: process.env.MANDATE_MASTER_KEY || '42'.repeat(32),
  BASE_URL: baseUrl,
  MANDATE_BIN: bin,
  MANDATE_DNS_RESOLVER: `127.0.0.1:${dnsPort}`,
  // The test identity providers listen on this machine's loopback, which Mandate refuses to
  // connect to unless the operator allows it.
  MANDATE_OUTBOUND_ALLOW: '127.0.0.0/8',
  E2E_DNS_RECORDS: dnsRecords,
};
const app = spawn(bin, ['serve'], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
let exited = false;
app.on('exit', () => { exited = true; });

async function waitForHealth() {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error('the server exited during start-up');
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      if (res.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('the server did not become healthy within 60 s');
}

/** Runs PyPI scim2-tester against a fresh directory of a fresh organization on this server. */
function scimConformance() {
  const cli = (...args) => JSON.parse(spawnSync(bin, args, { cwd: root, env, encoding: 'utf8' }).stdout);
  const org = cli('org', 'create', '--name', 'SCIM conformance', '--admin-email', 'owner@scim-conformance.example');
  const directory = cli('directory', 'create', '--org', org.org_id, '--name', 'scim2-tester', '--provider', 'generic');
  const python = path.join(root, '.venv-scim', 'bin', 'python');
  console.log('\n==> SCIM 2.0 conformance (PyPI scim2-tester)');
  const run = spawnSync(python, [path.join(root, 'tests', 'scim', 'conformance.py')], {
    cwd: root,
    env: { ...env, SCIM_BASE_URL: directory.scim_base_url, SCIM_TOKEN: directory.bearer_token },
    stdio: 'inherit',
  });
  return run.status ?? 1;
}

let status = 1;
try {
  await waitForHealth();
  const files = readdirSync(path.join(here, 'tests')).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(here, 'tests', f));
  if (files.length === 0) throw new Error('no end-to-end tests found');
  const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: root, env, stdio: 'inherit' });
  status = result.status ?? 1;
  if (status === 0) status = scimConformance();
} catch (err) {
  console.error(err.message);
} finally {
  app.kill('SIGTERM');
  dns.kill('SIGTERM');
}
process.exit(status);
