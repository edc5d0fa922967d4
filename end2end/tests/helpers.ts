import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { test as base, expect, type Page } from "@playwright/test";

/**
 * Playwright's `test`, failing any journey in which a page threw: a hydration
 * mismatch panics the wasm and leaves a page that looks right but is dead.
 */
export const test = base.extend<{ pageErrors: void; clientAddress: void }>({
  /**
   * Each journey is another person on another machine: the server (started with
   * CHANCERY_TRUSTED_PROXIES=1) sees its own client address, as behind a proxy,
   * so per-address throttles (20 open sign-ups an hour) count journeys apart.
   */
  clientAddress: [
    async ({ context }, use) => {
      const octet = () => Math.floor(Math.random() * 254) + 1;
      await context.setExtraHTTPHeaders({ "X-Forwarded-For": `198.18.${octet()}.${octet()}` });
      await use();
    },
    { auto: true },
  ],
  pageErrors: [
    async ({ context }, use) => {
      const errors: string[] = [];
      const watch = (page: Page) => page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.message}`));
      context.pages().forEach(watch);
      context.on("page", watch);
      await use();
      expect(errors, "errors thrown in the browser").toEqual([]);
    },
    { auto: true },
  ],
});
export { expect };

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

/** Answers the open confirmation dialog with its confirming button, `button`. */
export async function confirm(page: Page, button: string): Promise<void> {
  await page.getByRole("dialog").getByRole("button", { name: button, exact: true }).click();
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

/** Opens the link emailed at sign-up to `email` and confirms the address; back to where `page` was. */
export async function confirmEmail(page: Page, email: string): Promise<void> {
  const back = page.url();
  await open(page, emailedLink(email, "/verify-email/"));
  await page.getByRole("button", { name: "Confirm my address" }).click();
  await expect(page.getByRole("status")).toHaveText("Your email address is confirmed.");
  await open(page, back);
}

/** The platform operator's CLI, against the database the server under test uses. */
export function operator(...args: string[]): string {
  const bin = process.env.CHANCERY_BIN;
  if (!bin || !process.env.DATABASE_URL) throw new Error("CHANCERY_BIN and DATABASE_URL must be set (scripts/test.sh does)");
  return execFileSync(bin, args, { env: { ...process.env, RUST_LOG: "warn" } }).toString();
}

/** The invitation link last emailed to `email`, read from the outbox as an operator would. */
/** Links the Organization open on `page` to a new Enterprise Account that
 * `adminEmail` administers, and makes an Admin API key for it in the
 * Backoffice: the key, shown once. */
export async function adminApiKey(page: Page, adminEmail: string, orgName: string, keyName: string): Promise<string> {
  const orgId = (await page.getByTestId("org-id").textContent())!.trim();
  operator("enterprise", "create", "--name", `${orgName} Group`, "--org", orgId, "--admin", adminEmail);
  await open(page, "/backoffice/api-keys");
  await page.getByLabel("Name").fill(keyName);
  await page.getByLabel("Organization").selectOption({ label: orgName });
  await page.getByRole("button", { name: "Create Key" }).click();
  return (await page.getByTestId("new-key").textContent())!.trim();
}

export function invitationLink(email: string): string {
  return emailedLink(email, "/invite/");
}

/** The path of the link under `path` in the last email to `email`, read from the outbox as an operator would. */
export function emailedLink(email: string, path: string): string {
  const outbox = operator("outbox", "--limit", "50");
  const message = outbox.split("To: ").find((m) => m.startsWith(email));
  const link = message?.split(/\s+/).find((word) => /^https?:\/\//.test(word) && word.includes(path));
  if (!link) throw new Error(`no ${path} link for ${email} in the outbox:\n${outbox}`);
  return new URL(link).pathname;
}

/** Ada signs up and creates "Federated Inc", whose `domain` the operator verifies; its id. */
export async function verifiedOrganization(page: Page, domain: string): Promise<string> {
  await signUp(page, "Ada Admin", `ada@${domain}`);
  await confirmEmail(page, `ada@${domain}`);
  await page.getByLabel("Organization name").fill("Federated Inc");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  const orgId = (await page.getByTestId("org-id").textContent())!.trim();
  operator("domains", "verify", "--org", orgId, "--domain", domain);
  return orgId;
}

/** In the Admin Panel: workspace `workspace`, granted to group `group` (made here, empty). */
export async function workspaceForGroup(page: Page, workspace: string, group: string): Promise<void> {
  await open(page, "/admin");
  await page.getByLabel("New workspace").fill(workspace);
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(page.getByTestId("workspace-row").filter({ hasText: workspace })).toBeVisible();
  await open(page, "/admin/groups");
  await page.getByLabel("New group").fill(group);
  await page.getByRole("button", { name: "Create group" }).click();
  await page.getByTestId("group-row").getByRole("link", { name: group }).click();
  await expect(page.getByTestId("group-name")).toHaveText(group);
  await page.getByLabel("Grant a workspace").selectOption({ label: workspace });
  await page.getByRole("button", { name: "Grant access" }).click();
  await expect(page.getByTestId("group-workspace-row")).toContainText(workspace);
}

/** Another Chancery of the journey's own (its own SQLite database), started with `env`; stop it with `kill()`. */
export async function startChancery(env: Record<string, string>): Promise<{ url: string; kill: () => void }> {
  const bin = process.env.CHANCERY_BIN;
  if (!bin) throw new Error("CHANCERY_BIN must be set (scripts/test.sh does)");
  const dir = mkdtempSync(path.join(tmpdir(), "chancery-journey-"));
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const child = spawn(bin, ["serve"], {
    stdio: "ignore",
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${dir}/chancery.db?mode=rwc`,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: path.join(__dirname, "..", "..", "target", "site"),
      CHANCERY_SPOOL_DIR: path.join(dir, "spool"),
      CHANCERY_SECRET_KEY_FILE: path.join(dir, "secret.key"),
      RUST_LOG: "warn",
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  for (let tries = 0; ; tries++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      if (tries > 100) throw new Error(`the Chancery at ${url} did not start`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, kill: () => child.kill() };
}
