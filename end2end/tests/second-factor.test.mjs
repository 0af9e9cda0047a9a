// Two-step verification in the browser: an owner sets up an authenticator app (the code is
// computed here from the key the page shows), signs in again with a code, then with a recovery
// code, which works only once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { PASSWORD, hydrated, openBrowser, signInAsNewOwner } from '../support.mjs';

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 key, `offset` steps from now. */
function totp(base32, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offset));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

async function signInWithPassword(page, email) {
  await page.goto(`${process.env.BASE_URL}/login?method=password`);
  await hydrated(page);
  await page.getByLabel('Work email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/login\?step=code/);
  await hydrated(page);
}

async function enterCode(page, code) {
  await page.getByLabel('Authentication code').fill(code);
  await page.getByRole('button', { name: 'Verify' }).click();
}

async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login\?signed_out=1/);
}

test('an owner sets up an authenticator app and signs in with a code, then a recovery code', async () => {
  const { context, page, errors } = await openBrowser();
  try {
    const email = 'tess@totp.example';
    await signInAsNewOwner(page, 'TOTP Corp', email);
    await page.goto(`${process.env.BASE_URL}/settings?tab=security`);
    await hydrated(page);
    await page.getByRole('button', { name: 'Set up authenticator app' }).click();
    const key = await page.getByTestId('totp-secret').inputValue();
    assert.match(key, /^[A-Z2-7]{32}$/);
    await page.getByRole('img', { name: 'QR code for your authenticator app' }).waitFor();
    await page.getByLabel('Code from the app').fill(totp(key));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByTestId('recovery-codes').getByRole('listitem').first().waitFor();
    const codes = (await page.getByTestId('recovery-codes').getByRole('listitem').allTextContents()).map((c) => c.trim());
    assert.equal(codes.length, 10);
    await page.getByTestId('two-step').getByText('Authenticator app', { exact: true }).waitFor();

    // Password, then the app's next code.
    await signOut(page);
    await signInWithPassword(page, email);
    await enterCode(page, totp(key, 1));
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();

    // Password, then a recovery code; the same code a second time is refused.
    await signOut(page);
    await signInWithPassword(page, email);
    await enterCode(page, codes[0]);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await signOut(page);
    await signInWithPassword(page, email);
    await enterCode(page, codes[0]);
    await page.getByText('That code is not right').waitFor();

    const unexpected = errors.filter((e) => !e.includes('status of 422'));
    assert.deepEqual(unexpected, [], 'no console errors besides the refused code');
  } finally {
    await context.close();
  }
});
