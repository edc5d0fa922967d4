import { expect, open, operator, signUp, test, uniqueEmail } from "./helpers";

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
  await expect(nojs.getByRole("alert")).toContainText("Enter a whole number");
  await expect(nojs.getByTestId("new-key")).toHaveCount(0);
  await expect(nojs.getByTestId("api-key-row").filter({ hasText: "refused" })).toHaveCount(0);

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
