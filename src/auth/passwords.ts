import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

/** scrypt cost parameters; stored in every hash string, so they can be raised later. */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. @default 16384 */
  N: number;
  /** Block size. @default 8 */
  r: number;
  /** Parallelism. @default 1 */
  p: number;
}

/** Parameters of new hashes. */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ N: 16384, r: 8, p: 1 });
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

let verifications = 0;

/** How many times verifyPassword ran scrypt in this process (tests prove both login paths pay it). */
export function passwordVerificationCount(): number {
  return verifications;
}

function derive(password: string, salt: Buffer, params: ScryptParams, keyLength: number): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFC"), salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes a password: `scrypt$N$r$p$<salt base64>$<hash base64>`, a fresh random salt each time. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, params, KEY_LENGTH);
  return ["scrypt", params.N, params.r, params.p, salt.toString("base64"), key.toString("base64")].join("$");
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function parseHash(hash: string): ParsedHash | undefined {
  const parts = hash.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const ok = (v: number, max: number) => Number.isInteger(v) && v >= 1 && v <= max;
  if (!ok(N, 2 ** 24) || (N & (N - 1)) !== 0 || N < 2 || !ok(r, 64) || !ok(p, 64)) return undefined;
  const salt = Buffer.from(parts[4] ?? "", "base64");
  const key = Buffer.from(parts[5] ?? "", "base64");
  if (salt.length < 8 || key.length < 16) return undefined;
  return { params: { N, r, p }, salt, key };
}

/**
 * A fixed hash with the default parameters, verified when the user does not exist so an unknown user
 * costs the same scrypt as a wrong password. Its password is random and forgotten.
 */
export const DUMMY_PASSWORD_HASH =
  "scrypt$16384$8$1$QmFuR1VJLWR1bW15LXNhbHQ=$" + randomBytes(KEY_LENGTH).toString("base64");

/**
 * Checks a password against a hash string in constant time (scrypt, then timingSafeEqual). A malformed
 * hash still pays the scrypt cost (against the dummy hash) and returns false.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  const target = parsed ?? (parseHash(DUMMY_PASSWORD_HASH) as ParsedHash);
  verifications++;
  const key = await derive(password, target.salt, target.params, target.key.length);
  return timingSafeEqual(key, target.key) && parsed !== undefined;
}
