/**
 * Defence in depth: strip password values from text before it is logged, whatever the
 * caller passed (a raw stanza, a config dump, a URL). Callers should not log secrets in
 * the first place; this catches the cases where they do.
 */

/** What a masked value is replaced with. */
export const MASK = "****";

/** Secrets shorter than this are not masked literally: doing so would shred the log. */
export const MIN_LITERAL_SECRET_LENGTH = 4;

// Cheap gate: nothing below can match unless one of these appears.
const MAYBE_SECRET = /pass|pwd|secret|digest|:\/\//i;

const KEY = "(?:password|passwd|passwort|pwd|secret|client_secret)";

const RULES: ReadonlyArray<readonly [RegExp, string]> = [
  // XML elements: <password>x</password>, <passwd>, legacy-auth <digest>.
  [new RegExp(`(<(${KEY}|digest)(?:\\s[^>]*)?>)[^<]*(</\\2\\s*>)`, "gi"), `$1${MASK}$3`],
  // JSON: "password":"x" (escapes inside the value handled).
  [new RegExp(`("${KEY}"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, "gi"), `$1"${MASK}"`],
  // JSON inside a JSON string: \"password\":\"x\".
  [new RegExp(`(\\\\"${KEY}\\\\"\\s*:\\s*)\\\\"(?:(?!\\\\").)*\\\\"`, "gi"), `$1\\"${MASK}\\"`],
  // JSON inside XML text: &quot;password&quot;:&quot;x&quot;.
  [new RegExp(`(&quot;${KEY}&quot;\\s*:\\s*)&quot;(?:(?!&quot;).)*&quot;`, "gi"), `$1&quot;${MASK}&quot;`],
  // Quoted keys in other notations: 'password' => 'x', password: 'x'.
  [new RegExp(`(['"]?\\b${KEY}['"]?\\s*(?:=>|[=:])\\s*)(['"])(?:(?!\\2).)*\\2`, "gi"), `$1$2${MASK}$2`],
  // key=value and key: value, unquoted.
  [new RegExp(`(\\b${KEY}\\b\\s*[=:]\\s*)(?!['"*])[^\\s,;&"'<>)}\\]]+`, "gi"), `$1${MASK}`],
  // Credentials in URLs: scheme://user:pass@host.
  [/(\/\/[^\s:/@]+:)[^\s@/]+@/g, `$1${MASK}@`],
];

/**
 * Returns `text` with password values replaced by {@link MASK}: XML `<password>`,
 * `<passwd>` and `<digest>` elements, JSON `"password"`/`"passwd"` members (also escaped
 * inside JSON strings or XML text), `password=x` / `passwd: x` pairs, URL credentials, and
 * every literal occurrence of `secrets` (those of at least
 * {@link MIN_LITERAL_SECRET_LENGTH} characters).
 */
export function maskSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= MIN_LITERAL_SECRET_LENGTH && out.includes(secret)) out = out.split(secret).join(MASK);
  }
  if (!MAYBE_SECRET.test(out)) return out;
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement);
  return out;
}
