import { confirm, expect, open, operator, signUp, test, uniqueEmail } from "./helpers";

test("keys made before the page is interactive, or with JavaScript off, are shown once", async ({
  page,
  browser,
  request,
}) => {
  const email = uniqueEmail("nojs");
  await signUp(page, "Nora", email);
  await page.getByLabel("Organization name").fill("Static Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  const orgId = (await page.getByTestId("org-id").textContent())!.trim();
  operator("enterprise", "create", "--name", "Static Group", "--org", orgId, "--admin", email);

  // The same person, in a browser that runs no JavaScript: every form posts itself.
  const octet = () => Math.floor(Math.random() * 254) + 1;
  const plain = await browser.newContext({
    javaScriptEnabled: false,
    storageState: await page.context().storageState(),
    extraHTTPHeaders: { "X-Forwarded-For": `198.18.${octet()}.${octet()}` },
  });
  const nojs = await plain.newPage();
  await nojs.goto("/admin");
  await nojs.getByTestId("workspace-row").getByRole("link", { name: "Default" }).click();
  await expect(nojs).toHaveURL(/\/admin\/workspaces\/[0-9a-f-]{36}$/);
  const workspacePage = nojs.url();
  await nojs.getByLabel("Key name").fill("posted");
  await nojs.getByRole("button", { name: "Create key" }).click();
  await expect(nojs).toHaveURL(new RegExp(`^${workspacePage}\\??$`));
  await expect(nojs.getByText("Key “posted” created.")).toBeVisible();
  const key = (await nojs.getByTestId("new-key").textContent())!.trim();
  expect(key).toMatch(/^chy_ws_/);
  const row = nojs.getByTestId("api-key-row").filter({ hasText: "posted" });
  await expect(row).toContainText("Active");
  await expect(row).toContainText(key.slice(0, 20));
  // Shown this once: the page again no longer has it.
  await nojs.reload();
  await expect(nojs.getByTestId("new-key")).toHaveCount(0);
  await expect(nojs.getByTestId("api-key-row").filter({ hasText: "posted" })).toHaveCount(1);

  // A refused form comes back to its page, saying why.
  await nojs.getByLabel("Key name").fill("refused");
  await nojs.getByLabel("Key requests per minute").fill("many");
  await nojs.getByRole("button", { name: "Create key" }).click();
  // (Every form of this server function on the page shows it: the service accounts' too.)
  await expect(nojs.getByRole("alert").first()).toContainText("Enter a whole number");
  await expect(nojs.getByTestId("new-key")).toHaveCount(0);
  await expect(nojs.getByRole("cell", { name: "refused", exact: true })).toHaveCount(0);

  // An Admin API key in the Backoffice: shown once, and it works.
  await nojs.goto("/backoffice/api-keys");
  await nojs.getByLabel("Name").fill("Provisioning");
  await nojs.getByLabel("Organization").selectOption({ label: "Static Co" });
  await nojs.getByRole("button", { name: "Create Key" }).click();
  await expect(nojs).toHaveURL(/\/backoffice\/api-keys\??$/);
  const adminKey = (await nojs.getByTestId("new-key").textContent())!.trim();
  expect(adminKey).toMatch(/^chy_admin_/);
  const users = await request.get("/api/admin/users", { headers: { "x-api-key": adminKey } });
  expect(users.status()).toBe(200);
  await nojs.reload();
  await expect(nojs.getByTestId("new-key")).toHaveCount(0);
  await plain.close();
});

test("what cannot be undone is asked first, says what stops, and is reported done", async ({ page }) => {
  await signUp(page, "Dora", uniqueEmail("dora"));
  await page.getByLabel("Organization name").fill("Careful Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await page.getByTestId("workspace-row").getByRole("link", { name: "Default" }).click();
  await page.getByLabel("Key name").fill("prod-backend");
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByTestId("new-key")).toBeVisible();

  await open(page, "/admin/billing");
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry").fill("12/30");
  await page.getByRole("button", { name: "Save card" }).click();
  await expect(page.getByTestId("billing-status")).toContainText("Billing is active");

  // Asked, and told how many keys would stop; Cancel changes nothing.
  await page.getByRole("button", { name: "Remove payment method" }).click();
  const dialog = page.getByRole("dialog", { name: "Remove the payment method?" });
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText("the 1 API key of this Organization that works now will be refused (403)");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId("billing-status")).toContainText("Billing is active");

  await page.getByRole("button", { name: "Remove payment method" }).click();
  await confirm(page, "Remove payment method");
  await expect(page.getByRole("status")).toHaveText("Payment method removed: billing is inactive and API keys are refused.");
  await expect(page.getByTestId("billing-status")).toContainText("Billing is inactive");

  // Each row's button says whose it is; revoking a key asks, then says it is done.
  await open(page, "/admin");
  await page.getByTestId("workspace-row").getByRole("link", { name: "Default" }).click();
  const row = page.getByTestId("api-key-row").filter({ hasText: "prod-backend" });
  await row.getByRole("button", { name: "Revoke prod-backend" }).click();
  await expect(page.getByRole("dialog", { name: "Revoke prod-backend?" })).toContainText("stops working at once");
  await confirm(page, "Revoke key");
  await expect(page.getByRole("status")).toHaveText("Key revoked: it no longer works.");
  await expect(row).toContainText("Revoked");
});

test("a double-click makes one workspace, and names differ by more than case", async ({ page }) => {
  await signUp(page, "Dan", uniqueEmail("dan"));
  await page.getByLabel("Organization name").fill("Twice Co");
  await page.getByRole("button", { name: "Create organization" }).dblclick();
  await expect(page).toHaveURL(/\/admin$/);

  await page.getByLabel("New workspace").fill("Staging");
  await page.getByRole("button", { name: "Create workspace" }).dblclick();
  await expect(page.getByTestId("workspace-row").filter({ hasText: "Staging" })).toHaveCount(1);
  await page.getByLabel("New workspace").fill("staging");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(page.getByRole("alert")).toContainText("A workspace named \"staging\" already exists");
  await page.reload();
  await expect(page.getByTestId("workspace-row")).toHaveCount(2);
});
