/**
 * A parsed head's field table and the field kinds the parser acts on: one flat number array per
 * head (line start, colon, value span, kind per field) and the {@linkcode ParsedHead} class
 * that decodes names and values from it only when they are read.
 * @module
 */
import type { RequestHead, ResponseHead } from "./head_types.ts";
import { eqLower, latin1, lowerByte } from "./head_bytes.ts";

/** Numbers stored per field in a head's field table. */
export const FIELD_STRIDE = 5;
/** Field table slots: line start, the colon, value start and end (trimmed), field kind. */
export const F_LINE = 0;
export const F_COLON = 1;
export const F_VS = 2;
export const F_VE = 3;
export const F_KIND = 4;

/** Field kinds the parser itself acts on; everything else is K_OTHER. */
export const K_OTHER = 0;
export const K_CONTENT_LENGTH = 1;
export const K_TRANSFER_ENCODING = 2;
export const K_CONNECTION = 3;
export const K_UPGRADE = 4;
export const K_HOST = 5;
export const K_EXPECT = 6;
/** Hop-by-hop by name alone: keep-alive, te, trailer and any proxy-* field. */
export const K_HOP = 7;
/**
 * Fields a caller could use to pose as someone else to the app (client certificate, caller
 * id, forwarded peer, `Forwarded`) or to change the method after authorization
 * (method-override fields): the callee's proxy drops them.
 */
export const K_IDENTITY = 8;
/** `x-forwarded-for`: merged into the one list the proxy sends. */
export const K_XFF = 9;
/** `x-skein-capability`: the mesh router routes by it (flagged, not interpreted, here). */
export const K_CAPABILITY = 10;
/** Kinds that {@linkcode dropRewrittenFields} acts on. */
export const FORWARDING_KINDS = (1 << K_IDENTITY) | (1 << K_XFF);
/** Kinds that are hop-by-hop whatever Connection says (STATIC_HOP plus the proxy- prefix). */
export const HOP_KINDS = (1 << K_CONNECTION) | (1 << K_UPGRADE) | (1 << K_HOP);

/** Classifies a field name `buf[p, q)` without decoding it. */
export function fieldKind(buf: Uint8Array, p: number, q: number): number {
  switch (q - p) {
    case 2:
      if (eqLower(buf, p, "te")) return K_HOP;
      break;
    case 4:
      if (eqLower(buf, p, "host")) return K_HOST;
      break;
    case 6:
      if (eqLower(buf, p, "expect")) return K_EXPECT;
      break;
    case 7:
      if (eqLower(buf, p, "upgrade")) return K_UPGRADE;
      if (eqLower(buf, p, "trailer")) return K_HOP;
      break;
    case 9:
      if (eqLower(buf, p, "forwarded")) return K_IDENTITY;
      break;
    case 10:
      if (eqLower(buf, p, "connection")) return K_CONNECTION;
      if (eqLower(buf, p, "keep-alive")) return K_HOP;
      break;
    case 13:
      if (eqLower(buf, p, "x-http-method")) return K_IDENTITY;
      break;
    case 14:
      if (eqLower(buf, p, "content-length")) return K_CONTENT_LENGTH;
      if (eqLower(buf, p, "x-skein-caller")) return K_IDENTITY;
      break;
    case 15:
      if (eqLower(buf, p, "x-forwarded-for")) return K_XFF;
      break;
    case 17:
      if (eqLower(buf, p, "transfer-encoding")) return K_TRANSFER_ENCODING;
      if (eqLower(buf, p, "x-method-override")) return K_IDENTITY;
      break;
    case 18:
      if (eqLower(buf, p, "x-skein-capability")) return K_CAPABILITY;
      break;
    case 22:
      if (eqLower(buf, p, "x-skein-forwarded-peer")) return K_IDENTITY;
      if (eqLower(buf, p, "x-http-method-override")) return K_IDENTITY;
      break;
    case 23:
      if (eqLower(buf, p, "x-forwarded-client-cert")) return K_IDENTITY;
      break;
  }
  if (q - p >= 6 && eqLower(buf, p, "proxy-")) return K_HOP;
  return K_OTHER;
}

/** Whether the field name `buf[p, q)`, lower-cased, equals `name`. */
export function nameIs(buf: Uint8Array, p: number, q: number, name: string): boolean {
  if (q - p !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    if (lowerByte(buf[p + i]!) !== name.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A parsed head. Field names and values are decoded only when read: the parser needs just the
 * framing and connection fields, and most proxied heads are forwarded as bytes. One class
 * serves requests and responses (each ignores the other's fields): a single shape keeps the
 * hot path monomorphic and avoids the cost of derived-class construction.
 */
export class ParsedHead implements RequestHead, ResponseHead {
  raw: Uint8Array;
  start: number;
  end: number;
  firstLineEnd: number;
  versionMinor = 1;
  hasHopByHop = false;
  contentLength = -1;
  chunked = false;
  otherTransferCoding = false;
  keepAlive = true;
  upgrade = false;
  hasObsText = false;
  contentLengthListed = false;
  forwardingFields = false;
  /** FIELD_STRIDE numbers per field, in order; see F_LINE and the slots after it. */
  _f: number[] = [];
  _names: string[] | null = null;
  _values: string[] | null = null;
  _hop: boolean[] | null = null;
  method = "";
  target = "";
  targetRewritten: boolean | undefined = undefined;
  host: string | null = null;
  expectContinue = false;
  asksCapability = false;
  status = 0;
  /** Where the reason phrase is in `raw`, decoded on first read. */
  _rs = 0;
  _re = 0;
  _reason: string | null = null;

  constructor(raw: Uint8Array, start: number, end: number) {
    this.raw = raw;
    this.start = start;
    this.end = end;
    this.firstLineEnd = start;
  }

  get names(): string[] {
    if (this._names === null) {
      const f = this._f;
      const out: string[] = [];
      for (let o = 0; o < f.length; o += FIELD_STRIDE) {
        out.push(latin1(this.raw, f[o + F_LINE]!, f[o + F_COLON]!).toLowerCase());
      }
      this._names = out;
    }
    return this._names;
  }

  get values(): string[] {
    if (this._values === null) {
      const f = this._f;
      const out: string[] = [];
      for (let o = 0; o < f.length; o += FIELD_STRIDE) {
        out.push(latin1(this.raw, f[o + F_VS]!, f[o + F_VE]!));
      }
      this._values = out;
    }
    return this._values;
  }

  get lineStarts(): number[] {
    const f = this._f;
    const out: number[] = [];
    for (let o = 0; o < f.length; o += FIELD_STRIDE) out.push(f[o + F_LINE]!);
    return out;
  }

  get lineEnds(): number[] {
    // Field lines are contiguous: each ends where the next starts, the last at the blank line.
    const f = this._f;
    const out: number[] = [];
    for (let o = FIELD_STRIDE; o < f.length; o += FIELD_STRIDE) out.push(f[o + F_LINE]!);
    if (f.length > 0) out.push(this.end - 2);
    return out;
  }

  get reason(): string {
    this._reason ??= latin1(this.raw, this._rs, this._re);
    return this._reason;
  }

  get hop(): boolean[] {
    // Kept once created: callers mark extra fields hop-by-hop by writing into it.
    this._hop ??= new Array<boolean>(this._f.length / FIELD_STRIDE).fill(false);
    return this._hop;
  }
}
