import { confirm, expect, open, operator, signUp, test, uniqueEmail } from "./helpers";

test("an Admin claims a domain, is shown its TXT record, and sees it verified by the operator", async ({ page }) => {
  const email = uniqueEmail("domains");
  await signUp(page, "Dora Admin", email);
  await page.getByLabel("Organization name").fill("Domains Inc");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  const orgId = (await page.getByTestId("org-id").textContent())!.trim();
  const domain = `d${Date.now()}.example`;

  await open(page, "/admin/settings");
  await page.getByLabel("Domain", { exact: true }).fill(` ${domain.toUpperCase()} `);
  await page.getByRole("button", { name: "Claim domain" }).click();
  const row = page.getByTestId("domain-row");
  await expect(row).toContainText(domain);
  await expect(row).toContainText("Waiting for its TXT record");
  await expect(row).toContainText(`_chancery-challenge.${domain}`);
  await expect(row).toContainText("chancery-domain-verification=");

  // Without public DNS, the operator verifies it from the CLI.
  operator("domains", "verify", "--org", orgId, "--domain", domain);
  await open(page, "/admin/settings");
  await expect(row).toContainText("Verified by the operator");
  await expect(row.getByRole("button", { name: "Verify" })).toHaveCount(0);

  await row.getByRole("button", { name: "Remove" }).click();
  await confirm(page, "Remove domain");
  await expect(page.getByText("No domain claimed yet.")).toBeVisible();
});
