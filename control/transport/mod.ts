/**
 * Transport between control nodes: opaque Raft frames moved between node ids.
 *
 * Wire format: every connection starts with a hello frame (magic, version, sender node id,
 * cluster id); then `[u32 big-endian length][payload]` frames. Connections are one-way: each
 * node dials every peer and only writes on that connection, and only reads on the
 * connections peers dial to it. The byte streams are pluggable (`Dialer`, `ListenerFactory`)
 * so mTLS can replace plain TCP without touching the framing: `tlsDialer` / `tlsListenerFactory`
 * (mutual TLS 1.3, control identities only), with `authorizePeer: spiffeControlAuthorizer(td)`
 * binding the certificate's SPIFFE id to the node id in the hello.
 *
 * A hello is accepted only from a node currently in the peer set, so a removed node cannot
 * keep talking, and a new node is heard once `setPeers` includes it. Frames already written to
 * a connection that the other side then refuses or drops are lost; Raft retries.
 *
 * ```ts
 * const t = await Transport.start({
 *   self: nodeId("cp-1"), clusterId: "prod", listen: { hostname: "0.0.0.0", port: 7401 },
 *   peers, maxQueuedFrames: 1024, maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
 *   logger, reconnect: { baseMs: 50, maxMs: 2000 },
 * }, (from, frame) => raft.step(decode(frame)));
 * t.send(nodeId("cp-2"), bytes); // false when dropped
 * ```
 * @module
 */
export {
  DEFAULT_DIAL_TIMEOUT_MS,
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_MAX_INBOUND_CONNECTIONS,
  DEFAULT_MAX_QUEUE_AGE_MS,
  DEFAULT_MAX_QUEUED_BYTES,
  type FrameHandler,
  READ_BUFFER_BYTES,
  Transport,
  type TransportOptions,
  type TransportStats,
} from "./transport.ts";
export { type PeerStats } from "./peer_link.ts";
export {
  allowAnyPeer,
  type ByteStream,
  type Dialer,
  type ListenerFactory,
  type PeerAddress,
  type PeerAuthorizer,
  type PeerIdentity,
  spiffeControlAuthorizer,
  type StreamListener,
  tcpDialer,
  tcpListenerFactory,
  TcpStream,
  writeAll,
} from "./stream.ts";
export {
  type DecodeResult,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameError,
  type FrameErrorReason,
} from "./frame.ts";
export {
  decodeHello,
  encodeHello,
  type Hello,
  HELLO_MAGIC,
  type HelloErrorReason,
  type HelloResult,
  MAX_HELLO_BYTES,
  PROTOCOL_VERSION,
} from "./hello.ts";
export { backoffDelayMs, type BackoffOptions } from "./backoff.ts";
export {
  TLS_HANDSHAKE_TIMEOUT_MS,
  TLS_MAX_CONCURRENT_HANDSHAKES,
  TLS_MAX_PENDING_ACCEPTS,
  TlsByteStream,
  tlsDialer,
  tlsListenerFactory,
  type TlsStreamListener,
  type TlsTransportOptions,
  type TransportTlsSource,
} from "./tls_stream.ts";
