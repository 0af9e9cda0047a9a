// Helpers for the end-to-end tests: Debian's Chromium through playwright-core, and the
// `mandate` CLI against the server's database.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const BASE_URL = process.env.BASE_URL;
export const PASSWORD = 'correct horse battery staple';

/** Runs a `mandate` subcommand and parses the JSON it prints. */
export function cli(...args) {
  const out = execFileSync(process.env.MANDATE_BIN, args, { env: process.env, encoding: 'utf8' });
  return JSON.parse(out);
}

/** A fresh headless Chromium with a page that records console errors and page errors. */
export async function openBrowser() {
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'mandate-e2e-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  page.on('pageerror', (err) => errors.push(err.message));
  return { context, page, errors };
}

/** Waits until the WebAssembly bundle has hydrated the page (interactive controls work). */
export async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
}

/** Creates an organization with the CLI and signs its new owner in through the setup link. */
export async function signInAsNewOwner(page, orgName, email) {
  const org = cli('org', 'create', '--name', orgName, '--admin-email', email);
  await page.goto(org.setup_url);
  await hydrated(page);
  await page.getByLabel('Your name').fill('Owner of ' + orgName);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Repeat the password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Set password' }).click();
  await page.waitForURL(/\/login\?setup=done/);
  await hydrated(page);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  return org;
}

/** Form-encoded POST from the test itself (an agent or a resource server, not the browser). */
export async function postForm(path, params, headers = {}) {
  const res = await fetch(`${BASE_URL}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    srv.on('error', reject);
  });
}

/** Publishes a TXT record in the run's DNS server (end2end/dns.mjs). */
export function publishTxt(name, value) {
  const file = process.env.E2E_DNS_RECORDS;
  const records = JSON.parse(readFileSync(file, 'utf8'));
  records[name] = [value];
  writeFileSync(file, JSON.stringify(records));
}

/** Claims `domain` on the Connections page, publishes the TXT record it asks for, verifies it. */
export async function verifyDomainInPortal(page, domain) {
  await page.goto(`${BASE_URL}/connections`);
  await hydrated(page);
  await page.getByLabel('Add a domain').fill(domain);
  await page.getByRole('button', { name: 'Add domain' }).click();
  const row = page.locator(`li[data-domain="${domain}"]`);
  await row.getByText('unverified').waitFor();
  const name = (await row.getByTestId('txt-name').textContent()).trim();
  publishTxt(name, (await row.getByTestId('txt-value').textContent()).trim());
  await row.getByRole('button', { name: 'Verify' }).click();
  await row.getByText('verified', { exact: true }).waitFor();
  return name;
}
