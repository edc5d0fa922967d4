import { confirm, expect, signUp, test, uniqueEmail } from "./helpers";

test("an Admin creates a workspace, renames it and archives it; the Default one stays", async ({ page }) => {
  await signUp(page, "Wanda", uniqueEmail("wanda"));
  await page.getByLabel("Organization name").fill("Workspace Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);

  await page.getByLabel("New workspace").fill("Research");
  await page.getByLabel("Icon").fill("🔬");
  await page.getByLabel("Description", { exact: true }).fill("Experiments");
  await page.getByRole("button", { name: "Create workspace" }).click();
  const research = page.getByTestId("workspace-row").filter({ hasText: "Research" });
  await expect(research).toContainText("Experiments");
  await expect(page.getByTestId("workspace-row")).toHaveCount(2);

  await research.getByRole("link").click();
  await expect(page).toHaveURL(/\/admin\/workspaces\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId("workspace-name")).toHaveText("🔬 Research");
  await expect(page.getByTestId("workspace-member-row")).toContainText("Wanda");
  await expect(page.getByTestId("workspace-member-row")).toContainText("Admin");

  await page.getByLabel("Name", { exact: true }).fill("Research Lab");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await expect(page.getByTestId("workspace-name")).toHaveText("🔬 Research Lab");

  await page.getByRole("button", { name: "Archive workspace" }).click();
  await confirm(page, "Archive workspace");
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByTestId("workspace-row")).toHaveCount(1);
  await expect(page.getByTestId("workspace-row")).toContainText("Default");

  // Archived, it is listed apart, read-only, and restorable as it was.
  const archivedRow = page.getByTestId("archived-workspace-row");
  await expect(archivedRow).toHaveCount(1);
  await expect(archivedRow).toContainText("Research Lab");
  await archivedRow.getByRole("link").click();
  await expect(page.getByTestId("workspace-archived")).toBeVisible();
  await expect(page.getByRole("button", { name: "Save", exact: true })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Archive workspace" })).toHaveCount(0);
  await page.getByRole("button", { name: "Restore workspace" }).click();
  await expect(page.getByTestId("workspace-archived")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Archive workspace" })).toBeVisible();
  await page.getByRole("button", { name: "Archive workspace" }).click();
  await confirm(page, "Archive workspace");
  await expect(page).toHaveURL(/\/admin$/);
  await page.getByTestId("archived-workspace-row").getByRole("button", { name: "Restore" }).click();
  await expect(page.getByTestId("workspace-row")).toHaveCount(2);
  await expect(page.getByTestId("archived-workspace-row")).toHaveCount(0);

  await page.getByTestId("workspace-row").getByRole("link", { name: "Default" }).click();
  await expect(page.getByText("The Default workspace includes everyone and cannot be archived.")).toBeVisible();
  await expect(page.getByRole("button", { name: "Archive workspace" })).toHaveCount(0);
});
