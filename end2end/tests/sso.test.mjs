// Single sign-on through a real OpenID Provider (npm oidc-provider, started here): the owner
// creates the connection in the portal, proves the email domain with a DNS TXT record, runs
// Test connection through the IdP, signs out and signs back in through the IdP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Provider from 'oidc-provider';
import { BASE_URL, freePort, hydrated, openBrowser, signInAsNewOwner, verifyDomainInPortal } from '../support.mjs';

const CLIENT_ID = 'mandate-e2e';
const CLIENT_SECRET = 'e2e-client-secret-0123456789';
const EMAIL = 'olga@sso-e2e.example';

async function startIdp() {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${BASE_URL}/sso/oidc/callback`],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: ['mandate-e2e-cookie-key'] },
    async findAccount(_ctx, id) {
      return { accountId: id, async claims() { return { sub: `idp-user-${id}`, email: id, email_verified: true, name: 'Olga Owner' }; } };
    },
  });
  const server = provider.listen(port);
  return { issuer, close: () => server.close() };
}

/** Goes through oidc-provider's development sign-in and consent pages (each only when the IdP
 * asks for it) until the browser is back at Mandate. */
async function passIdp(page, issuer) {
  for (let i = 0; i < 5; i += 1) {
    await page.waitForLoadState();
    if (!page.url().startsWith(issuer)) return;
    const before = page.url();
    const login = page.locator('input[name="login"]');
    if (await login.count()) {
      await login.fill(EMAIL);
      await page.locator('input[name="password"]').fill('any password works here');
      await page.getByRole('button', { name: 'Sign-in' }).click();
    } else {
      await page.getByRole('button', { name: 'Continue' }).click();
    }
    await page.waitForURL((url) => url.href !== before, { timeout: 15_000 });
  }
  throw new Error(`still at the IdP: ${page.url()}`);
}

test('set up OIDC in the portal, test it, and sign in through the IdP', async () => {
  const idp = await startIdp();
  const { context, page, errors } = await openBrowser();
  // The IdP's development pages import a web font; there is no internet here.
  await context.route('https://fonts.googleapis.com/**', (route) => route.fulfill({ status: 200, contentType: 'text/css', body: '' }));
  try {
    await signInAsNewOwner(page, 'SSO E2E', EMAIL);

    // New OIDC connection
    await page.goto(`${BASE_URL}/connections`);
    await hydrated(page);
    await page.getByRole('button', { name: 'New OIDC connection' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name', { exact: true }).fill('Company IdP');
    await dialog.getByLabel('Issuer URL').fill(idp.issuer);
    await dialog.getByLabel('Client ID').fill(CLIENT_ID);
    await dialog.getByLabel('Client secret').fill(CLIENT_SECRET);
    await dialog.getByRole('button', { name: 'Create connection' }).click();
    await page.waitForURL(/\/connections\/[0-9a-f-]{36}\?created=1/);
    await hydrated(page);
    assert.equal(await page.getByTestId('redirect-uri').inputValue(), `${BASE_URL}/sso/oidc/callback`);
    const connectionUrl = page.url().split('?')[0];

    // Claim and verify the email domain through DNS
    assert.equal(await verifyDomainInPortal(page, 'sso-e2e.example'), '_mandate-verification.sso-e2e.example');

    // Test connection: a real sign-in at the IdP, each step shown
    await page.goto(connectionUrl);
    await hydrated(page);
    await page.getByTestId('test-connection').click();
    await page.waitForURL((url) => url.href.startsWith(idp.issuer));
    await passIdp(page, idp.issuer);
    await page.waitForURL(/\/connections\/[0-9a-f-]{36}\?test=/);
    await hydrated(page);
    const outcome = page.getByTestId('test-outcome');
    await outcome.waitFor();
    assert.equal(await outcome.getAttribute('data-outcome'), 'passed', await page.getByTestId('test-steps').textContent());
    const steps = page.getByTestId('test-steps').locator('li');
    assert.equal(await steps.count(), 5);
    assert.equal(await page.getByTestId('test-steps').locator('li[data-status="ok"]').count(), 5);
    await page.getByText(`${EMAIL} signs in as Owner`, { exact: false }).waitFor();

    // Sign out, then sign back in with the email: the verified domain sends us to the IdP
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login\?signed_out=1/);
    await hydrated(page);
    await page.getByLabel('Work email').fill(EMAIL);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((url) => !url.href.startsWith(`${BASE_URL}/login`) && !url.href.startsWith(`${BASE_URL}/sso/start`));
    await passIdp(page, idp.issuer);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    assert.equal(new URL(page.url()).origin, BASE_URL);
    const me = await (await page.request.get(`${BASE_URL}/auth/me`)).json();
    assert.equal(me.person.email, EMAIL);
    assert.equal(me.role, 'owner');

    // The trail tells the story
    await page.goto(`${BASE_URL}/audit`);
    await hydrated(page);
    for (const action of ['connection.created', 'domain.verified', 'connection.tested', 'login.succeeded']) {
      await page.getByTestId('audit-rows').getByText(action).first().waitFor();
    }

    assert.deepEqual(errors, [], 'no console errors (CSP violations, hydration errors) on any page');
  } finally {
    await context.close();
    idp.close();
  }
});
