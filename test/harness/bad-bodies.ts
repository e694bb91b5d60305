/**
 * Message bodies that are no list of osrfMessages at all: broken or bare JSON, and JSON of
 * the wrong shape. The router and the prefork bad-input tests each send these among their
 * own malformed bodies.
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
