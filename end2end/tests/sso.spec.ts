import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { expect, open, operator, signUp, test } from "./helpers";

/** npm's oidc-provider in a process of its own, registered with Chancery's redirect URI. */
async function startProvider(redirectUri: string): Promise<{ issuer: string; process: ChildProcess }> {
  const script = path.join(__dirname, "..", "idp", "openid-provider.mjs");
  const child = spawn(process.execPath, [script, "chancery", "journey-client-secret", redirectUri], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = await once(child.stdout!, "data");
  return { issuer: String(line).trim(), process: child };
}

test("an Admin sets up OpenID Connect; a colleague's first SSO log-in makes them a member", async ({ page, browser, baseURL }) => {
  const domain = `sso${Date.now()}.example`;
  const idp = await startProvider(`${baseURL}/sso/oidc/callback`);
  try {
    await signUp(page, "Ada Admin", `ada@${domain}`);
    await page.getByLabel("Organization name").fill("Federated Inc");
    await page.getByRole("button", { name: "Create organization" }).click();
    await expect(page).toHaveURL(/\/admin$/);
    const orgId = (await page.getByTestId("org-id").textContent())!.trim();
    operator("domains", "verify", "--org", orgId, "--domain", domain);

    await open(page, "/admin/settings");
    await expect(page.getByTestId("oidc-redirect-uri")).toHaveText(`${baseURL}/sso/oidc/callback`);
    await page.getByLabel("Issuer URL").fill(idp.issuer);
    await page.getByLabel("Client ID").fill("chancery");
    await page.getByLabel("Client secret").fill("journey-client-secret");
    await page.getByRole("button", { name: "Save single sign-on" }).click();
    await expect(page.getByText("Single sign-on saved.")).toBeVisible();
    await expect(page.getByText("Saved; never shown again.")).toBeVisible();

    // A colleague, in a browser of their own, with no Chancery account yet.
    const grace = await (await browser.newContext()).newPage();
    await open(grace, "/login");
    await grace.getByRole("link", { name: "Continue with SSO" }).click();
    await expect(grace).toHaveURL(/\/login\/sso$/);
    await expect(grace.locator("body[data-hydrated]")).toBeAttached();
    await grace.getByLabel("Work email").fill(`grace@${domain}`);
    await grace.getByRole("button", { name: "Continue" }).click();

    // At the identity provider: its own log-in page, then consent.
    await expect(grace).toHaveURL(new RegExp(`^${idp.issuer}/interaction/`));
    await grace.locator('input[name="login"]').fill(`grace@${domain}`);
    await grace.locator('input[name="password"]').fill("anything");
    await grace.getByRole("button", { name: /sign-in/i }).click();
    await grace.getByRole("button", { name: /continue/i }).click();

    // Back in Chancery: signed in, in the Organization, as a Member.
    await expect(grace).toHaveURL(/\/admin$/);
    await expect(grace.getByText("Federated Inc").first()).toBeVisible();
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
