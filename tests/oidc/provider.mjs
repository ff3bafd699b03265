// A real OpenID Connect provider for the tests: oidc-provider (pinned in
// package.json), on a free loopback port.
//
//   node tests/oidc/provider.mjs
//
// Environment:
//   OIDC_KEYS           comma-separated PEM files of the signing keys; the
//                       first signs (default: keys/trusted.pem next to this file)
//   OIDC_REDIRECT_URIS  comma-separated redirect URIs of the `teamform` client
//   OIDC_PORT           the port (default: a free one)
//
// Prints one JSON line on stdout once listening: {"issuer": "http://127.0.0.1:PORT"}.
//
// Clients: `teamform` (public, authorization code + PKCE, the service's
// browser sign-in) and `teamform-cli` (public, the same, for tests that take
// tokens directly).
//
// Sign-in: the provider's own login page is replaced by a small form
// (/interaction/UID) taking an email address and a "second factor" box. The
// account is the email; `email_verified` is false for addresses starting
// with `unverified`; the second-factor box puts `mfa` in `amr`. Consent is
// given at once (openid, email).
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Provider from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const keyFiles = (process.env.OIDC_KEYS || join(here, 'keys', 'trusted.pem')).split(',');
const keys = keyFiles.map((file, i) => ({
  ...createPrivateKey(readFileSync(file)).export({ format: 'jwk' }),
  kid: file.split('/').pop().replace(/\.pem$/, ''),
  use: 'sig',
  alg: 'RS256',
}));
const redirectUris = (process.env.OIDC_REDIRECT_URIS || 'http://127.0.0.1:1/callback')
  .split(',')
  .filter(Boolean);

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 10000) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

const server = createServer();
server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'teamform',
        token_endpoint_auth_method: 'none',
        redirect_uris: redirectUris,
        response_types: ['code'],
        grant_types: ['authorization_code'],
      },
      {
        client_id: 'teamform-cli',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1:1/callback'],
        response_types: ['code'],
        grant_types: ['authorization_code'],
      },
    ],
    jwks: { keys },
    claims: { openid: ['sub', 'amr'], email: ['email', 'email_verified'] },
    // Scope claims in the ID token too, as the big providers do.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    cookies: { keys: ['teamform-test-provider-cookie-key'] },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: id, email_verified: !id.startsWith('unverified') };
        },
      };
    },
    ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
  });
  provider.proxy = false;

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const match = req.url.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/);
    if (!match) {
      callback(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET' && !match[2]) {
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(`<!doctype html><html lang="en"><head><title>Sign in</title></head><body>
<h1>Sign in to the test provider</h1>
<form method="post" action="/interaction/${escape(details.uid)}/login">
<label for="email">Email</label> <input id="email" name="email" type="email" autofocus required>
<label><input name="mfa" type="checkbox" value="1"> Second factor</label>
<button type="submit">Sign in</button>
</form></body></html>`);
        return;
      }
      if (req.method === 'POST' && match[2]) {
        const form = await readForm(req);
        const accountId = (form.get('email') || '').trim();
        if (!accountId) {
          res.statusCode = 400;
          res.end('email required');
          return;
        }
        const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
        grant.addOIDCScope('openid email');
        grant.addOIDCClaims(['email', 'email_verified']);
        const grantId = await grant.save();
        const amr = form.get('mfa') ? ['pwd', 'mfa'] : ['pwd'];
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId, amr }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
        return;
      }
      res.statusCode = 405;
      res.end();
    } catch (err) {
      res.statusCode = 400;
      res.end(`interaction failed: ${err.message}`);
    }
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
