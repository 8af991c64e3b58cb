/**
 * The Raft consensus core of skein's control plane, written by hand and modelled on
 * etcd-io/raft: a pure deterministic state machine with no I/O, clocks or ambient
 * randomness.
 *
 * The driver owns the edges: it calls {@linkcode RaftNode.tick} on a timer, feeds peer
 * messages to {@linkcode RaftNode.step}, and loops on {@linkcode RaftNode.ready}:
 * persist `hardState`/`entries`/`snapshot` (fsync), append them to its
 * {@linkcode MemoryStorage}, send `messages`, apply `committedEntries`, serve
 * `readStates`, then call {@linkcode RaftNode.advance}. Wire bytes go through
 * {@linkcode encodeMessage}/{@linkcode decodeMessage}; WAL records through the entry,
 * hard-state and snapshot codecs. See README.md in this folder for the design notes.
 * @module
 */
export * from "./types.ts";
export { type RaftConfig, RaftNode } from "./node.ts";
export {
  cloneConf,
  ErrCompacted,
  ErrSnapOutOfDate,
  ErrUnavailable,
  MemoryStorage,
  type RaftStorage,
} from "./storage.ts";
export { RaftInvariantError } from "./raft_log.ts";
export {
  CODEC_VERSION,
  CONF_MEMBERS_MAX,
  CTX_BYTES_MAX,
  decodeConfChange,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  ENTRIES_PER_MSG_MAX,
  NODE_ID_BYTES_MAX,
  RaftCodecError,
} from "./codec.ts";
