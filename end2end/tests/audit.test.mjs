// The audit trail end to end: an agent reports an action with its token, the Audit page finds it
// by agent and tells its chain of authority in plain words, the event's inclusion proof verifies
// against a signed checkpoint, the export downloads, and a webhook log stream delivers events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { BASE_URL, cli, hydrated, openBrowser, postForm, signInAsNewOwner } from '../support.mjs';

test('agent action → audit page → proof → export → log stream', async () => {
  const received = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

  const { context, page, errors } = await openBrowser();
  try {
    const email = 'ada@audit-e2e.example';
    const org = await signInAsNewOwner(page, 'Audit E2E', email);
    const agent = cli('agent', 'create', '--org', org.org_id, '--owner', email, '--name', 'Ledger',
      '--scopes', 'crm.read', '--approve');
    const basic = { authorization: 'Basic ' + Buffer.from(`${agent.client_id}:${agent.client_secret}`).toString('base64') };
    const minted = await postForm('/oauth2/token', { grant_type: 'client_credentials' }, basic);
    assert.equal(minted.status, 200);

    // The agent reports what it did.
    const reported = await fetch(`${BASE_URL}/api/v1/audit/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${minted.body.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'crm.contact.read', target: { type: 'contact', id: 'c-7', label: 'Grace Hopper' } }),
    });
    assert.equal(reported.status, 201);
    const { seq } = await reported.json();

    // The Audit page finds it by agent and tells who stands behind it.
    await page.goto(`${BASE_URL}/audit?agent=Ledger`);
    await hydrated(page);
    const rows = page.getByTestId('audit-rows');
    await rows.getByText('crm.contact.read').first().click();
    const story = page.getByTestId('authority-story').first();
    await story.getByText('platform operator approved crm.read for agent Ledger').waitFor();
    await story.getByText(`Agent Ledger acts for`).waitFor();
    await story.getByText('Action crm.contact.read on Grace Hopper: success').waitFor();

    // A signed checkpoint covers it within seconds; its inclusion proof verifies.
    let covered = false;
    for (let attempt = 0; attempt < 40 && !covered; attempt++) {
      await page.goto(`${BASE_URL}/audit?agent=Ledger`);
      const shown = page.getByTestId('checkpoint-size');
      const size = (await shown.count()) > 0 ? await shown.textContent() : null;
      covered = size !== null && Number(size.replace('#', '')) >= seq;
      if (!covered) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(covered, 'a checkpoint was signed over the new event');
    await hydrated(page);
    await rows.getByText('crm.contact.read').first().click();
    await page.getByRole('button', { name: 'Check inclusion proof' }).first().click();
    await page.getByTestId('proof-result').first().getByText(/Included in signed checkpoint #\d+ .*verified/).waitFor();
    await page.getByRole('button', { name: 'Verify integrity' }).click();
    await page.getByTestId('chain-status').getByText('Chain intact.').waitFor();

    // Export the filtered view as CSV, with the browser's session.
    const href = await page.getByTestId('export-csv').getAttribute('href');
    assert.match(href, /format=csv&agent=Ledger/);
    const csv = await page.request.get(`${BASE_URL}${href}`);
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()['content-type'], /text\/csv/);
    assert.match(await csv.text(), /crm\.contact\.read/);

    // A webhook log stream: the secret is shown once, a test event arrives, then real events.
    await page.goto(`${BASE_URL}/settings/streams`);
    await hydrated(page);
    await page.getByLabel('Name').fill('Local SIEM');
    await page.getByLabel('URL').fill(hookUrl);
    await page.getByRole('button', { name: 'Add stream' }).click();
    const secret = await page.getByTestId('stream-secret').inputValue();
    assert.match(secret, /^mnd_whsec_/);
    await page.getByRole('button', { name: /Send test event/ }).first().click();
    await page.getByTestId('stream-test-outcome').first().waitFor();
    assert.equal(await page.getByTestId('stream-test-outcome').first().getAttribute('data-ok'), 'true');
    assert.ok(received.some((r) => r.body.includes('mandate.stream.test')), 'the test event arrived');
    assert.match(received[0].headers['mandate-signature'], /^t=\d+,v1=[0-9a-f]{64}$/);

    // Delivery runs every second: a new event reaches the receiver.
    const again = await fetch(`${BASE_URL}/api/v1/audit/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${minted.body.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'crm.contact.update', target: { id: 'c-7' } }),
    });
    assert.equal(again.status, 201);
    for (let attempt = 0; attempt < 40 && !received.some((r) => r.body.includes('crm.contact.update')); attempt++) {
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(received.some((r) => r.body.includes('crm.contact.update')), 'the stream delivered the new event');

    assert.deepEqual(errors, [], 'no console errors');
  } finally {
    await context.close();
    receiver.close();
  }
});
