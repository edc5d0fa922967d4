// A SAML 2.0 identity provider for the single sign-on journey, made of
// auth0's samlp middleware (the IdP side of Auth0's SAML): a log-in page that
// accepts any email and name, then a response signed with a key and
// certificate made at start (RSA-SHA256 over SHA-256, the assertion signed),
// posted to the ACS the AuthnRequest names, if it is Chancery's. Everyone is
// in group "Researchers". Prints its base URL; its metadata is at /metadata.
//   node saml-idp.mjs <chancery_base_url>
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { inflateRawSync } from "node:zlib";
import samlp from "samlp";

const [chancery] = process.argv.slice(2);
const dir = mkdtempSync(path.join(tmpdir(), "saml-idp-"));
execFileSync("openssl", [
  "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=journey-idp",
  "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"),
], { stdio: "ignore" });
const cert = readFileSync(path.join(dir, "cert.pem"));
const key = readFileSync(path.join(dir, "key.pem"));

const server = createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const issuer = `${base}/metadata`;

const escape = (text) => String(text).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The ACS an AuthnRequest (HTTP-Redirect: deflated, base64) names, if it is Chancery's (a registered SP's). */
function chanceryAcs(samlRequest) {
  const xml = inflateRawSync(Buffer.from(samlRequest ?? "", "base64")).toString();
  const acs = xml.match(/AssertionConsumerServiceURL="([^"]+)"/)?.[1];
  return acs?.startsWith(`${chancery}/sso/saml/`) ? acs : null;
}

/** Signs the user in at that ACS: the response's Destination and the bearer confirmation's Recipient name it. */
const signIn = (acs) =>
  samlp.auth({
    issuer,
    cert,
    key,
    signatureAlgorithm: "rsa-sha256",
    digestAlgorithm: "sha256",
    nameIdentifierFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    destination: acs,
    recipient: acs,
    getUserFromRequest: (req) => req.user,
    getPostURL: (_audience, _request, _req, callback) => callback(null, acs),
  });
const metadata = samlp.metadata({ issuer, cert, redirectEndpointPath: "/sso", postEndpointPath: "/sso" });

/** The bits of express that samlp uses. */
function express(req, res) {
  const url = new URL(req.url, base);
  req.query = Object.fromEntries(url.searchParams);
  req.originalUrl = req.url;
  req.protocol = "http";
  res.set = (name, value) => res.setHeader(name, value);
  res.send = (status, body) => {
    if (typeof status === "number") res.statusCode = status;
    else body = status;
    res.end(body === undefined ? "" : String(body));
  };
  return url;
}

server.on("request", async (req, res) => {
  const url = express(req, res);
  const fail = (err) => { res.statusCode = 500; res.end(String(err)); };
  if (req.method === "GET" && url.pathname === "/metadata") {
    return metadata(req, res, fail);
  }
  if (req.method === "GET" && url.pathname === "/sso") {
    res.setHeader("Content-Type", "text/html");
    return res.end(`<!DOCTYPE html><html><head><title>Journey IdP</title></head><body>
      <h1>Journey IdP: sign in</h1>
      <form method="post" action="/sso">
        <input type="hidden" name="SAMLRequest" value="${escape(req.query.SAMLRequest ?? "")}">
        <input type="hidden" name="RelayState" value="${escape(req.query.RelayState ?? "")}">
        <label>Email <input name="email" required></label>
        <label>Name <input name="name"></label>
        <button type="submit">Sign in</button>
      </form></body></html>`);
  }
  if (req.method === "POST" && url.pathname === "/sso") {
    let body = "";
    for await (const chunk of req) body += chunk;
    const form = Object.fromEntries(new URLSearchParams(body));
    req.body = { SAMLRequest: form.SAMLRequest, RelayState: form.RelayState };
    req.query = {};
    const [givenName, ...rest] = (form.name || "").split(" ");
    req.user = {
      id: form.email,
      emails: [{ value: form.email }],
      displayName: form.name || form.email,
      name: { givenName, familyName: rest.join(" ") },
      groups: ["Researchers"], // sent as the attribute http://schemas.passportjs.com/groups
    };
    const acs = chanceryAcs(form.SAMLRequest);
    if (!acs) return res.send(403, "Not a registered service provider.");
    return signIn(acs)(req, res, fail);
  }
  res.statusCode = 404;
  res.end("not found");
});
console.log(base);
