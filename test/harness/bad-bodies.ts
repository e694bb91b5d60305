/**
 * Message bodies that are no list of osrfMessages at all: broken or bare JSON, JSON of the
 * wrong shape, and text only a lax parser would read. The router and the prefork bad-input
 * tests each send these among their own malformed bodies.
 */
export const NOT_OSRF_MESSAGES: readonly string[] = [
  "{",
  "[",
  "]",
  "[{",
  "null",
  "true",
  "0",
  "-1",
  '"a string"',
  "{}",
  "[]",
  "[[]]",
  "[1,2,3]",
  "[null]",
  '["osrfMessage"]',
  '[{"__c":"osrfMessage"}]',
  '[{"__p":{}}]',
];

/**
 * Text that is not strict JSON, or JSON that is hard to carry: a lone surrogate and NUL as
 * escapes, a number out of range, JavaScript's own literals and hex, single quotes, a
 * trailing comma and a byte order mark.
 */
export const JSON_TRAPS: readonly string[] = [
  '["\\ud800"]',
  '["\\u0000"]',
  "[1e999]",
  "[NaN]",
  "[undefined]",
  "[0x10]",
  "['single']",
  "[1,]",
  "\ufeff[]",
];
