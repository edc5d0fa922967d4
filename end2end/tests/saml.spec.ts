import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { expect, open, test, verifiedOrganization, workspaceForGroup } from "./helpers";

/** A SAML IdP (auth0's samlp) in a process of its own, posting only to this Chancery's ACS. */
async function startSamlIdp(chancery: string): Promise<{ base: string; process: ChildProcess }> {
  const script = path.join(__dirname, "..", "idp", "saml-idp.mjs");
  const child = spawn(process.execPath, [script, chancery], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(child.stdout!, "data");
  return { base: String(line).trim(), process: child };
}

test("an Admin names a SAML IdP by its metadata; a colleague's first SAML log-in makes them a member", async ({ page, browser, baseURL }) => {
  const domain = `saml${Date.now()}.example`;
  const idp = await startSamlIdp(baseURL!);
  try {
    const orgId = await verifiedOrganization(page, domain);
    await workspaceForGroup(page, "Lab", "Researchers");

    // What to give the IdP: Chancery's entity id, ACS and SP metadata.
    await open(page, "/admin/settings");
    const entityId = `${baseURL}/sso/saml/${orgId}`;
    await expect(page.getByTestId("saml-sp-entity-id")).toHaveText(entityId);
    await expect(page.getByTestId("saml-acs-url")).toHaveText(`${entityId}/acs`);
    const spMetadata = await page.request.get((await page.getByTestId("saml-sp-metadata").getAttribute("href"))!);
    expect(await spMetadata.text()).toContain(`entityID="${entityId}"`);

    // What Chancery takes from the IdP: its metadata, pasted.
    const idpMetadata = await (await fetch(`${idp.base}/metadata`)).text();
    await page.getByLabel("IdP metadata XML").fill(idpMetadata);
    await page.getByLabel("Groups attribute (optional)").fill("http://schemas.passportjs.com/groups");
    await page.getByRole("button", { name: "Save SAML provider" }).click();
    await expect(page.getByText("SAML provider saved.")).toBeVisible();
    await expect(page.getByTestId("saml-certificates")).toContainText("CN=journey-idp");
    await expect(page.getByLabel("IdP SSO URL (HTTP-Redirect)")).toHaveValue(`${idp.base}/sso`);

    // A colleague, in a browser of their own, with no Chancery account yet.
    const grace = await (await browser.newContext()).newPage();
    let posted = "";
    grace.on("request", (request) => {
      if (request.url().endsWith(`/sso/saml/${orgId}/acs`)) posted = request.postData() ?? "";
    });
    await open(grace, "/login");
    await grace.getByRole("link", { name: "Continue with SSO" }).click();
    await expect(grace.locator("body[data-hydrated]")).toBeAttached();
    await grace.getByLabel("Work email").fill(`grace@${domain}`);
    await grace.getByRole("button", { name: "Continue" }).click();
    await expect(grace).toHaveURL(new RegExp(`^${idp.base}/sso\\?SAMLRequest=`));
    await grace.getByLabel("Email").fill(`grace@${domain}`);
    await grace.getByLabel("Name").fill("Grace Hopper");
    await grace.getByRole("button", { name: "Sign in" }).click();
    // The IdP's page posts to the ACS, whose page posts on to Chancery: she is in.
    await expect(grace).toHaveURL(/\/admin$/);
    await expect(grace.getByText("Federated Inc").first()).toBeVisible();
    await expect(grace.getByTestId("workspace-row").filter({ hasText: "Lab" })).toBeVisible();
    await grace.context().close();
    expect(posted).toContain("SAMLResponse=");

    await open(page, "/admin/members");
    const row = page.getByRole("row", { name: new RegExp(`grace@${domain}`) });
    await expect(row).toContainText("Grace Hopper");
    await expect(row).toContainText("Member");
    // Ada, in another browser, follows a link to the audit log: sent to log in,
    // she goes through the IdP and lands on the page she was going to.
    const ada = await (await browser.newContext()).newPage();
    await ada.goto("/admin/audit-log?action=organization.saml");
    await expect(ada).toHaveURL(/\/login\?next=/);
    await expect(ada.locator("body[data-hydrated]")).toBeAttached();
    await ada.getByRole("link", { name: "Continue with SSO" }).click();
    await expect(ada.locator("body[data-hydrated]")).toBeAttached();
    await ada.getByLabel("Work email").fill(`ada@${domain}`);
    await ada.getByRole("button", { name: "Continue" }).click();
    await expect(ada).toHaveURL(new RegExp(`^${idp.base}/sso\\?SAMLRequest=`));
    await ada.getByLabel("Email").fill(`ada@${domain}`);
    await ada.getByRole("button", { name: "Sign in" }).click();
    await expect(ada).toHaveURL(/\/admin\/audit-log\?action=organization\.saml$/);
    await expect(ada.getByText("organization.saml_member_join")).toBeVisible();
    await ada.context().close();

    // Her response, captured and posted again from another browser, opens nothing.
    const thief = await (await browser.newContext()).newPage();
    const fields = [...new URLSearchParams(posted)].map(
      ([name, value]) => `<input type="hidden" name="${name}" value="${value}">`,
    );
    await thief.setContent(`<form method="post" action="${baseURL}/sso/saml/${orgId}/acs">${fields.join("")}<button>Replay</button></form>`);
    await thief.getByRole("button", { name: "Replay" }).click();
    await expect(thief).toHaveURL(/\/login$/);
    await expect(thief.getByText("Single sign-on was not started in this browser")).toBeVisible();
    await thief.context().close();
    await open(page, "/admin/audit-log?action=organization.saml_login_refused");
    await expect(page.getByText("organization.saml_login_refused")).toBeVisible();
  } finally {
    idp.process.kill();
  }
});
