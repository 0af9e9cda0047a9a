// An agent's life in the portal: register it, approve its scope, mint a token over HTTP,
// click Revoke, and see the token inactive at introspection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, cli, hydrated, openBrowser, postForm, signInAsNewOwner } from '../support.mjs';

test('register, approve, mint, revoke in the portal', async () => {
  const { context, page, errors } = await openBrowser();
  try {
    const org = await signInAsNewOwner(page, 'Agents E2E', 'ada@agents-e2e.example');
    const { api_key: apiKey } = cli('api-key', 'create', '--org', org.org_id);

    // Catalog: add crm.read
    await page.goto(`${BASE_URL}/settings?tab=scopes`);
    await hydrated(page);
    await page.getByLabel('Name').fill('crm.read');
    await page.getByLabel('Description').fill('Read customer records');
    await page.getByRole('button', { name: 'Add scope' }).click();
    await page.getByTestId('scope-catalog').getByText('crm.read').waitFor();

    // Register the agent; the secret is shown once
    await page.goto(`${BASE_URL}/agents`);
    await hydrated(page);
    await page.getByRole('button', { name: 'Register agent' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('Ledger');
    await dialog.getByLabel('What it does').fill('Reconciles invoices');
    await dialog.getByRole('checkbox', { name: /crm\.read/ }).check();
    await dialog.getByLabel('Why it needs them').fill('Month-end close');
    await dialog.getByRole('button', { name: 'Register agent' }).click();
    const clientId = await dialog.getByTestId('client-id').inputValue();
    const clientSecret = await dialog.getByTestId('client-secret').inputValue();
    assert.match(clientId, /^agt_/);
    assert.match(clientSecret, /^mnd_sec_/);
    await dialog.getByRole('button', { name: 'Done' }).click();
    await page.getByTestId('agent-rows').getByText('Ledger').waitFor();

    // Before approval, no token
    const basic = { authorization: 'Basic ' + Buffer.from(`${clientId}:${clientSecret}`).toString('base64') };
    const early = await postForm('/oauth2/token', { grant_type: 'client_credentials' }, basic);
    assert.equal(early.status, 400);
    assert.equal(early.body.error, 'invalid_scope');

    // Approve
    await page.getByRole('link', { name: 'Approvals' }).first().click();
    await page.getByRole('heading', { name: 'Approvals' }).waitFor();
    await hydrated(page);
    await page.getByRole('button', { name: 'Approve crm.read for Ledger' }).click();
    await page.getByText('Nothing here').waitFor();

    // Mint over HTTP, as the agent would
    const minted = await postForm('/oauth2/token', { grant_type: 'client_credentials' }, basic);
    assert.equal(minted.status, 200);
    assert.equal(minted.body.scope, 'crm.read');
    const token = minted.body.access_token;
    const bearer = { authorization: `Bearer ${apiKey}` };
    const active = await postForm('/oauth2/introspect', { token }, bearer);
    assert.equal(active.body.active, true);

    // Revoke from the agent page, after seeing the impact
    await page.goto(`${BASE_URL}/agents`);
    await page.getByRole('link', { name: 'Ledger' }).click();
    await page.getByRole('heading', { name: /Ledger/ }).waitFor();
    await hydrated(page);
    assert.equal((await page.getByTestId('live-tokens').textContent()).trim(), '1');
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    const confirm = page.getByRole('dialog');
    await confirm.getByTestId('revoke-impact').getByText('1 live token(s)').waitFor();
    await confirm.getByLabel(/Reason/).fill('end-to-end test');
    await confirm.getByRole('button', { name: 'Revoke agent' }).click();
    await page.getByText('Agent revoked. 1 live token(s) stopped working.').waitFor();

    const after = await postForm('/oauth2/introspect', { token }, bearer);
    assert.deepEqual(after.body, { active: false });
    const refused = await postForm('/oauth2/token', { grant_type: 'client_credentials' }, basic);
    assert.equal(refused.status, 401);

    const unexpected = errors.filter((e) => !/status of (400|401)/.test(e));
    assert.deepEqual(unexpected, [], 'no console errors');
  } finally {
    await context.close();
  }
});
