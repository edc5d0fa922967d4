import { execFileSync } from "node:child_process";
import path from "node:path";
import { confirm, expect, open, test, verifiedOrganization } from "./helpers";

/** The SCIM compliance checker (scim2-tester, installed by scripts/setup.sh --test) against this Chancery. */
function scimCompliance(baseUrl: string, token: string): string {
  const python = path.join(__dirname, "..", ".venv", "bin", "python");
  const script = path.join(__dirname, "..", "scim", "check.py");
  try {
    return execFileSync(python, [script, baseUrl], { env: { ...process.env, SCIM_TOKEN: token } }).toString();
  } catch (err) {
    const failed = err as { stdout?: Buffer };
    throw new Error(`scim2-tester found problems:\n${failed.stdout?.toString() ?? err}`);
  }
}

test("an Admin connects the identity provider, which provisions, groups and deprovisions people", async ({ page }) => {
  const domain = `prov${Date.now()}.example.com`;
  await verifiedOrganization(page, domain);
  const origin = new URL(page.url()).origin;

  // Settings: a token for the identity provider, shown once, with where to send it.
  await open(page, "/admin/settings");
  await expect(page.getByTestId("scim-base-url")).toHaveText(`${origin}/scim/v2`);
  await page.getByLabel("Token name").fill("Okta");
  await page.getByRole("button", { name: "Create SCIM token" }).click();
  const token = (await page.getByTestId("new-key").textContent())!.trim();
  expect(token).toMatch(/^chy_scim_/);
  await expect(page.getByTestId("scim-token-row")).toContainText("Okta");
  await expect(page.getByTestId("scim-token-row")).not.toContainText(token);

  // The SCIM service passes the compliance checker.
  const report = scimCompliance(origin, token);
  expect(report).toMatch(/scim2-tester: .*\d+ success/);
  expect(report).not.toMatch(/^(ERROR|CRITICAL)/m);

  // As Okta does: a person, then a group with her in it.
  const scim = async (method: string, resource: string, body?: unknown) => {
    const response = await fetch(`${origin}/scim/v2${resource}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/scim+json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: response.status === 204 ? null : await response.json() };
  };
  const grace = await scim("POST", "/Users", {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
    userName: `grace@${domain}`,
    name: { givenName: "Grace", familyName: "Hopper" },
    emails: [{ primary: true, value: `grace@${domain}`, type: "work" }],
    active: true,
  });
  expect(grace.status).toBe(201);
  const group = await scim("POST", "/Groups", { displayName: "Compilers", members: [{ value: grace.body.id }] });
  expect(group.status).toBe(201);

  await open(page, "/admin/members");
  await expect(page.getByRole("row").filter({ hasText: `grace@${domain}` })).toContainText("Grace Hopper");

  // The group is the identity provider's: the Admin decides what it grants, not its name or members.
  await open(page, "/admin/groups");
  const row = page.getByTestId("group-row").filter({ hasText: "Compilers" });
  await expect(row).toContainText("Identity provider");
  await row.getByRole("link", { name: "Compilers" }).click();
  await expect(page.getByTestId("group-managed")).toBeVisible();
  await expect(page.getByTestId("group-member-row")).toContainText(`grace@${domain}`);
  await expect(page.getByRole("button", { name: "Save", exact: true })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Delete group" })).toHaveCount(0);
  await expect(page.getByTestId("group-member-row").getByRole("button", { name: "Remove" })).toHaveCount(0);
  await page.getByLabel("Grant a workspace").selectOption({ label: "Default" });
  await page.getByRole("button", { name: "Grant access" }).click();
  await expect(page.getByTestId("group-workspace-row")).toContainText("Default");

  // Okta deactivates her: she is no member any more, and out of the group.
  const off = await scim("PATCH", `/Users/${grace.body.id}`, {
    schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    Operations: [{ op: "replace", value: { active: false } }],
  });
  expect(off.status).toBe(200);
  await page.reload();
  await expect(page.getByTestId("group-member-row")).toHaveCount(0);
  await open(page, "/admin/members");
  await expect(page.getByRole("row").filter({ hasText: `grace@${domain}` })).toHaveCount(0);

  // Revoking the token cuts the identity provider off.
  await open(page, "/admin/settings");
  await page.getByTestId("scim-token-row").getByRole("button", { name: "Revoke" }).click();
  await confirm(page, "Revoke token");
  await expect(page.getByTestId("scim-token-row")).toContainText("Revoked");
  expect((await scim("GET", "/Users")).status).toBe(401);
});
