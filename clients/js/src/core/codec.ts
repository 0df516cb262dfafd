// The two sub-protocols of PROTOCOL.md ("Transport"): one msgpack map per binary frame,
// or one JSON object per text frame with bytes as base64 (and, optionally, raw audio
// as binary frames).

import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";
import { isMap, type ClientMessage, type WireMap } from "./messages.js";

export type Frame = string | Uint8Array;

export const MSGPACK = "parley.v1.msgpack";
export const JSON_PROTOCOL = "parley.v1.json";
export type Subprotocol = typeof MSGPACK | typeof JSON_PROTOCOL;

/** A frame that is not one well-formed map of this sub-protocol. */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
}

export interface Codec {
  readonly subprotocol: Subprotocol;
  /** True when an `audio` message without `chunk` goes as a bare binary frame. */
  readonly binaryAudio: boolean;
  encode(message: ClientMessage): Frame;
  /** The map in `frame`, with a string `type`; throws DecodeError. */
  decode(frame: Frame): WireMap;
}

function checked(value: unknown): WireMap {
  if (!isMap(value)) throw new DecodeError("frame does not hold a map");
  if (typeof value["type"] !== "string") throw new DecodeError("message has no string type");
  return value;
}

export class MsgpackCodec implements Codec {
  readonly subprotocol = MSGPACK;
  readonly binaryAudio = false;

  encode(message: ClientMessage): Frame {
    // @msgpack/msgpack writes Uint8Array as bin, which is what "audio.data" must be.
    return msgpackEncode(message, { ignoreUndefined: true });
  }

  decode(frame: Frame): WireMap {
    if (typeof frame === "string") throw new DecodeError("text frame in msgpack mode");
    let value: unknown;
    try {
      value = msgpackDecode(frame);
    } catch (err) {
      throw new DecodeError(`undecodable msgpack: ${(err as Error).message}`);
    }
    return checked(value);
  }
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 with padding. Written out because React Native lacks btoa on older engines. */
export function base64Encode(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + "==";
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + "=";
  }
  return out;
}

export class JsonCodec implements Codec {
  readonly subprotocol = JSON_PROTOCOL;

  constructor(readonly binaryAudio = false) {}

  encode(message: ClientMessage): Frame {
    if (message.type === "audio") {
      if (this.binaryAudio && message.chunk === undefined) return message.data;
      const out: WireMap = { type: "audio", data: base64Encode(message.data) };
      if (message.chunk !== undefined) out["chunk"] = message.chunk;
      return JSON.stringify(out);
    }
    return JSON.stringify(message);
  }

  decode(frame: Frame): WireMap {
    // The server sends no binary frames in JSON mode (only clients send raw audio).
    if (typeof frame !== "string") throw new DecodeError("binary frame in json mode");
    let value: unknown;
    try {
      value = JSON.parse(frame);
    } catch (err) {
      throw new DecodeError(`undecodable json: ${(err as Error).message}`);
    }
    return checked(value);
  }
}

/** The codec for the sub-protocol the server chose ("" when it chose none: JSON). */
export function codecFor(subprotocol: string, binaryAudio = false): Codec {
  return subprotocol === MSGPACK ? new MsgpackCodec() : new JsonCodec(binaryAudio);
}
