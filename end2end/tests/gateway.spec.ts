import { PASSWORD, confirm, expect, invitationLink, open, signUp, test, uniqueEmail } from "./helpers";

test("an Admin creates a workspace key, calls the gateway with it, hits a tiny budget and sees the usage", async ({ page }) => {
  await signUp(page, "Greta Gate", uniqueEmail("greta"));
  await page.getByLabel("Organization name").fill("Gateway Co");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);

  // The gateway serves only organizations whose billing is active.
  await page.locator("nav").getByRole("link", { name: "Billing" }).click();
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByLabel("Expiry").fill("12/30");
  await page.getByRole("button", { name: "Save card" }).click();
  await expect(page.getByTestId("billing-status")).toContainText("Billing is active");

  // Keys live 30 days at most here: one made without an expiry gets one.
  await page.locator("nav").getByRole("link", { name: "Settings" }).click();
  await page.getByLabel("Maximum lifetime (days)").fill("30");
  await page.getByRole("button", { name: "Save lifetime" }).click();
  await expect(page.getByText("Key lifetime saved.")).toBeVisible();

  await page.locator("nav").getByRole("link", { name: "Workspaces" }).click();
  await page.getByTestId("workspace-row").getByRole("link").click();
  await expect(page).toHaveURL(/\/admin\/workspaces\/[0-9a-f-]{36}$/);
  const workspacePage = new URL(page.url()).pathname;

  await page.getByLabel("Key name").fill("journey");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.getByTestId("new-key").textContent())?.trim() ?? "";
  expect(key).toMatch(/^chy_ws_/);
  // Columns: name, key, models, requests/min, created, last used, expiry, status.
  const lastUsed = page.getByTestId("api-key-row").filter({ hasText: "journey" }).locator("td").nth(5);
  await expect(lastUsed).toHaveText("Never");
  const expiry = page.getByTestId("api-key-row").filter({ hasText: "journey" }).locator("td").nth(6);
  await expect(expiry).not.toHaveText("Never");

  // Shown once: after a reload only the masked value is left.
  await open(page, workspacePage);
  await expect(page.getByTestId("api-key-row").filter({ hasText: "journey" })).toBeVisible();
  await expect(page.getByTestId("new-key")).toHaveCount(0);
  await expect(page.getByText(key)).toHaveCount(0);

  const auth = { Authorization: `Bearer ${key}` };
  // A new key reaches the gateway within a second.
  await expect
    .poll(async () => (await page.request.get("/v1/models", { headers: auth })).status(), { timeout: 5_000 })
    .toBe(200);
  const models = await (await page.request.get("/v1/models", { headers: auth })).json();
  expect(models.data.map((m: { id: string }) => m.id)).toContain("mistral-small-latest");

  const chat = () =>
    page.request.post("/v1/chat/completions", {
      headers: auth,
      data: { model: "mistral-small-latest", messages: [{ role: "user", content: "Hello there" }], max_tokens: 32 },
    });
  const answered = await chat();
  expect(answered.status()).toBe(200);
  expect((await answered.json()).usage.total_tokens).toBeGreaterThan(0);

  // Tokens per minute for one model: announced on each answer, enforced with a code of its own.
  await page.locator('select[name="model"]').selectOption("mistral-small-latest");
  await page.getByLabel("Tokens per minute").fill("1,000");
  await page.getByRole("button", { name: "Save model limits" }).click();
  await expect(page.getByTestId("model-token-limits")).toContainText("mistral-small-latest");
  await expect(page.getByTestId("model-token-limits")).toContainText("1000");
  await expect
    .poll(async () => (await chat()).headers()["x-ratelimit-limit-tokens"], { timeout: 5_000 })
    .toBe("1000");
  const tooBig = await page.request.post("/v1/chat/completions", {
    headers: auth,
    data: { model: "mistral-small-latest", messages: [{ role: "user", content: "Hello" }], max_tokens: 5_000 },
  });
  expect(tooBig.status()).toBe(429);
  expect((await tooBig.json()).error.code).toBe("tokens_per_minute_exceeded");

  // A budget of one micro-dollar is already spent: the next call is refused.
  await page.getByLabel("Monthly budget (USD)").fill("0.000001");
  await page.getByRole("button", { name: "Save budget" }).click();
  await expect(page.getByTestId("workspace-limits")).toContainText("of $0.000001");
  await expect.poll(async () => (await chat()).status(), { timeout: 5_000 }).toBe(429);
  const refused = await chat();
  expect((await refused.json()).error.code).toBe("workspace_spend_limit_exceeded");

  // The key shows its use, the workspace's page its usage, and the Usage page draws the spend.
  await expect(async () => {
    await open(page, workspacePage);
    await expect(lastUsed).not.toHaveText("Never", { timeout: 1_000 });
    await expect(page.getByTestId("workspace-usage")).toContainText("mistral-small-latest", { timeout: 1_000 });
  }).toPass({ timeout: 10_000 });
  await page.locator("nav").getByRole("link", { name: "Usage" }).click();
  await expect(page).toHaveURL(/\/admin\/usage$/);
  const chart = page.getByTestId("usage-chart");
  await expect(chart.locator("rect").first()).toBeAttached();
  await expect(chart.locator("rect title").first()).toContainText("Default");
  // A money axis from $0, hours under the bars, and a legend whose swatches show.
  await expect(chart.locator(".chart-y span").last()).toHaveText("$0.00");
  await expect(chart.getByTestId("usage-chart-ticks").locator("span")).toHaveCount(5);
  await expect(chart.getByTestId("usage-chart-ticks").locator("span").first()).toHaveText(/^\d\d:00$/);
  expect((await chart.locator(".swatch").first().boundingBox())!.width).toBeGreaterThan(5);
  await expect(page.getByTestId("usage-row")).toContainText(["Default"]);
  // The month's spend against the workspace's budget, in words and as a bar.
  await expect(page.getByTestId("usage-limits")).toContainText("Default: $0.");
  await expect(page.getByTestId("usage-limits").locator(".spend-fill")).toHaveCount(1);

  await page.getByLabel("Group by").selectOption("key");
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page).toHaveURL(/group=key/);
  await expect(page.getByTestId("usage-row")).toContainText(["journey"]);
});

