import { expect, type Page } from "@playwright/test";

export const PASSWORD = "correct horse battery staple";

/** An address no other test (or earlier run) has used. */
export function uniqueEmail(who: string): string {
  return `${who}.${Date.now()}.${Math.floor(Math.random() * 1e6)}@example.com`;
}

/** Opens a page and waits until the wasm has hydrated it, so clicks reach live handlers. */
export async function open(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await expect(page.locator("body[data-hydrated]")).toBeAttached();
}

/** Signs up and waits to be asked for the organization's name. */
export async function signUp(page: Page, name: string, email: string): Promise<void> {
  await open(page, "/signup");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Work email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign up" }).click();
  await expect(page).toHaveURL(/\/onboarding$/);
}
