import { mkdirSync } from "node:fs";
import path from "node:path";
import AxeBuilder from "@axe-core/playwright";
import type { Page } from "@playwright/test";
import { adminApiKey, expect, open, signUp, test, uniqueEmail } from "./helpers";

/** Where the run leaves a screenshot of every page at every width (named in the README). */
const SHOTS = path.join(__dirname, "..", "screenshots");

/** A phone, a tablet and a laptop. */
const WIDTHS = [390, 768, 1280];

/**
 * Every page fits the window at each width (nothing to scroll sideways; a wide
 * table scrolls inside its own box), is photographed there, and axe finds no
 * accessibility violation in it.
 */
async function checkPage(page: Page, name: string, url: string): Promise<void> {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await open(page, url);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    // The innermost elements sticking out, to say what to fix.
    const culprits = await page.evaluate(() =>
      [...document.querySelectorAll("body *")]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .filter((e) => !e.parentElement?.closest(".table, .sidebar"))
        .filter((e) => ![...e.children].some((c) => c.getBoundingClientRect().right > window.innerWidth + 0.5))
        .slice(0, 5)
        .map((e) => `<${e.tagName.toLowerCase()} class="${e.className}">${(e.textContent ?? "").slice(0, 40)}`),
    );
    expect(overflow, `${name} at ${width} px is ${overflow} px too wide: ${culprits.join(" | ")}`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
  }
  const axe = await new AxeBuilder({ page }).analyze();
  const found = axe.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  expect(found, `axe on ${name}`).toEqual([]);
}

test("every page fits a phone, a tablet and a laptop, and axe finds nothing wrong", async ({ page }) => {
  test.setTimeout(180_000);
  mkdirSync(SHOTS, { recursive: true });
  await checkPage(page, "signup", "/signup");
  await checkPage(page, "login", "/login");

  const email = uniqueEmail("lena");
  await signUp(page, "Lena Layout", email);
  await checkPage(page, "onboarding", "/onboarding");
  await page.getByLabel("Organization name").fill("Layout Corporation International");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);

  // Something in every list: a workspace with a key, an invitation, a group, audit events.
  await page.getByLabel("New workspace").fill("Research and Development");
  await page.getByRole("button", { name: "Create workspace" }).click();
  const research = page.getByTestId("workspace-row").filter({ hasText: "Research and Development" });
  await research.getByRole("link").click();
  await expect(page).toHaveURL(/\/admin\/workspaces\/[0-9a-f-]{36}$/);
  const workspace = new URL(page.url()).pathname;
  await page.getByLabel("Key name").fill("a rather long key name for the nightly batch jobs");
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByTestId("new-key")).toBeVisible();
  await open(page, "/admin/members");
  await page.getByLabel("Invite by email").fill(uniqueEmail("a-colleague-with-a-long-address"));
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByTestId("invitation-row")).toHaveCount(1);
  await open(page, "/admin/groups");
  await page.getByLabel("New group").fill("Platform engineering");
  await page.getByRole("button", { name: "Create group" }).click();
  await page.getByRole("link", { name: "Platform engineering" }).click();
  await expect(page).toHaveURL(/\/admin\/groups\/[0-9a-f-]{36}$/);
  const group = new URL(page.url()).pathname;

  for (const [name, url] of [
    ["workspaces", "/admin"],
    ["workspace", workspace],
    ["members", "/admin/members"],
    ["groups", "/admin/groups"],
    ["group", group],
    ["audit-log", "/admin/audit-log"],
    ["billing", "/admin/billing"],
    ["usage", "/admin/usage"],
    ["settings", "/admin/settings"],
    ["account", "/account"],
  ]) {
    await checkPage(page, name, url);
  }

  await open(page, "/admin");
  await adminApiKey(page, email, "Layout Corporation International", "automation");
  for (const [name, url] of [
    ["backoffice-members", "/backoffice/members"],
    ["backoffice-organizations", "/backoffice/organizations"],
    ["backoffice-api-keys", "/backoffice/api-keys"],
  ]) {
    await checkPage(page, name, url);
  }
});
