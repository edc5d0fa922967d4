import { execFileSync } from "node:child_process";
import path from "node:path";
import { adminApiKey, expect, signUp, test, uniqueEmail } from "./helpers";

test("the Admin API keeps the promises of its OpenAPI document (schemathesis, every check)", async ({ page }) => {
  const email = uniqueEmail("fuzz");
  await signUp(page, "Finn Fuzz", email);
  await page.getByLabel("Organization name").fill("Fuzzed");
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  const key = await adminApiKey(page, email, "Fuzzed", "schemathesis");

  // A fixed seed and a bounded number of examples per operation: the same cases every run.
  // Revoking its own key would leave the rest of the run unauthenticated. Left out:
  // ensure_resource_availability, which reads the 404 for a made-up workspace in a
  // body (POST /user-groups/{id}/workspaces, provision-workspace) as the group just
  // created gone missing; an unknown id is a 404 wherever it is given.
  const origin = new URL(page.url()).origin;
  const here = path.join(__dirname, "..");
  const args = [
    "-m", "schemathesis.cli",
    "--config-file", path.join(here, "admin-api", "schemathesis.toml"),
    "run", `${origin}/api/admin/openapi.json`, "--url", `${origin}/api/admin`,
    "--checks", "all", "--seed", "1", "--max-examples", "50", "--generation-database", "none", "--no-color",
    "--exclude-name", "DELETE /admin-api-keys/{key_id}",
    "--exclude-checks", "ensure_resource_availability",
    "--header", `x-api-key: ${key}`,
  ];
  let report: string;
  try {
    report = execFileSync(path.join(here, ".venv", "bin", "python"), args, { timeout: 170_000 }).toString();
  } catch (err) {
    throw new Error(`schemathesis found failures:\n${(err as { stdout?: Buffer }).stdout?.toString() ?? err}`);
  }
  expect(report).toMatch(/\d+ generated, \d+ passed/);
});
