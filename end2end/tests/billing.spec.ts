import { PASSWORD, expect, invitationLink, open, signUp, test, uniqueEmail } from "./helpers";

test("a Billing user sees billing only, activates it with a card and sets a budget", async ({ page, browser }) => {
  await signUp(page, "Ada Admin", uniqueEmail("ada"));
  await page.getByLabel("Organization name").fill("Billed");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);

  await page.getByRole("link", { name: "Members" }).click();
  const bill = uniqueEmail("bill");
  const invite = page.locator("form", { has: page.getByLabel("Invite by email") });
  await invite.getByLabel("Invite by email").fill(bill);
  await invite.getByLabel("Member", { exact: true }).uncheck();
  await invite.getByLabel("Billing", { exact: true }).check();
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByRole("status")).toHaveText("Invitation sent. It is valid for 7 days.");

  const theirs = await browser.newContext();
  const them = await theirs.newPage();
  await open(them, invitationLink(bill));
  await them.getByLabel("Name").fill("Bill Payer");
  await them.getByLabel("Password").fill(PASSWORD);
  await them.getByRole("button", { name: "Create account and join" }).click();

  // The Admin Panel opens on Billing: a Billing user sees billing and usage only.
  await expect(them).toHaveURL(/\/admin\/billing$/);
  await expect(them.locator("nav a")).toHaveText(["Billing", "Usage"]);
  await expect(them.getByTestId("billing-status")).toContainText("Billing is inactive");

  await them.getByLabel("Card number").fill("4242 4242 4242 4241");
  await them.getByLabel("Expiry").fill("12/30");
  await them.getByRole("button", { name: "Save card" }).click();
  await expect(them.getByRole("alert")).toHaveText("This card number is not valid: check the digits.");
  await them.getByLabel("Card number").fill("4242 4242 4242 4242");
  await them.getByRole("button", { name: "Save card" }).click();
  await expect(them.getByTestId("billing-status")).toHaveText("Billing is active: Visa ending in 4242, expires 12/2030.");

  await them.getByLabel("Organization limit (USD)").fill("100");
  await them.getByRole("button", { name: "Save limit" }).click();
  await expect(them.getByTestId("org-spend")).toHaveText("This month: $0.00 of $100.00 (0%)");
  await them.getByLabel("Budget of Default").fill("250");
  await them.getByRole("button", { name: "Set" }).click();
  await expect(them.getByRole("alert")).toContainText("cannot exceed the organization's monthly limit of $100.00");
  await them.getByLabel("Budget of Default").fill("40");
  await them.getByRole("button", { name: "Set" }).click();
  await expect(them.getByTestId("workspace-budget-row")).toContainText("$0.00 of $40.00 (0%)");
  await theirs.close();
});
