import { execFileSync } from "node:child_process";
import path from "node:path";
import { adminApiKey, confirm, expect, open, signUp, test, uniqueEmail } from "./helpers";

test("the official openai and mistralai SDKs work against keys an Admin makes", async ({ page }) => {
  const email = uniqueEmail("sam");
  await signUp(page, "Sam Sdk", email);
  await page.getByLabel("Organization name").fill("SDK Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  // An Admin API key, for the SDK's service accounts.
  const adminKey = await adminApiKey(page, email, "SDK Co", "sdk");
  await open(page, "/admin/billing");
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry").fill("12/30");
  await page.getByRole("button", { name: "Save card" }).click();
  await expect(page.getByTestId("billing-status")).toContainText("Billing is active");

  // Three keys of the Default workspace: any model; one model only; one request a minute.
  await open(page, "/admin");
  await page.getByTestId("workspace-row").getByRole("link").click();
  await expect(page).toHaveURL(/\/admin\/workspaces\/[0-9a-f-]{36}$/);
  const makeKey = async (name: string, models: string, perMinute: string) => {
    await page.getByLabel("Key name").fill(name);
    await page.getByLabel("Key models").fill(models);
    await page.getByLabel("Key requests per minute").fill(perMinute);
    await page.getByRole("button", { name: "Create key" }).click();
    await expect(page.getByTestId("new-key").locator("..")).toContainText(name);
    return (await page.getByTestId("new-key").textContent())!.trim();
  };
  const keys = {
    CHANCERY_KEY: await makeKey("any", "", ""),
    CHANCERY_KEY_RESTRICTED: await makeKey("small", "mistral-small-latest", ""),
    CHANCERY_KEY_LIMITED: await makeKey("limited", "", "1"),
  };

  // A service account made on the page, with a key of its own (shown once).
  await page.getByLabel("Account name").fill("page-bot");
  await page.getByRole("button", { name: "Create service account" }).click();
  const bot = page.getByTestId("service-account-row").filter({ hasText: "page-bot" });
  await expect(bot).toContainText("Member");
  await bot.getByRole("button", { name: "Make key" }).click();
  await expect(page.getByTestId("new-key").last().locator("..")).toContainText("page-bot");
  const botKey = (await page.getByTestId("new-key").last().textContent())!.trim();
  const bearer = { Authorization: `Bearer ${botKey}` };
  await expect.poll(async () => (await page.request.get("/v1/whoami", { headers: bearer })).status()).toBe(200);
  const who = await (await page.request.get("/v1/whoami", { headers: bearer })).json();
  expect(who.principal).toMatchObject({ principal_type: "service_account", name: "page-bot" });
  // Deleted, its key stops within a second.
  await bot.getByRole("button", { name: "Delete" }).click();
  await confirm(page, "Delete service account");
  await expect(bot).toHaveCount(0);
  await expect.poll(async () => (await page.request.get("/v1/whoami", { headers: bearer })).status()).toBe(401);
  for (const key of Object.values(keys)) {
    await expect
      .poll(async () => (await page.request.get("/v1/models", { headers: { Authorization: `Bearer ${key}` } })).status())
      .toBe(200);
  }

  const python = path.join(__dirname, "..", ".venv", "bin", "python");
  const script = path.join(__dirname, "..", "sdk", "check.py");
  let report: string;
  try {
    report = execFileSync(python, [script, new URL(page.url()).origin], { env: { ...process.env, ...keys, CHANCERY_ADMIN_KEY: adminKey } }).toString();
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`an SDK check failed:\n${stdout?.toString() ?? err}\n${stderr?.toString() ?? ""}`);
  }
  expect(report).toContain("every check passed");
  expect(report).not.toContain("FAILED");
});
