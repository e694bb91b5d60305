/**
 * The drone end of bench/components.ts's IPC measurement: answers each message with an
 * `available`-sized one, as a drone does after each request.
 */
process.on("message", () => {
  process.send?.({ type: "available", served: 1, rssBytes: 0 });
});
