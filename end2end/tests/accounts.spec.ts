import { PASSWORD, expect, open, signUp, startChancery, test, uniqueEmail } from "./helpers";

test("sign up, name the organization, land in the Admin Panel, log out and back in", async ({ page }) => {
  const email = uniqueEmail("ada");
  await signUp(page, "Ada Lovelace", email);

  await expect(page).toHaveURL(/\/onboarding$/);
  await expect(page.getByRole("heading", { name: "Name your organization" })).toBeVisible();
  await page.getByLabel("Organization name").fill("Analytical Engines");
  await page.getByRole("button", { name: "Create organization" }).click();

  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole("heading", { level: 1, name: "Analytical Engines" })).toBeVisible();
  const workspaces = page.getByTestId("workspace-row");
  await expect(workspaces).toHaveCount(1);
  await expect(workspaces.first()).toContainText("Default");

  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  // Signed out for real: the Admin Panel sends us back to log in.
  await open(page, "/admin");
  await expect(page).toHaveURL(/\/login$/);

  await page.getByLabel("Email").fill(email.toUpperCase());
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByTestId("org-name")).toHaveText("Analytical Engines");
});

test("a wrong password shows an error and keeps the visitor on the log-in page", async ({ page }) => {
  const email = uniqueEmail("bob");
  await signUp(page, "Bob", email);
  await expect(page).toHaveURL(/\/onboarding$/);
  await page.context().clearCookies();

  await open(page, "/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("not the right password");
  await page.getByRole("button", { name: "Log in" }).click();

  await expect(page.getByRole("alert")).toHaveText("Email or password is incorrect.");
  await expect(page).toHaveURL(/\/login$/);
});

test("sign-up errors name the problem and keep what was typed", async ({ page }) => {
  await open(page, "/signup");
  await page.getByLabel("Name").fill("Carol");
  await page.getByLabel("Work email").fill(uniqueEmail("carol"));
  // Lift the browser's own minlength check so the server's rule answers.
  await page.getByLabel("Password").fill("short");
  await page.getByLabel("Password").evaluate((el) => el.removeAttribute("minlength"));
  await page.getByRole("button", { name: "Sign up" }).click();

  await expect(page.getByRole("alert")).toHaveText("Password must be at least 12 characters.");
  await expect(page.getByLabel("Name")).toHaveValue("Carol");
  await expect(page).toHaveURL(/\/signup$/);
});

test("where the operator made accounts invitation-only, the sign-up page says so instead of a form", async ({ page }) => {
  const inviteOnly = await startChancery({ CHANCERY_SIGNUP: "invite-only" });
  try {
    await page.goto(`${inviteOnly.url}/signup`);
    await expect(page.locator("body[data-hydrated]")).toBeAttached();
    await expect(page.getByRole("status")).toHaveText(
      "Accounts here are made by invitation: ask an Admin of your organization to invite you.",
    );
    await expect(page.getByLabel("Password")).toHaveCount(0);
    await page.getByRole("link", { name: "Log in" }).click();
    await expect(page).toHaveURL(`${inviteOnly.url}/login`);
  } finally {
    inviteOnly.kill();
  }
});
