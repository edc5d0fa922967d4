import { confirmEmail, emailedLink, expect, open, PASSWORD, signUp, test, uniqueEmail } from "./helpers";

const NEW_PASSWORD = "a brand new long passphrase";

async function logIn(page: import("@playwright/test").Page, email: string, password: string): Promise<void> {
  await open(page, "/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}

test("a forgotten password is reset from the emailed link; the old one stops working", async ({ page }) => {
  const email = uniqueEmail("ada");
  await signUp(page, "Ada Admin", email);
  await page.getByLabel("Organization name").fill("Forgetful Inc");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);

  await expect(page.locator("body[data-hydrated]")).toBeAttached();
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await expect(page).toHaveURL(/\/forgot-password$/);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Email me a link" }).click();
  await expect(page.getByRole("status")).toContainText("If an account uses that address, we have emailed it a link");

  // The link from the email (read from the outbox), a new password, and she is in.
  await open(page, emailedLink(email, "/reset-password/"));
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Save password and log in" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByTestId("org-name")).toHaveText("Forgetful Inc");

  // The old password no longer opens the account; the new one does.
  await page.getByRole("button", { name: "Log out" }).click();
  await logIn(page, email, PASSWORD);
  await expect(page.getByRole("alert")).toHaveText("Email or password is incorrect.");
  await logIn(page, email, NEW_PASSWORD);
  await expect(page).toHaveURL(/\/admin$/);
});

test("changing one's password logs out one's other browser", async ({ page, browser }) => {
  const email = uniqueEmail("ada");
  await signUp(page, "Ada Admin", email);
  await page.getByLabel("Organization name").fill("Careful Inc");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  const laptop = await (await browser.newContext()).newPage();
  await logIn(laptop, email, PASSWORD);
  await expect(laptop).toHaveURL(/\/admin$/);

  await page.getByRole("link", { name: /^Ada Admin/ }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.locator("body[data-hydrated]")).toBeAttached();
  await page.getByLabel("Current password").fill("not the current one at all");
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByRole("alert")).toHaveText("This is not your current password.");
  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByRole("status")).toHaveText("Password changed. You were logged out everywhere else.");

  // This browser goes on; the other one is logged out.
  await open(page, "/admin");
  await expect(page.getByTestId("org-name")).toHaveText("Careful Inc");
  await laptop.goto("/admin");
  await expect(laptop).toHaveURL(/\/login$/);
  await laptop.context().close();
});

test("a new account is asked to confirm its address until the emailed link is opened", async ({ page }) => {
  const email = uniqueEmail("grace");
  await signUp(page, "Grace Hopper", email);
  await page.getByLabel("Organization name").fill("Confirming Inc");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByTestId("unverified-email")).toContainText(`open the link we emailed to ${email}`);
  await page.getByRole("button", { name: "Send the link again" }).click();
  await expect(page.getByTestId("unverified-email")).toContainText("Sent.");

  await confirmEmail(page, email);
  await expect(page.getByTestId("org-name")).toHaveText("Confirming Inc");
  await expect(page.getByTestId("unverified-email")).toHaveCount(0);
});
