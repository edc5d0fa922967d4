import { request as httpRequest } from "node:http";
import type { Page } from "@playwright/test";
import { expect, test } from "./helpers";

/** The bundle's budget over the wire: what a first visit downloads before it is interactive. */
const WASM_BUDGET = 600 * 1024;
/** A good office or home connection: 10 Mbit/s, 20 ms away. */
const TEN_MBPS = { offline: false, latency: 20, downloadThroughput: 10e6 / 8, uploadThroughput: 10e6 / 8 };

/** The body as sent, not decoded (Node's http does not decompress). */
function raw(url: string, encodings: string): Promise<{ headers: Record<string, string>; bytes: number }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { headers: { "accept-encoding": encodings } }, (response) => {
      let bytes = 0;
      response.on("data", (chunk: Buffer) => (bytes += chunk.length));
      response.on("end", () => resolve({ headers: response.headers as Record<string, string>, bytes }));
    })
      .on("error", reject)
      .end();
  });
}

/**
 * A first visit (cache off) at 10 Mbit/s: milliseconds from navigation to the
 * page being interactive (hydrated), and the bytes all its responses took on the wire.
 */
async function firstVisit(page: Page, path: string): Promise<{ ms: number; wireBytes: number }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await cdp.send("Network.emulateNetworkConditions", TEN_MBPS);
  let wireBytes = 0;
  cdp.on("Network.loadingFinished", (event) => (wireBytes += event.encodedDataLength));
  const start = Date.now();
  await page.goto(path);
  await expect(page.locator("body[data-hydrated]")).toBeAttached({ timeout: 60_000 });
  const ms = Date.now() - start;
  await cdp.detach();
  return { ms, wireBytes };
}

test("the bundle is named by content, sent compressed, cached for good, and small", async ({ page, browser, baseURL }) => {
  test.setTimeout(120_000);
  await page.goto("/login");
  const html = await page.content();
  const files = [...html.matchAll(/\/pkg\/chancery\.([A-Za-z0-9_-]+)\.(wasm|js|css)/g)];
  const byKind = Object.fromEntries(files.map((m) => [m[2], m[0]]));
  expect(Object.keys(byKind).sort()).toEqual(["css", "js", "wasm"]);
  for (const [kind, path] of Object.entries(byKind)) {
    const brotli = await raw(baseURL + path, "gzip, deflate, br");
    expect(brotli.headers["content-encoding"], path).toBe("br");
    expect(brotli.headers["cache-control"], path).toBe("public, max-age=31536000, immutable");
    expect(brotli.headers["vary"], path).toBe("accept-encoding");
    const gzip = await raw(baseURL + path, "gzip");
    expect(gzip.headers["content-encoding"], path).toBe("gzip");
    const plain = await raw(baseURL + path, "identity");
    expect(plain.headers["content-encoding"], path).toBeUndefined();
    console.log(`${kind}: ${plain.bytes} bytes, ${gzip.bytes} gzip, ${brotli.bytes} brotli (${path})`);
    if (kind === "wasm") expect(brotli.bytes).toBeLessThanOrEqual(WASM_BUDGET);
  }

  // Measured, not asserted: a first visit as browsers make it, and as the same
  // files sent uncompressed (how they went before) in the same run.
  const compressed = await firstVisit(page, "/login");
  const uncompressedContext = await browser.newContext({ extraHTTPHeaders: { "accept-encoding": "identity" } });
  const uncompressed = await firstVisit(await uncompressedContext.newPage(), "/login");
  await uncompressedContext.close();
  expect(uncompressed.wireBytes).toBeGreaterThan(compressed.wireBytes);
  console.log(
    `first visit at 10 Mbit/s: interactive after ${compressed.ms} ms (${compressed.wireBytes} bytes) compressed, ` +
      `${uncompressed.ms} ms (${uncompressed.wireBytes} bytes) uncompressed: ${(compressed.ms / uncompressed.ms).toFixed(2)}x`,
  );
});
