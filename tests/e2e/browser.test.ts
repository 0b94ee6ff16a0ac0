/**
 * The pages in a real browser (Debian chromium via playwright-core) against the BUILT service on a private
 * Redis, and through real nginx in front of an echo upstream for the login-and-back-to-rd flow.
 * UPDATE_SCREENSHOTS=1 saves the screenshots shown in the README under docs/img/.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchChromium } from "../helpers/chromium";
import { startEchoUpstream, type EchoUpstream } from "../helpers/echo-upstream";
import { startNginx } from "../helpers/nginx";
import type { ProxyProcess } from "../helpers/proxy-process";
import { startRedisServer, type RedisServerHandle } from "../helpers/redis-server";
import { removeTempDir, startService, tempDir, writeUsersFile, type ServiceHandle } from "../helpers/service";

jest.setTimeout(60_000);

const PASSWORDS = { alice: "alice-password-1", carol: "carol-password-1" };
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? resolve(__dirname, "..", "..", "docs", "img") : undefined;

let redis: RedisServerHandle;
let dir: string;
let service: ServiceHandle;
let upstream: EchoUpstream;
let nginx: ProxyProcess;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  dir = tempDir("browser");
  await writeUsersFile(join(dir, "users.json"), PASSWORDS);
  redis = await startRedisServer();
  service = await startService({
    env: {
      BANGUI_USERS_FILE: join(dir, "users.json"),
      BANGUI_REDIS_URL: redis.url,
      BANGUI_REDIS_COMMAND_TIMEOUT_MS: "300",
      BANGUI_LOGIN_MAX_FAILURES: "3",
    },
  });
  upstream = await startEchoUpstream();
  nginx = await startNginx(service.port, upstream.port);
  browser = await launchChromium();
  if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
}, 120_000);

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await browser?.close();
  await nginx?.stop();
  await upstream?.close();
  await service?.stop().catch(() => service.kill());
  await redis?.stop();
  if (dir) removeTempDir(dir);
}, 30_000);

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 960, height: 640 }, userAgent: `bangui-browser-test/${contexts.length + 1} Chromium` });
  contexts.push(context);
  return context.newPage();
}

async function login(page: Page, username: keyof typeof PASSWORDS, base = service.url): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORDS[username]);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/account`);
}

/** The id of the focused element (page script as a string: the tests compile without the DOM types). */
async function focused(page: Page): Promise<unknown> {
  return page.evaluate("document.activeElement ? document.activeElement.id : null");
}

async function shot(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, name), fullPage: true });
}

test("through nginx: a protected page sends the browser to /login, and the login lands back on it with Remote-User", async () => {
  const page = await newPage();
  const base = `http://127.0.0.1:${nginx.port}`;
  await page.goto(`${base}/app/report?year=2026`);
  await page.waitForURL((url) => url.pathname === "/login");
  expect(new URL(page.url()).searchParams.get("rd")).toBe("/app/report?year=2026");
  await shot(page, "login.png");
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(PASSWORDS.alice);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/app/report?year=2026`);
  const echoed = JSON.parse((await page.textContent("body")) ?? "{}");
  expect(echoed.url).toBe("/app/report?year=2026");
  expect(echoed.headers["remote-user"]).toBe("alice");
});

test("a wrong password shows a clear message and keeps the user on the form", async () => {
  const page = await newPage();
  await page.goto(`${service.url}/login`);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor({ state: "visible" });
  expect(await alert.textContent()).toBe("Wrong username or password.");
  expect(new URL(page.url()).pathname).toBe("/login");
  expect(await focused(page)).toBe("password");
  await shot(page, "login-error.png");
});

test("throttled logins say how long to wait", async () => {
  const page = await newPage();
  await page.goto(`${service.url}/login`);
  await page.getByLabel("Username").fill("carol");
  const alert = page.getByRole("alert");
  for (let i = 0; i < 4; i++) {
    await page.getByLabel("Password").fill(`wrong-${i}`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(`#message[data-count="${i + 1}"]`).waitFor();
  }
  expect(await alert.textContent()).toMatch(/^Too many failed attempts\. Try again in \d+ (seconds|minutes)\.$/);
});

test("the login form works with the keyboard alone", async () => {
  const page = await newPage();
  await page.goto(`${service.url}/login`);
  expect(await focused(page)).toBe("username");
  await page.keyboard.type("alice");
  await page.keyboard.press("Tab");
  expect(await focused(page)).toBe("password");
  await page.keyboard.type(PASSWORDS.alice);
  await page.keyboard.press("Tab");
  expect(await focused(page)).toBe("submit");
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Enter");
  await page.waitForURL(`${service.url}/account`);
});

test("the session cookie is HttpOnly: page script cannot read it", async () => {
  const page = await newPage();
  await login(page, "alice");
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name.endsWith("bangui_session"));
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe("Strict");
  const visible = String(await page.evaluate("document.cookie"));
  expect(visible).not.toContain(session!.value);
  expect(visible).not.toContain("bangui_session");
});

test("two browsers as one user: the first revokes the second, whose next navigation lands on /login", async () => {
  const first = await newPage();
  const second = await newPage();
  await login(first, "alice");
  await login(second, "alice");
  await first.reload();
  const rows = first.locator("#session-rows tr");
  await first.getByText("bangui-browser-test/2 Chromium").waitFor();
  expect(await first.locator('#session-rows tr[aria-current="true"]').textContent()).toContain("This device");
  expect(await rows.count()).toBeGreaterThanOrEqual(2);
  await shot(first, "account.png");
  const other = first.locator("#session-rows tr", { hasText: "bangui-browser-test/2 Chromium" });
  await other.getByRole("button", { name: /^Revoke/ }).click();
  await first.getByRole("status").filter({ hasText: "The session was ended." }).waitFor();
  await other.waitFor({ state: "detached" });
  await second.goto(`${service.url}/account`);
  expect(new URL(second.url()).pathname).toBe("/login");
  // The first is still signed in.
  await first.goto(`${service.url}/account`);
  expect(new URL(first.url()).pathname).toBe("/account");
});

test("log out, and log out everywhere, end the sessions they should", async () => {
  const first = await newPage();
  const second = await newPage();
  const third = await newPage();
  await login(first, "alice");
  await login(second, "alice");
  await login(third, "alice");
  await third.getByRole("button", { name: "Log out", exact: true }).click();
  await third.waitForURL(`${service.url}/login`);
  await third.goto(`${service.url}/account`);
  expect(new URL(third.url()).pathname).toBe("/login");
  await first.getByRole("button", { name: "Log out everywhere" }).click();
  await first.waitForURL(`${service.url}/login`);
  for (const page of [first, second]) {
    await page.goto(`${service.url}/account`);
    expect(new URL(page.url()).pathname).toBe("/login");
  }
});

test("with the session backend down the login page says the service is unavailable", async () => {
  const page = await newPage();
  await page.goto(`${service.url}/login`);
  await redis.kill("SIGKILL");
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(PASSWORDS.alice);
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor({ state: "visible" });
  expect(await alert.textContent()).toMatch(/^Sign-in is unavailable right now/);
});
