/**
 * Parameter redaction for request logging, driven by opensrf_core.xml's
 * `/config/shared/log_protect/match_string` list.
 */

/** What C and Perl log instead of the params of a protected method. */
export const REDACTED_PARAMS = "**PARAMS REDACTED**";

/**
 * True when `method` starts with one of `matchStrings` — C's `strncmp(method, str,
 * strlen(str))`. (Perl uses each entry as a regex anchored at the start; plain method
 * prefixes behave the same.) Empty entries are ignored rather than matching everything.
 */
export function isProtected(method: string, matchStrings: readonly string[]): boolean {
  for (const prefix of matchStrings) {
    if (prefix !== "" && method.startsWith(prefix)) return true;
  }
  return false;
}

/**
 * The params part of a request log line, as C's `osrfMethodVerifyContext` writes it:
 * the JSON of the params array without its outer brackets (`[2,2]` → `2,2`, `[]` → ``),
 * or {@link REDACTED_PARAMS} for a protected method (even with no params, like C).
 */
export function formatParams(method: string, params: readonly unknown[], matchStrings: readonly string[]): string {
  if (isProtected(method, matchStrings)) return REDACTED_PARAMS;
  let json: string;
  try {
    json = JSON.stringify(params) ?? "[]";
  } catch {
    // Cyclic or BigInt params cannot be logged as JSON; say so instead of failing the request.
    return "[unserializable params]";
  }
  return json.slice(1, -1);
}

/**
 * The line a C service logs (at INFO) for each request it runs:
 * `CALL: <service> <method> <params>`, params per {@link formatParams}.
 */
export function formatCall(
  service: string,
  method: string,
  params: readonly unknown[],
  matchStrings: readonly string[],
): string {
  return `CALL: ${service} ${method} ${formatParams(method, params, matchStrings)}`;
}
