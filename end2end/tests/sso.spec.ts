import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { type Page } from "@playwright/test";
import { expect, open, operator, PASSWORD, test, verifiedOrganization, workspaceForGroup } from "./helpers";

/** npm's oidc-provider in a process of its own, registered with Chancery's redirect URI. */
async function startProvider(redirectUri: string): Promise<{ issuer: string; process: ChildProcess }> {
  const script = path.join(__dirname, "..", "idp", "openid-provider.mjs");
  const child = spawn(process.execPath, [script, "chancery", "journey-client-secret", redirectUri], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = await once(child.stdout!, "data");
  return { issuer: String(line).trim(), process: child };
}

/** Ada signs up, creates an Organization, verifies `domain` (operator) and sets up `issuer`; its id. */
async function federatedOrganization(page: Page, domain: string, issuer: string, redirectUri: string): Promise<string> {
  const orgId = await verifiedOrganization(page, domain);
  await open(page, "/admin/settings");
  await expect(page.getByTestId("oidc-redirect-uri")).toHaveText(redirectUri);
  await page.getByLabel("Issuer URL").fill(issuer);
  await page.getByLabel("Client ID").fill("chancery");
  await page.getByLabel("Client secret").fill("journey-client-secret");
  await page.getByLabel("Groups claim (optional)").fill("groups");
  await page.getByRole("button", { name: "Save single sign-on" }).click();
  await expect(page.getByText("Single sign-on saved.")).toBeVisible();
  await expect(page.getByText("Saved; never shown again.")).toBeVisible();
  return orgId;
}

/** From the log-in page through the provider's log-in and consent pages, back into Chancery. */
async function continueWithSso(page: Page, email: string, issuer: string): Promise<void> {
  await open(page, "/login");
  await page.getByRole("link", { name: "Continue with SSO" }).click();
  await expect(page).toHaveURL(/\/login\/sso$/);
  await expect(page.locator("body[data-hydrated]")).toBeAttached();
  await page.getByLabel("Work email").fill(email);
  await page.getByRole("button", { name: "Continue" }).click();

  // At the identity provider: its own log-in page, then consent.
  await expect(page).toHaveURL(new RegExp(`^${issuer}/interaction/`));
  await page.locator('input[name="login"]').fill(email);
  await page.locator('input[name="password"]').fill("anything");
  await page.getByRole("button", { name: /sign-in/i }).click();
  await page.getByRole("button", { name: /continue/i }).click();
  await expect(page).toHaveURL(/\/admin$/);
}

test("an Admin sets up OpenID Connect; a colleague's first SSO log-in makes them a member", async ({ page, browser, baseURL }) => {
  const domain = `sso${Date.now()}.example`;
  const redirectUri = `${baseURL}/sso/oidc/callback`;
  const idp = await startProvider(redirectUri);
  try {
    await federatedOrganization(page, domain, idp.issuer, redirectUri);
    await workspaceForGroup(page, "Lab", "Researchers");

    // A colleague, in a browser of their own, with no Chancery account yet.
    const grace = await (await browser.newContext()).newPage();
    await continueWithSso(grace, `grace@${domain}`, idp.issuer);

    // Back in Chancery: signed in, in the Organization, as a Member, in the
    // group the provider says she is in, so in its workspace.
    await expect(grace.getByText("Federated Inc").first()).toBeVisible();
    await expect(grace.getByTestId("workspace-row").filter({ hasText: "Lab" })).toBeVisible();
    await grace.context().close();

    await open(page, "/admin/members");
    const row = page.getByRole("row", { name: new RegExp(`grace@${domain}`) });
    await expect(row).toContainText("Grace");
    await expect(row).toContainText("Member");
    await open(page, `/admin/audit-log?action=organization.oidc`);
    await expect(page.getByText("organization.oidc_member_join")).toBeVisible();

    // A domain no Organization verified has no single sign-on.
    const stranger = await (await browser.newContext()).newPage();
    await open(stranger, "/login/sso");
    await stranger.getByLabel("Work email").fill("eve@nowhere.example");
    await stranger.getByRole("button", { name: "Continue" }).click();
    await expect(stranger.getByRole("alert")).toContainText("Single sign-on is not set up for nowhere.example");
    await stranger.context().close();
  } finally {
    idp.process.kill();
  }
});

test("an Admin requires single sign-on; passwords stop working until the operator lifts it", async ({ page, browser, baseURL }) => {
  const domain = `required${Date.now()}.example`;
  const redirectUri = `${baseURL}/sso/oidc/callback`;
  const idp = await startProvider(redirectUri);
  try {
    const orgId = await federatedOrganization(page, domain, idp.issuer, redirectUri);
    await expect(page.getByTestId("sso-requirement")).toContainText(`Not required: 1 member(s) with an email in ${domain}`);

    // Signed in with her password, Ada has not shown the provider works for her.
    await page.getByRole("button", { name: "Require single sign-on" }).click();
    await expect(page.getByRole("alert")).toContainText("once before requiring it");

    // Through the provider, in another browser, she can.
    const sso = await (await browser.newContext()).newPage();
    await continueWithSso(sso, `ada@${domain}`, idp.issuer);
    await open(sso, "/admin/settings");
    await sso.getByRole("button", { name: "Require single sign-on" }).click();
    await expect(sso.getByText("Single sign-on is now required.")).toBeVisible();
    await expect(sso.getByTestId("sso-requirement")).toContainText("Required since");
    await expect(sso.getByText(`chancery sso allow-passwords --org ${orgId}`)).toBeVisible();

    // Her password session has ended; her password is answered with the way in.
    await page.goto("/admin");
    await expect(page).toHaveURL(/\/login$/);
    await expect(page.locator("body[data-hydrated]")).toBeAttached();
    await page.getByLabel("Email").fill(`ada@${domain}`);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(page.getByRole("alert")).toContainText("Your organization requires single sign-on");

    await open(sso, "/admin/audit-log?action=organization.sso");
    await expect(sso.getByText("organization.sso_enforce")).toBeVisible();
    await sso.context().close();

    // Break glass: the operator lifts it, and the password works again.
    operator("sso", "allow-passwords", "--org", orgId);
    await open(page, "/login");
    await page.getByLabel("Email").fill(`ada@${domain}`);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(page).toHaveURL(/\/admin$/);
  } finally {
    idp.process.kill();
  }
});
