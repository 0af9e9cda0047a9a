// The owner's first day: setup link → password → sign in → dashboard → invite an admin in the
// (hydrated) dialog → audit trail and integrity check → sign out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, PASSWORD, cli, hydrated, openBrowser } from '../support.mjs';

test('an owner sets up the organization, invites an admin and signs out', async () => {
  const org = cli('org', 'create', '--name', 'E2E Corp', '--admin-email', 'olivia@e2e.example', '--domain', 'e2e.example');
  assert.match(org.setup_url, /^http:\/\/127\.0\.0\.1:\d+\/setup\/mnd_inv_/);
  const { context, page, errors } = await openBrowser();
  try {
    // Setup link
    await page.goto(org.setup_url);
    await page.getByText('E2E Corp').waitFor();
    await hydrated(page);
    await page.getByLabel('Your name').fill('Olivia Owner');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Repeat the password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.waitForURL(/\/login\?setup=done/);
    await page.getByText('Your password is set').waitFor();
    assert.equal(await page.getByLabel('Work email').inputValue(), 'olivia@e2e.example');

    // A wrong password gets the generic message, inline.
    await hydrated(page);
    await page.getByLabel('Password').fill('not my password at all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Incorrect email or password.').waitFor();

    // Sign in
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal((await page.getByTestId('stat-admins').textContent()).trim(), '1');
    assert.equal((await page.getByTestId('stat-failed-sign-ins').textContent()).trim(), '1');
    assert.equal((await page.getByTestId('org-name').textContent()).trim(), 'E2E Corp');

    // Invite an admin through the dialog (only works once hydrated)
    await page.getByRole('link', { name: 'Settings' }).first().click();
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    await hydrated(page);
    await page.getByRole('button', { name: 'Invite admin' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByLabel('Email').fill('sam@e2e.example');
    await dialog.getByLabel(/^Approver/).check();
    await dialog.getByRole('button', { name: 'Create invitation link' }).click();
    const link = await dialog.getByTestId('invite-link').inputValue();
    assert.match(link, /\/setup\/mnd_inv_[A-Za-z0-9_-]{43}$/);
    await dialog.getByRole('button', { name: 'Done' }).click();
    await page.getByTestId('invitation-list').getByRole('button', { name: 'Withdraw the invitation of sam@e2e.example' }).waitFor();

    // The audit trail shows what happened, and its chain verifies
    await page.goto(`${BASE_URL}/audit`);
    await hydrated(page);
    await page.getByTestId('audit-rows').getByText('admin.invited').first().waitFor();
    await page.getByRole('button', { name: 'Verify integrity' }).click();
    await page.getByTestId('chain-status').getByText('Chain intact.').waitFor();

    // Sign out
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login\?signed_out=1/);
    const me = await page.request.get(`${BASE_URL}/auth/me`);
    assert.equal(me.status(), 401);
    await page.goto(`${BASE_URL}/`);
    await page.waitForURL(/\/login\?next=/);

    // The invited admin's link opens on the setup page with the right role
    await page.goto(link);
    await page.getByText('You are joining').waitFor();
    await page.getByText('Approver').waitFor();

    // The one failed request we caused on purpose (the wrong password) is the only error allowed.
    const unexpected = errors.filter((e) => !e.includes('status of 401 (Unauthorized)'));
    assert.deepEqual(unexpected, [], 'no console errors (CSP violations, hydration errors) on any page');
    assert.equal(errors.length - unexpected.length, 1);
  } finally {
    await context.close();
  }
});
