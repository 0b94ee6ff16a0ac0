import { DEFAULT_SCRYPT_PARAMS, DUMMY_PASSWORD_HASH, hashPassword, passwordVerificationCount, verifyPassword } from "../../src/auth/passwords";
import { isWellFormedHandle, isWellFormedToken, newToken, publicHandle, sessionIdFromToken } from "../../src/auth/tokens";

const FAST = { N: 1024, r: 8, p: 1 };

describe("passwords", () => {
  test("a hash stores its scrypt parameters and salt, and verifies only the right password", async () => {
    const hash = await hashPassword("correct horse", FAST);
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await verifyPassword("correct horse", hash)).toBe(true);
    expect(await verifyPassword("correct horsf", hash)).toBe(false);
    expect(await verifyPassword("", hash)).toBe(false);
  });

  test("two hashes of one password differ (random salt) and both verify", async () => {
    const a = await hashPassword("same", FAST);
    const b = await hashPassword("same", FAST);
    expect(a).not.toBe(b);
    expect(await verifyPassword("same", a)).toBe(true);
    expect(await verifyPassword("same", b)).toBe(true);
  });

  test("the default parameters are used when none are given, and a raised cost still verifies", async () => {
    const hash = await hashPassword("pw");
    expect(hash.startsWith(`scrypt$${DEFAULT_SCRYPT_PARAMS.N}$${DEFAULT_SCRYPT_PARAMS.r}$${DEFAULT_SCRYPT_PARAMS.p}$`)).toBe(true);
    const raised = await hashPassword("pw", { N: 32768, r: 8, p: 1 });
    expect(await verifyPassword("pw", raised)).toBe(true);
  });

  test("malformed hashes never verify, yet each check still runs scrypt once", async () => {
    for (const bad of ["", "scrypt$x", "bcrypt$1$2$3$4$5", "scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==", "scrypt$1024$8$1$$"]) {
      const before = passwordVerificationCount();
      expect(await verifyPassword("anything", bad)).toBe(false);
      expect(passwordVerificationCount()).toBe(before + 1);
    }
  });

  test("the dummy hash is well formed, has the default cost and matches no password", async () => {
    expect(DUMMY_PASSWORD_HASH.startsWith(`scrypt$${DEFAULT_SCRYPT_PARAMS.N}$8$1$`)).toBe(true);
    expect(await verifyPassword("", DUMMY_PASSWORD_HASH)).toBe(false);
    expect(await verifyPassword("admin", DUMMY_PASSWORD_HASH)).toBe(false);
  });
});

describe("tokens", () => {
  test("a token is 32 random bytes in base64url (43 characters) and new every time", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = newToken();
      expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(t, "base64url")).toHaveLength(32);
      seen.add(t);
    }
    expect(seen.size).toBe(1000);
  });

  test("the session id is the sha256 hex of the token, the handle a different one-way value", () => {
    const t = newToken();
    const id = sessionIdFromToken(t);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(sessionIdFromToken(t)).toBe(id);
    const handle = publicHandle(id);
    expect(isWellFormedHandle(handle)).toBe(true);
    expect(id.includes(handle)).toBe(false);
    expect(handle).not.toBe(publicHandle(sessionIdFromToken(newToken())));
  });

  test("only 43 base64url characters are a well-formed token", () => {
    expect(isWellFormedToken(newToken())).toBe(true);
    for (const bad of ["", "a".repeat(42), "a".repeat(44), `${"a".repeat(42)}=`, `${"a".repeat(42)}+`, `${"a".repeat(42)}/`, `${"a".repeat(42)} `]) {
      expect(isWellFormedToken(bad)).toBe(false);
    }
  });
});
