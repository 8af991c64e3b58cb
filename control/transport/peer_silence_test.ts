import assert from "node:assert/strict";
import { nodeId } from "../../common/ids.ts";
import type { PeerStats } from "./peer_link.ts";
import { PeerSilence } from "./peer_silence.ts";

const P = nodeId("cp-2");

function stats(sentFrames: number, receivedFrames: number, connected = true): PeerStats {
  return {
    connected,
    inboundConnected: true,
    queued: 0,
    queuedBytes: 0,
    dropped: 0,
    sentFrames,
    receivedFrames,
    sentBytes: 0,
    receivedBytes: 0,
    connects: 1,
  };
}

Deno.test("PeerSilence names a peer that answered nothing for silenceMs while frames went to it", () => {
  const s = new PeerSilence(1000);
  assert.equal(s.check(P, stats(10, 10), 0), null);
  assert.equal(s.check(P, stats(15, 10), 500), null);
  assert.match(s.check(P, stats(20, 10), 1000) ?? "", /sent 10 frames in 1000 ms/);
  // Marked afresh after a verdict: the next one needs another full period.
  assert.equal(s.check(P, stats(25, 10), 1500), null);
});

Deno.test("PeerSilence keeps quiet for a peer that answers, or when nothing was sent", () => {
  const s = new PeerSilence(1000);
  s.check(P, stats(10, 10), 0);
  assert.equal(s.check(P, stats(30, 11), 2000), null); // it answered
  assert.equal(s.check(P, stats(30, 11), 4000), null); // nothing sent since
  assert.equal(s.check(P, stats(31, 11), 4500), null); // sending again: the period starts now
  assert.notEqual(s.check(P, stats(32, 11), 5500), null);
  // A connection that is down is the dialler's business.
  assert.equal(s.check(P, stats(40, 11, false), 9000), null);
});
