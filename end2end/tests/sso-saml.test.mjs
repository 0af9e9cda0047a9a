// Single sign-on through a real SAML 2.0 IdP built on npm samlify (started here, signing with
// an RSA key made by openssl): the owner configures the connection from the IdP's metadata URL,
// verifies the domain, runs Test connection, signs in SP-initiated, then turns IdP-initiated
// sign-in on and signs in from the IdP's side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as samlify from 'samlify';
import * as xmllint from '@authenio/samlify-node-xmllint';
import { BASE_URL, freePort, hydrated, openBrowser, signInAsNewOwner, verifyDomainInPortal } from '../support.mjs';

const EMAIL = 'sara@saml-e2e.example';
samlify.setSchemaValidator(xmllint);

function keypair() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mandate-saml-idp-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '30', '-subj', '/CN=samlify e2e IdP'], { stdio: 'ignore' });
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

/** A samlify IdP: metadata at /metadata, SP-initiated at /sso, IdP-initiated at /idp-init. The
 * person "signs in" by pressing Continue, which posts the signed response to Mandate's ACS. */
async function startIdp() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const { key, cert } = keypair();
  const idp = samlify.IdentityProvider({
    entityID: `${base}/idp`,
    privateKey: key,
    signingCert: cert,
    nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'],
    singleSignOnService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: `${base}/sso` }],
  });
  const state = { spMetadataUrl: null };
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, base);
      if (url.pathname === '/metadata') {
        res.setHeader('content-type', 'application/samlmetadata+xml');
        res.end(idp.getMetadata());
        return;
      }
      // Anything else (the browser's favicon request): empty, so no 404 shows in the console.
      if (url.pathname !== '/sso' && url.pathname !== '/idp-init') { res.statusCode = 204; res.end(); return; }
      const sp = samlify.ServiceProvider({ metadata: await (await fetch(state.spMetadataUrl)).text() });
      const requestInfo = url.pathname === '/sso'
        ? await idp.parseLoginRequest(sp, 'redirect', { query: Object.fromEntries(url.searchParams) })
        : null;
      const { context, entityEndpoint } = await idp.createLoginResponse(sp, requestInfo, 'post', { email: EMAIL });
      res.setHeader('content-type', 'text/html');
      res.end(`<!DOCTYPE html><html><body><h1>Test IdP</h1><form method="post" action="${entityEndpoint}">`
        + `<input type="hidden" name="SAMLResponse" value="${context}"/><button type="submit">Continue to Mandate</button></form></body></html>`);
    } catch (err) {
      res.statusCode = 500;
      res.end(String(err && err.stack || err));
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { base, metadataUrl: `${base}/metadata`, state, close: () => server.close() };
}

async function continueAtIdp(page, idp) {
  await page.waitForURL((url) => url.href.startsWith(idp.base));
  await page.getByRole('button', { name: 'Continue to Mandate' }).click();
}

test('set up SAML from the IdP metadata URL, sign in SP-initiated and IdP-initiated', async () => {
  const idp = await startIdp();
  const { context, page, errors } = await openBrowser();
  try {
    await signInAsNewOwner(page, 'SAML E2E', EMAIL);

    await page.goto(`${BASE_URL}/connections`);
    await hydrated(page);
    await page.getByRole('button', { name: 'New SAML connection' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name', { exact: true }).fill('Company SAML');
    await dialog.getByLabel('IdP metadata URL').fill(idp.metadataUrl);
    // SAML carries no email_verified: the owner says this IdP verifies emails, so the Test
    // connection run below may link the owner's own identity.
    await dialog.getByText('Attributes, roles and IdP-initiated sign-in').click();
    await dialog.getByLabel('This IdP verifies every email address it asserts', { exact: false }).check();
    await dialog.getByRole('button', { name: 'Create connection' }).click();
    await page.waitForURL(/\/connections\/[0-9a-f-]{36}\?created=1/);
    await hydrated(page);
    const connectionUrl = page.url().split('?')[0];
    await page.getByTestId('sp-entity-id').waitFor({ timeout: 10_000 }).catch(async () => {
      throw new Error(`no SAML identifiers on the page: ${(await page.locator('main').textContent()).slice(0, 1500)}`);
    });
    const spEntityId = await page.getByTestId('sp-entity-id').inputValue();
    assert.match(spEntityId, /\/sso\/saml\/[0-9a-f-]{36}\/metadata$/);
    assert.equal(await page.getByTestId('acs-url').inputValue(), spEntityId.replace(/metadata$/, 'acs'));
    await page.getByTestId('certificates').getByText('CN=samlify e2e IdP').waitFor();
    idp.state.spMetadataUrl = spEntityId;

    // Verify the domain through DNS
    await verifyDomainInPortal(page, 'saml-e2e.example');

    // Test connection through the IdP
    await page.goto(connectionUrl);
    await hydrated(page);
    await page.getByTestId('test-connection').click();
    await continueAtIdp(page, idp);
    await page.waitForURL(/\/connections\/[0-9a-f-]{36}\?test=/);
    await hydrated(page);
    assert.equal(await page.getByTestId('test-outcome').getAttribute('data-outcome'), 'passed',
      await page.getByTestId('test-steps').textContent());

    // SP-initiated sign-in from the login page
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login\?signed_out=1/);
    await hydrated(page);
    await page.getByLabel('Work email').fill(EMAIL);
    await page.getByRole('button', { name: 'Continue' }).click();
    await continueAtIdp(page, idp);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    let me = await (await page.request.get(`${BASE_URL}/auth/me`)).json();
    assert.equal(me.person.email, EMAIL);

    // Turn IdP-initiated sign-in on, sign out, and start from the IdP
    await page.goto(connectionUrl);
    await hydrated(page);
    await page.getByText('Attributes, roles and IdP-initiated sign-in').click();
    await page.getByLabel("Allow sign-in started from the IdP's portal", { exact: false }).check();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Saved.').waitFor();
    await page.getByText('IdP-initiated').locator('xpath=following-sibling::dd[1]').getByText('allowed').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login\?signed_out=1/);
    await page.goto(`${idp.base}/idp-init`);
    await page.getByRole('button', { name: 'Continue to Mandate' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    me = await (await page.request.get(`${BASE_URL}/auth/me`)).json();
    assert.equal(me.person.email, EMAIL);

    assert.deepEqual(errors, [], 'no console errors on any page');
  } finally {
    await context.close();
    idp.close();
  }
});
