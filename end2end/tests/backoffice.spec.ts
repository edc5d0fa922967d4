import { confirm, expect, open, operator, signUp, test, uniqueEmail } from "./helpers";

test("an Enterprise Account admin creates an Organization, promotes themself and makes a working Admin API key", async ({
  page,
  context,
  request,
}) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const email = uniqueEmail("ea-admin");
  await signUp(page, "Erin Admin", email);
  await page.getByLabel("Organization name").fill("Engines");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  const orgId = (await page.getByTestId("org-id").textContent())!.trim();

  operator("enterprise", "create", "--name", "Acme Group", "--org", orgId, "--admin", email);

  // The Admin Panel now leads to the Backoffice, which opens on its members.
  await open(page, "/admin");
  await page.getByRole("link", { name: "Backoffice" }).click();
  await expect(page).toHaveURL(/\/backoffice\/members$/);
  await expect(page.getByTestId("enterprise-name")).toHaveText("Acme Group");
  const me = page.getByTestId("member-row").filter({ hasText: email });
  await expect(me).toContainText("Engines");
  await expect(me).toContainText("Active");

  // Organizations: create one, then promote ourselves to its admin.
  await page.getByRole("link", { name: "Organizations" }).click();
  await expect(page).toHaveURL(/\/backoffice\/organizations$/);
  await page.getByLabel("New Organization").fill("Research");
  await page.getByRole("button", { name: "Create Organization" }).click();
  const research = page.getByTestId("org-row").filter({ hasText: "Research" });
  await expect(research).toContainText("0");
  await research.getByRole("button", { name: "Promote to admin" }).click();
  await expect(research.getByRole("button", { name: "Open Admin Panel" })).toBeVisible();
  await expect(research).toContainText("1");

  // API Keys: create one for Research, copy it, and it is shown only this once.
  await page.getByRole("link", { name: "API Keys" }).click();
  await expect(page).toHaveURL(/\/backoffice\/api-keys$/);
  await page.getByLabel("Name").fill("Provisioning");
  await page.getByLabel("Organization").selectOption({ label: "Research" });
  await page.getByRole("button", { name: "Create Key" }).click();
  const shown = (await page.getByTestId("new-key").textContent())!.trim();
  expect(shown).toMatch(/^chy_admin_/);
  await page.getByRole("button", { name: "Copy" }).click();
  await expect(page.getByRole("button", { name: "Copied" })).toBeVisible();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(copied).toBe(shown);
  const row = page.getByTestId("key-row").filter({ hasText: "Provisioning" });
  await expect(row).toContainText("Research");
  await expect(row).not.toContainText(shown);

  // The copied key works on the Admin API.
  const roles = await request.get("/api/admin/roles", { headers: { "x-api-key": copied } });
  expect(roles.status()).toBe(200);
  const body = await roles.json();
  expect(body.organization_roles.map((r: { name: string }) => r.name)).toContain("organization_admin");

  await page.reload();
  await expect(page.getByTestId("new-key")).toHaveCount(0);
  // Its "Last used" cell now has a date.
  const lastUsed = page.getByTestId("key-row").filter({ hasText: "Provisioning" }).locator("td").nth(4);
  await expect(lastUsed).toContainText("UTC");

  // And the promotion opened Research's Admin Panel.
  await page.getByRole("link", { name: "Organizations" }).click();
  await page.getByTestId("org-row").filter({ hasText: "Research" }).getByRole("button", { name: "Open Admin Panel" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole("heading", { level: 1, name: "Research" })).toBeVisible();

  // Research's Admins see the Admin API keys that administer it, and cut one off.
  await page.getByRole("link", { name: "Settings" }).click();
  const orgKey = page.getByTestId("org-admin-key-row").filter({ hasText: "Provisioning" });
  await expect(orgKey).toContainText("Active");
  await expect(orgKey).not.toContainText(shown);
  await orgKey.getByRole("button", { name: "Revoke" }).click();
  await confirm(page, "Revoke key");
  await expect(orgKey).toContainText("Revoked");
  const refused = await request.get("/api/admin/roles", { headers: { "x-api-key": copied } });
  expect(refused.status()).toBe(401);
});

test("someone in no Enterprise Account is told so in the Backoffice", async ({ page }) => {
  await signUp(page, "Nobody", uniqueEmail("nobody"));
  await open(page, "/backoffice/members");
  await expect(page.getByText("You are not an admin of an Enterprise Account.")).toBeVisible();
});
