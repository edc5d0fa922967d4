import { PASSWORD, expect, invitationLink, open, signUp, test, uniqueEmail } from "./helpers";

test("an Admin invites a colleague, who accepts in another browser and shows as Active", async ({ page, browser }) => {
  await signUp(page, "Ada Admin", uniqueEmail("ada"));
  await page.getByLabel("Organization name").fill("Invitational");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);

  await page.getByRole("link", { name: "Members" }).click();
  await expect(page).toHaveURL(/\/admin\/members$/);
  const colleague = uniqueEmail("colleague");
  await page.getByLabel("Invite by email").fill(colleague);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByRole("status")).toHaveText("Invitation sent. It is valid for 7 days.");
  const pending = page.getByTestId("invitation-row").filter({ hasText: colleague });
  await expect(pending).toContainText("Pending until");
  // By status: Pending is the invitations alone, Active the members alone.
  await page.getByLabel("Status").selectOption("Pending");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/status=pending/);
  await expect(pending).toHaveCount(1);
  await expect(page.getByTestId("member-row")).toHaveCount(0);
  await page.getByLabel("Status").selectOption("Active");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByTestId("member-row")).toHaveCount(1);
  await expect(page.getByTestId("invitation-row")).toHaveCount(0);
  await open(page, "/admin/members");

  // The colleague, in a browser of their own, follows the emailed link.
  const theirs = await browser.newContext();
  const them = await theirs.newPage();
  await open(them, invitationLink(colleague));
  await expect(them.getByText("You are invited to join Invitational as Member.")).toBeVisible();
  await them.getByLabel("Name").fill("Charles Colleague");
  await them.getByLabel("Password").fill(PASSWORD);
  await them.getByRole("button", { name: "Create account and join" }).click();
  await expect(them).toHaveURL(/\/admin$/);
  await expect(them.getByTestId("org-name")).toHaveText("Invitational");

  // A Member sees no Members page, and reaching it by address offers no actions.
  await expect(them.getByRole("link", { name: "Members" })).toHaveCount(0);
  await open(them, "/admin/members");
  await expect(them.getByRole("alert")).toHaveText("Only Admins of this organization can open this page.");
  await expect(them.getByRole("button", { name: "Send invitation" })).toHaveCount(0);
  await expect(them.getByRole("button", { name: "Remove" })).toHaveCount(0);
  await theirs.close();

  await page.reload();
  const row = page.getByTestId("member-row").filter({ hasText: colleague });
  await expect(row).toContainText("Charles Colleague");
  await expect(row).toContainText("Active");
  await expect(page.getByTestId("invitation-row")).toHaveCount(0);
});
