// Connecting a directory in the portal: the token shows once, the IdP (here: the test, over
// HTTP) provisions a user, and the portal shows the user and the events feed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, hydrated, openBrowser, signInAsNewOwner } from '../support.mjs';

test('connect a directory, provision over SCIM, see it in the portal', async () => {
  const { context, page, errors } = await openBrowser();
  try {
    await signInAsNewOwner(page, 'Directory E2E', 'ida@directory-e2e.example');
    await page.goto(`${BASE_URL}/directories`);
    await hydrated(page);
    await page.getByRole('button', { name: 'Connect a directory' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Entra production');
    await dialog.getByLabel('Identity provider').selectOption('entra');
    await dialog.getByRole('button', { name: 'Create directory' }).click();
    const baseUrl = await dialog.getByTestId('scim-base-url').inputValue();
    const token = await dialog.getByTestId('scim-token').inputValue();
    assert.match(baseUrl, /\/scim\/v2\/[0-9a-f-]{36}$/);
    assert.match(token, /^mnd_scim_/);
    await dialog.getByText('Microsoft Entra admin center', { exact: false }).waitFor();

    const scim = (method, path, body) => fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
      body: body && JSON.stringify(body),
    });
    const created = await scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'jo@directory-e2e.example', displayName: 'Jo Lee', active: true,
      emails: [{ value: 'jo@directory-e2e.example', type: 'work', primary: true }],
    });
    assert.equal(created.status, 201);
    const duplicate = await scim('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'JO@directory-e2e.example' });
    assert.equal(duplicate.status, 409);

    await dialog.getByRole('link', { name: 'Open directory' }).click();
    await page.getByRole('heading', { name: 'Entra production' }).waitFor();
    await page.getByTestId('directory-users').getByText('Jo Lee').waitFor();
    const feed = page.getByTestId('directory-events');
    await feed.getByText('201').waitFor();
    await feed.getByText('409').waitFor();

    const unexpected = errors.filter((e) => !/status of (400|401)/.test(e));
    assert.deepEqual(unexpected, [], 'no console errors');
  } finally {
    await context.close();
  }
});
