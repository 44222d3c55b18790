// A foreign, certified OpenID provider for the gateway's sign-in tests: panva/oidc-provider
// (OpenID Certified) serving one Keycloak-style realm on Keycloak's paths, so the gateway finds
// it by discovery exactly as it would find Keycloak. Adapted from ../shared/bench/oidc-provider.
//
//   node oidc_provider.mjs --port N --realm realm.json
//
// Issuer    http://127.0.0.1:N/auth/realms/{realm}
// Endpoints {issuer}/protocol/openid-connect/{auth,token,certs,userinfo,logout,revoke}
// Login     {issuer}/login-actions/{uid} (a plain form; oidc-provider leaves the UI to us)
// Users     the realm's users with their groups (claim `groups`) and plaintext credentials,
//           compared in constant time (a test fixture: nothing here is hashed or kept).
// Prints "ready" on stdout once it listens.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    realm: { type: 'string' },
  },
});

const subst = (v) => (typeof v === 'string'
  ? v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g, (m, name, def) => process.env[name] ?? (def ?? m))
  : Array.isArray(v) ? v.map(subst)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x)])) : v);
const realm = subst(JSON.parse(fs.readFileSync(args.realm, 'utf8')));
const PREFIX = `/auth/realms/${realm.realm}`;
const ISSUER = `http://127.0.0.1:${args.port}${PREFIX}`;
const KC = '/protocol/openid-connect';

const users = new Map();
const usersById = new Map();
for (const u of realm.users || []) {
  const rec = {
    id: crypto.createHash('sha256').update(u.username).digest('hex').slice(0, 32),
    username: u.username,
    email: u.email,
    groups: u.groups || [],
    password: (u.credentials || []).find((c) => c.type === 'password')?.value,
  };
  users.set(rec.username, rec);
  usersById.set(rec.id, rec);
}

function checkPassword(username, password) {
  const u = users.get(String(username ?? ''));
  const want = Buffer.from(u?.password ?? crypto.randomBytes(16).toString('hex'));
  const got = Buffer.from(String(password ?? ''));
  const same = got.length === want.length && crypto.timingSafeEqual(got, want);
  return same && u ? u : null;
}

const clients = (realm.clients || [])
  .filter((c) => c.enabled !== false && c.standardFlowEnabled !== false && (c.redirectUris || []).length)
  .map((c) => ({
    client_id: c.clientId,
    ...(c.publicClient ? { token_endpoint_auth_method: 'none' }
      : { client_secret: c.secret, token_endpoint_auth_method: 'client_secret_basic' }),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: c.redirectUris,
    post_logout_redirect_uris: (c.attributes?.['post.logout.redirect.uris'] || '').split('##')
      .filter(Boolean).map((u) => u.replace(/\*$/, '')),
  }));

const provider = new Provider(ISSUER, {
  clients,
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  routes: {
    authorization: `${KC}/auth`,
    token: `${KC}/token`,
    jwks: `${KC}/certs`,
    userinfo: `${KC}/userinfo`,
    end_session: `${KC}/logout`,
    revocation: `${KC}/revoke`,
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub', 'groups'],
    profile: ['preferred_username'],
    email: ['email'],
  },
  conformIdTokenClaims: false,
  findAccount: async (_ctx, sub) => {
    const u = usersById.get(sub);
    return u && {
      accountId: u.id,
      async claims() {
        return { sub: u.id, preferred_username: u.username, email: u.email, groups: u.groups };
      },
    };
  },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  rotateRefreshToken: true,
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  loadExistingGrant: async (ctx) => {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (!grant) grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    grant.addOIDCScope([...oidc.requestParamScopes].join(' '));
    await grant.save();
    return grant;
  },
  ttl: {
    AccessToken: realm.accessTokenLifespan || 300,
    IdToken: realm.accessTokenLifespan || 300,
    AuthorizationCode: 60,
    RefreshToken: 1800,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  interactions: { url: (_ctx, i) => `${PREFIX}/login-actions/${i.uid}` },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const CSRF_KEY = crypto.randomBytes(32);
const csrfFor = (uid) => crypto.createHmac('sha256', CSRF_KEY).update(uid).digest('base64url');

function loginPage(res, uid, error) {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!DOCTYPE html><html><head><title>Sign in to ${esc(realm.realm)}</title></head><body>
${error ? `<p role="alert">${esc(error)}</p>` : ''}
<form method="post" action="${PREFIX}/login-actions/${esc(uid)}/login">
<input type="hidden" name="csrf" value="${csrfFor(uid)}">
<input id="username" name="username"><input id="password" name="password" type="password">
<input type="submit" value="Sign In"></form></body></html>`);
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { s += d; if (s.length > 65536) reject(new Error('too large')); });
    req.on('end', () => resolve(new URLSearchParams(s)));
    req.on('error', reject);
  });
}

async function interaction(req, res, path) {
  const m = /^\/login-actions\/([A-Za-z0-9_-]+)(\/login)?$/.exec(path);
  const details = m && await provider.interactionDetails(req, res).catch(() => null);
  if (!details || details.uid !== m[1]) {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    return res.end('bad interaction\n');
  }
  if (req.method === 'GET' && !m[2]) {
    if (details.prompt.name === 'login') return loginPage(res, details.uid);
    return provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
  }
  const form = await readForm(req);
  const csrf = Buffer.from(form.get('csrf') || '');
  const want = Buffer.from(csrfFor(details.uid));
  if (csrf.length !== want.length || !crypto.timingSafeEqual(csrf, want)) {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    return res.end('bad csrf\n');
  }
  const u = checkPassword(form.get('username'), form.get('password'));
  if (!u) return loginPage(res, details.uid, 'Invalid username or password.');
  return provider.interactionFinished(req, res, { login: { accountId: u.id } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const url = req.url || '/';
  if (!url.startsWith(`${PREFIX}/`)) {
    res.writeHead(404);
    return res.end();
  }
  const rest = url.slice(PREFIX.length);
  if (rest.startsWith('/login-actions/')) {
    return interaction(req, res, rest.split('?')[0]).catch((e) => {
      console.error('interaction error', e);
      if (!res.headersSent) { res.writeHead(500); res.end(); }
    });
  }
  req.originalUrl = url;
  req.url = rest;
  return callback(req, res);
});
server.listen(Number(args.port), '127.0.0.1', () => console.log(`ready ${ISSUER}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });
