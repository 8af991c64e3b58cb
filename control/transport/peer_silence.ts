/**
 * Which peers went silent on a live-looking connection: frames keep leaving for a peer, and
 * nothing comes back from it for `silenceMs`. Pure: the transport feeds it each peer's counters
 * and drops the connection it names.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import type { PeerStats } from "./peer_link.ts";

/** Per peer: counters when the current silence began, and when. */
interface _Mark {
  received: number;
  sent: number;
  since: number;
}

/** Tracks silence per peer across calls of {@linkcode PeerSilence.check}. */
export class PeerSilence {
  readonly #silenceMs: number;
  readonly #marks = new Map<NodeId, _Mark>();

  /** Creates a tracker that calls a peer silent after `silenceMs`. */
  constructor(silenceMs: number) {
    this.#silenceMs = silenceMs;
  }

  /**
   * Returns why `node`'s connection should be redialled, or null. A peer is silent when frames
   * were sent to it since the last frame it sent here, and `silenceMs` have passed since then.
   */
  check(node: NodeId, s: Readonly<PeerStats>, now: number): string | null {
    const m = this.#marks.get(node);
    if (!s.connected || m === undefined || s.receivedFrames !== m.received) {
      this.#marks.set(node, { received: s.receivedFrames, sent: s.sentFrames, since: now });
      return null;
    }
    if (s.sentFrames === m.sent) {
      // Nothing sent: nothing to be answered, so quiet is not silence.
      m.since = now;
      return null;
    }
    if (now - m.since < this.#silenceMs) return null;
    const sent = s.sentFrames - m.sent;
    this.#marks.set(node, { received: s.receivedFrames, sent: s.sentFrames, since: now });
    return `sent ${sent} frames in ${now - m.since} ms and received none`;
  }
}
