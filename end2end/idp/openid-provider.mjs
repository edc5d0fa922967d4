// A real OpenID Provider (npm's oidc-provider) for the single sign-on journey:
// its development log-in page accepts any login (used as the email) and
// password, then asks for consent. Started by the journey; prints its issuer.
//   node openid-provider.mjs <client_id> <client_secret> <redirect_uri>
import Provider from "oidc-provider";
import { createServer } from "node:net";

const [clientId, clientSecret, redirectUri] = process.argv.slice(2);
const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  // Claims in the ID token itself (not only at the userinfo endpoint): what Chancery reads.
  conformIdTokenClaims: false,
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "groups"] },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: id,
      email: id,
      email_verified: true,
      name: id.split("@")[0].replace(/^./, (c) => c.toUpperCase()),
      groups: ["Researchers"],
    }),
  }),
});
provider.listen(port, "127.0.0.1", () => console.log(issuer));
