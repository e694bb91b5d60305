/**
 * The Redis bus's JSON transport message: read as C, Perl and the C router write it (elements
 * taken from a MONITOR capture of OpenSRF main), written in C's order, and refused with a
 * one-line reason when it is not an OpenSRF message.
 */
import { describe, expect, test } from "bun:test";
import { decodeEnvelope, EnvelopeError, encodeEnvelope } from "../../src/redis/envelope.ts";

// Elements as the real stack pushed them (C client, Perl client, C router, Perl listener).
const C_REQUEST =
  '{"to":"opensrf:service:_:_:opensrf.math","from":"opensrf:client:opensrf:localhost:vm:8853:1b910cb6",' +
  '"thread":"1796156021.978344.17961560218853","osrf_xid":"179615602188530","body":[{"__c":"osrfMessage",' +
  '"__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":' +
  '{"__c":"osrfMethod","__p":{"method":"add","params":[2,2]}}}}]}';
const PERL_CONNECT =
  '{"body":[{"__c":"osrfMessage","__p":{"ingress":"opensrf","api_level":1,"tz":null,"threadTrace":0,' +
  '"type":"CONNECT","locale":"en-US"}}],"from":"opensrf:client:opensrf:localhost:vm:8860:1880160",' +
  '"thread":"1796156023.273234482.25447921509","to":"opensrf:service:_:_:opensrf.settings"}';
const ROUTER_404 =
  '{"to":"opensrf:client:opensrf:localhost:vm:8866:705372cd","from":"opensrf:client:router:localhost:vm:8788:8bb33c5c",' +
  '"thread":"1796156023.679539.17961560238866","osrf_xid":null,"body":[{"__c":"osrfMessage","__p":' +
  '{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfServiceException",' +
  '"__p":{"status":"Service Not Found","statusCode":"404"}}}}]}';
const PERL_REGISTER =
  '{"body":"[]","from":"opensrf:client:opensrf:localhost:vm:8812:182927","router_class":"opensrf.settings",' +
  '"thread":"","to":"opensrf:router:router:localhost","router_command":"register"}';
const C_REGISTER =
  '{"to":"opensrf:router:router:localhost","from":"opensrf:client:opensrf:localhost:vm:8825:b2b37481",' +
  '"thread":"","osrf_xid":null,"router_to":"","router_class":"opensrf.math","router_command":"register","body":"[]"}';

describe("decodeEnvelope", () => {
  test("C's key order, body a real array", () => {
    const m = decodeEnvelope(C_REQUEST);
    expect(m.to).toBe("opensrf:service:_:_:opensrf.math");
    expect(m.from).toBe("opensrf:client:opensrf:localhost:vm:8853:1b910cb6");
    expect(m.xid).toBe("179615602188530");
    expect(JSON.parse(m.body)[0].__p.payload.__p).toEqual({ method: "add", params: [2, 2] });
  });

  test("Perl's key order, no osrf_xid", () => {
    const m = decodeEnvelope(PERL_CONNECT);
    expect(m.thread).toBe("1796156023.273234482.25447921509");
    expect(m.xid).toBe("");
    expect(JSON.parse(m.body)[0].__p.type).toBe("CONNECT");
  });

  test("the router's null osrf_xid reads as empty", () => {
    const m = decodeEnvelope(ROUTER_404);
    expect(m.xid).toBe("");
    expect(m.routerFrom).toBe("");
  });

  test.each([
    ["Perl", PERL_REGISTER, "opensrf.settings"],
    ["C", C_REGISTER, "opensrf.math"],
  ])("a %s registration: router fields, body the string []", (_who, text, service) => {
    const m = decodeEnvelope(text);
    expect(m.routerCommand).toBe("register");
    expect(m.routerClass).toBe(service);
    expect(m.routerTo).toBe("");
    expect(m.body).toBe("[]");
  });

  test.each([
    ["not JSON", "hello", /not JSON/],
    ["a JSON array", "[1,2]", /a JSON array, not an object/],
    ["a bare string", '"x"', /a JSON string, not an object/],
    ["no from", '{"to":"opensrf:client:a:b:c","thread":"t1","body":[]}', /no "from" \(thread "t1"\)/],
    ["a from that is an object", '{"from":{},"body":[]}', /"from" is a object, not a string/],
    ["a body that is a number", '{"from":"opensrf:client:a:b:c","body":7}', /"body" is a number, not an array/],
  ])("refuses %s with a one-line reason", (_what, text, reason) => {
    let err: unknown;
    try {
      decodeEnvelope(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnvelopeError);
    expect((err as EnvelopeError).reason).toMatch(reason);
    expect((err as Error).message).not.toContain("\n");
  });
});

describe("encodeEnvelope", () => {
  test("C's key order, the body spliced in as a real array, from defaulted", () => {
    const body = '[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST"}}]';
    const text = encodeEnvelope({ to: "opensrf:service:_:_:opensrf.math", thread: "t", xid: "x1", body }, "me");
    expect(text).toBe(
      `{"to":"opensrf:service:_:_:opensrf.math","from":"me","thread":"t","osrf_xid":"x1","body":${body}}`,
    );
    expect(decodeEnvelope(text).body).toBe(body);
  });

  test("a router command carries its body as the string [] as C and Perl listeners do", () => {
    const text = encodeEnvelope(
      { to: "opensrf:router:router:localhost", routerCommand: "register", routerClass: "opensrf.math" },
      "opensrf:client:opensrf:localhost:vm:1:aa",
    );
    expect(JSON.parse(text)).toEqual({
      to: "opensrf:router:router:localhost",
      from: "opensrf:client:opensrf:localhost:vm:1:aa",
      thread: "",
      osrf_xid: "",
      router_class: "opensrf.math",
      router_command: "register",
      body: "[]",
    });
  });

  test("unicode round-trips", () => {
    const body = JSON.stringify([{ __c: "osrfMessage", __p: { payload: "héllo ☃ 🎉 \u0000" } }]);
    const m = decodeEnvelope(encodeEnvelope({ to: "opensrf:client:a:b:c", body }, "opensrf:client:d:e:f"));
    expect(JSON.parse(m.body)).toEqual(JSON.parse(body));
  });
});
