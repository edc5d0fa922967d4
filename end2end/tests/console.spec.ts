import AxeBuilder from "@axe-core/playwright";
import { confirm, expect, invitationLink, open, operator, signUp, test, uniqueEmail } from "./helpers";

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

test("a refusal sits by its field until the next try, and a form that worked is emptied", async ({ page }) => {
  await signUp(page, "Fay", uniqueEmail("fay"));
  await page.getByLabel("Organization name").fill("Fields Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);

  // The field says it is invalid and points at the message, which sits in its own form.
  await open(page, "/admin/billing");
  const card = page.getByLabel("Card number");
  await card.fill("4242 4242 4242 4241");
  await page.getByLabel("Expiry").fill("12/30");
  await page.getByRole("button", { name: "Save card" }).click();
  await expect(card).toHaveAttribute("aria-invalid", "true");
  const messageId = (await card.getAttribute("aria-describedby"))!;
  const message = page.locator(`[id="${messageId}"]`);
  await expect(message).toHaveText("This card number is not valid: check the digits.");
  await expect(page.locator("form", { has: card }).locator(`[id="${messageId}"]`)).toHaveCount(1);
  await expect(page.getByRole("alert")).toHaveCount(1);
  await expect(page.getByLabel("Expiry")).not.toHaveAttribute("aria-invalid");
  const axe = await new AxeBuilder({ page }).analyze();
  expect(axe.violations.map((v) => v.id)).toEqual([]);

  // Fixed: the message goes, and the card number does not stay in the field.
  await card.fill("4242 4242 4242 4242");
  await page.getByRole("button", { name: "Save card" }).click();
  await expect(page.getByTestId("billing-status")).toContainText("Billing is active");
  await expect(message).toHaveCount(0);
  await expect(card).not.toHaveAttribute("aria-invalid");
  await expect(card).toHaveValue("");
  await expect(page.getByLabel("Expiry")).toHaveValue("");

  // A name taken: said under the name; the next workspace made clears it and the form.
  await open(page, "/admin");
  const name = page.getByLabel("New workspace");
  await name.fill("default");
  await page.getByLabel("Description").fill("Second try");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(name).toHaveAttribute("aria-invalid", "true");
  await expect(page.locator(`[id="${await name.getAttribute("aria-describedby")}"]`)).toContainText(
    'A workspace named "default" already exists',
  );
  await expect(page.getByLabel("Description")).toHaveValue("Second try");
  await name.fill("Research");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(page.getByTestId("workspace-row").filter({ hasText: "Research" })).toHaveCount(1);
  await expect(name).not.toHaveAttribute("aria-invalid");
  await expect(page.getByRole("alert")).toHaveCount(0);
  await expect(name).toHaveValue("");
  await expect(page.getByLabel("Description")).toHaveValue("");
});

test("the sidebar groups its sections, detail pages lead back, and a person in two Organizations switches", async ({
  page,
  browser,
}) => {
  const ada = uniqueEmail("ada");
  await signUp(page, "Ada", ada);
  await page.getByLabel("Organization name").fill("First Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);

  // The headings the product documents use, each with its sections.
  const nav = page.getByRole("navigation", { name: "Chancery" });
  const group = (name: string) => nav.getByRole("group", { name });
  await expect(group("Manage").getByRole("link")).toHaveText(["Workspaces"]);
  await expect(group("Administration").getByRole("link")).toHaveText(["Members", "Groups", "Settings", "Audit log"]);
  await expect(group("Subscriptions").getByRole("link")).toHaveText(["Billing", "Usage"]);

  // A workspace's page is titled by the workspace and leads back to the list.
  await page.getByRole("link", { name: "Default" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Default");
  await expect(page).toHaveTitle(/^Default · Chancery$/);
  await page.getByTestId("back-to-list").click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("First Co");
  // Only one Organization: nothing to switch to.
  await expect(page.getByTestId("org-switcher")).toHaveCount(0);

  // Bob runs Second Co, and is invited to First Co.
  const bobs = await browser.newContext();
  const bob = await bobs.newPage();
  const bobEmail = uniqueEmail("bob");
  await signUp(bob, "Bob", bobEmail);
  await bob.getByLabel("Organization name").fill("Second Co");
  await bob.getByRole("button", { name: "Create organization" }).click();
  await expect(bob).toHaveURL(/\/admin$/);
  await open(page, "/admin/members");
  await page.getByLabel("Invite by email").fill(bobEmail);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByRole("status")).toHaveText("Invitation sent. It is valid for 7 days.");
  await open(bob, invitationLink(bobEmail));
  await bob.getByRole("button", { name: "Accept invitation" }).click();
  await expect(bob).toHaveURL(/\/admin$/);
  await expect(bob.getByTestId("org-name")).toHaveText("First Co");

  // He switches to Second Co and back, from wherever he is.
  await open(bob, "/admin/workspaces/" + (await bob.getByTestId("workspace-row").first().getByRole("link").getAttribute("href"))!.split("/").pop());
  await bob.getByTestId("org-switcher").selectOption({ label: "Second Co" });
  await bob.getByRole("button", { name: "Switch" }).click();
  await expect(bob).toHaveURL(/\/admin$/);
  await expect(bob.getByTestId("org-name")).toHaveText("Second Co");
  await expect(bob.getByRole("heading", { level: 1 })).toHaveText("Second Co");
  await expect(bob.getByTestId("org-switcher").locator("option")).toHaveText(["First Co"]);
  await bob.getByRole("button", { name: "Switch" }).click();
  await expect(bob.getByTestId("org-name")).toHaveText("First Co");
  await bobs.close();
});

test("the audit log names targets, lists details in words and refuses a range that ends before it starts", async ({ page }) => {
  await signUp(page, "Ada", uniqueEmail("reader"));
  await page.getByLabel("Organization name").fill("Readable Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await page.getByLabel("New workspace").fill("Lab");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.getByTestId("workspace-row").getByRole("link", { name: "Lab" }).click();
  const workspaceId = page.url().split("/").pop()!;
  await page.getByLabel("Name", { exact: true }).fill("Research");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await expect(page.getByTestId("workspace-name")).toHaveText("Research");

  await open(page, "/admin/audit-log?action=workspace.update");
  const row = page.getByTestId("audit-row");
  await expect(row).toHaveCount(1);
  // The target by its name now, its id on hover; the change as before → after.
  const target = row.getByTestId("audit-target").getByText("Research");
  await expect(target).toHaveAttribute("title", `workspace ${workspaceId}`);
  await expect(row.getByTestId("audit-facts")).toContainText("Lab → Research");
  await expect(row).not.toContainText("{");

  await page.getByLabel("From", { exact: true }).fill("2026-03-02");
  await page.getByLabel("To", { exact: true }).fill("2026-03-01");
  await page.getByRole("button", { name: "Filter" }).click();
  // The address keeps the fields filled in, and nothing else.
  await expect(page).toHaveURL(/\/admin\/audit-log\?action=workspace\.update&from=2026-03-02&to=2026-03-01$/);
  await expect(page.getByRole("alert")).toHaveText("The end date is before the start date.");
  await expect(page.getByTestId("audit-row")).toHaveCount(0);
});
