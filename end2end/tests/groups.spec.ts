import { PASSWORD, confirm, expect, invitationLink, open, signUp, test, uniqueEmail } from "./helpers";

test("an Admin gives a colleague a workspace through a group", async ({ page, browser }) => {
  await signUp(page, "Ada Admin", uniqueEmail("ada"));
  await page.getByLabel("Organization name").fill("Grouped");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await page.getByLabel("New workspace").fill("Lab");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(page.getByTestId("workspace-row").filter({ hasText: "Lab" })).toBeVisible();

  // A colleague joins as a Member and sees only the Default workspace.
  await page.getByRole("link", { name: "Members" }).click();
  const grace = uniqueEmail("grace");
  await page.getByLabel("Invite by email").fill(grace);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByRole("status")).toHaveText("Invitation sent. It is valid for 7 days.");
  const theirs = await browser.newContext();
  const them = await theirs.newPage();
  await open(them, invitationLink(grace));
  await them.getByLabel("Name").fill("Grace Hopper");
  await them.getByLabel("Password").fill(PASSWORD);
  await them.getByRole("button", { name: "Create account and join" }).click();
  await expect(them).toHaveURL(/\/admin$/);
  await expect(them.getByTestId("workspace-row")).toHaveText(["Default"].map((n) => new RegExp(n)));
  await expect(them.getByRole("link", { name: "Groups" })).toHaveCount(0);

  // The Admin makes a group, puts the colleague in it, and grants it Lab.
  await page.getByRole("link", { name: "Groups" }).click();
  await expect(page).toHaveURL(/\/admin\/groups$/);
  await page.getByLabel("New group").fill("Researchers");
  await page.getByRole("button", { name: "Create group" }).click();
  await page.getByTestId("group-row").getByRole("link", { name: "Researchers" }).click();
  await expect(page.getByTestId("group-name")).toHaveText("Researchers");
  await page.getByLabel("Add a member").fill(grace);
  await page.getByRole("button", { name: "Add to group" }).click();
  await expect(page.getByTestId("group-member-row")).toContainText(grace);
  await page.getByLabel("Grant a workspace").selectOption({ label: "Lab" });
  await page.getByRole("button", { name: "Grant access" }).click();
  const grant = page.getByTestId("group-workspace-row");
  await expect(grant).toContainText("Lab");
  await expect(grant).toContainText("Member");

  // The colleague now reaches Lab, through the group.
  await them.reload();
  await expect(them.getByTestId("workspace-row").filter({ hasText: "Lab" })).toBeVisible();

  // Through an Organization group that holds Researchers, she becomes a Billing user too.
  await open(them, "/admin/billing");
  await expect(them.getByTestId("billing-status")).toHaveCount(0);
  await page.getByRole("link", { name: "← All groups" }).click();
  await page.getByLabel("New group").fill("Finance");
  await page.getByLabel("Grants").selectOption({ label: "An Organization role" });
  await page.getByRole("button", { name: "Create group" }).click();
  await expect(page.getByTestId("group-row").filter({ hasText: "Finance" })).toContainText("No Organization role yet");
  await page.getByTestId("group-row").getByRole("link", { name: "Finance" }).click();
  await expect(page.getByTestId("group-name")).toHaveText("Finance");
  await page.getByTestId("group-organization-role").selectOption("billing");
  await page.getByRole("button", { name: "Save role" }).click();
  await expect(page.getByTestId("group-organization-role")).toHaveValue("billing");
  await page.getByLabel("Nest a group").selectOption({ label: "Researchers" });
  await page.getByRole("button", { name: "Nest group" }).click();
  await expect(page.getByTestId("nested-group-row")).toContainText("Researchers");
  await them.reload();
  await expect(them.getByTestId("billing-status")).toBeVisible();
  await open(them, "/admin");

  // Deleting Researchers takes both away again: Lab, and the role that came through it.
  await page.getByTestId("nested-group-row").getByRole("link", { name: "Researchers" }).click();
  await expect(page.getByTestId("group-parents")).toContainText("Finance");
  await page.getByRole("button", { name: "Delete group" }).click();
  await confirm(page, "Delete group");
  await expect(page).toHaveURL(/\/admin\/groups$/);
  await expect(page.getByTestId("group-row")).toHaveCount(1);
  await them.reload();
  await expect(them.getByTestId("workspace-row")).toHaveCount(1);
  await open(them, "/admin/billing");
  await expect(them.getByTestId("billing-status")).toHaveCount(0);
  await theirs.close();
});