test("a Member opens their workspace and makes a key of their own, without its settings; removing them ends it", async ({
  page,
  browser,
  request,
}) => {
  await signUp(page, "Ada Admin", uniqueEmail("ada"));
  await page.getByLabel("Organization name").fill("Self Service");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await page.locator("nav").getByRole("link", { name: "Members" }).click();
  const mia = uniqueEmail("mia");
  await page.getByLabel("Invite by email").fill(mia);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByRole("status")).toHaveText("Invitation sent. It is valid for 7 days.");

  const theirs = await browser.newContext();
  const them = await theirs.newPage();
  await open(them, invitationLink(mia));
  await them.getByLabel("Name").fill("Mia Member");
  await them.getByLabel("Password").fill(PASSWORD);
  await them.getByRole("button", { name: "Create account and join" }).click();
  await expect(them).toHaveURL(/\/admin$/);

  await them.getByTestId("workspace-row").getByRole("link").click();
  await expect(them.getByTestId("workspace-name")).toHaveText("Default");
  await expect(them.getByRole("button", { name: "Save", exact: true })).toHaveCount(0);
  await expect(them.getByRole("heading", { name: "Limits" })).toHaveCount(0);
  // A Member views the workspace's usage (seed 004), and runs none of its service accounts.
  await expect(them.getByRole("heading", { name: "Usage, last 30 days" })).toBeVisible();
  await expect(them.getByTestId("workspace-usage")).toContainText("No calls yet.");
  await expect(them.getByRole("heading", { name: "Service accounts" })).toHaveCount(0);
  await them.getByLabel("Key name").fill("mia-laptop");
  await them.getByRole("button", { name: "Create key" }).click();
  await expect(them.getByTestId("new-key")).toHaveText(/^chy_ws_/);
  const miasKey = (await them.getByTestId("new-key").textContent())!.trim();
  await expect(them.getByTestId("api-key-row")).toHaveCount(1);
  await expect(them.getByTestId("api-key-row")).toContainText("mia-laptop");

  // The Admin sees Mia's key among the workspace's, and makes her the workspace's Admin.
  await page.locator("nav").getByRole("link", { name: "Workspaces" }).click();
  await page.getByTestId("workspace-row").getByRole("link").click();
  await expect(page.getByTestId("api-key-row").filter({ hasText: "mia-laptop" })).toBeVisible();
  const miasRow = page.getByTestId("workspace-member-row").filter({ hasText: mia });
  await miasRow.getByRole("button", { name: "Make Admin" }).click();
  await expect(miasRow.getByRole("button", { name: "Make Member" })).toBeVisible();

  // A workspace Admin runs the workspace (seed 004): Mia now edits it, not the Organization.
  await them.reload();
  await them.getByLabel("Description", { exact: true }).fill("Everyone's");
  await them.getByRole("button", { name: "Save", exact: true }).click();
  await expect(them.getByLabel("Description", { exact: true })).toHaveValue("Everyone's");
  await expect(them.getByRole("button", { name: "Archive workspace" })).toHaveCount(0);
  await theirs.close();

  // Mia leaves: removing her revokes her key, and the Admin is told so.
  await page.locator("nav").getByRole("link", { name: "Members" }).click();
  await page.getByTestId("member-row").filter({ hasText: mia }).getByRole("button", { name: "Remove" }).click();
  await confirm(page, "Remove member");
  await expect(page.getByRole("status")).toHaveText("Member removed. 1 API key revoked.");
  await expect(page.getByTestId("member-row").filter({ hasText: mia })).toHaveCount(0);
  await expect
    .poll(async () => (await request.get("/v1/models", { headers: { authorization: `Bearer ${miasKey}` } })).status())
    .toBe(401);
  await page.locator("nav").getByRole("link", { name: "Workspaces" }).click();
  await page.getByTestId("workspace-row").getByRole("link").click();
  await expect(page.getByTestId("api-key-row").filter({ hasText: "mia-laptop" })).toContainText("Revoked");
});
