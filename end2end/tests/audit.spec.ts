import { expect, signUp, test, uniqueEmail } from "./helpers";

test("an Admin reads and filters the audit log, and exports what they see", async ({ page }) => {
  await signUp(page, "Ada", uniqueEmail("auditor"));
  await page.getByLabel("Organization name").fill("Audited Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);

  await page.getByRole("link", { name: "Audit log" }).click();
  await expect(page).toHaveURL(/\/admin\/audit-log$/);
  await expect(page.getByTestId("audit-row")).toHaveCount(2);
  await expect(page.getByTestId("audit-row").first()).toContainText("workspace.create");

  await page.getByLabel("Action").fill("organization.");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/action=organization\./);
  await expect(page.getByTestId("audit-row")).toHaveCount(1);
  await expect(page.getByTestId("audit-row")).toContainText("organization.create");
  await expect(page.getByTestId("audit-total")).toHaveText("1 event(s)");

  const exportLink = page.getByRole("link", { name: "Export CSV" });
  await expect(exportLink).toHaveAttribute("href", "/admin/audit-log.csv?action=organization.");
  const download = await Promise.all([page.waitForEvent("download"), exportLink.click()]).then(([d]) => d);
  const csv = await (await download.createReadStream()).toArray().then((chunks) => Buffer.concat(chunks).toString());
  expect(csv.split("\r\n")[1]).toContain("organization.create");
});
