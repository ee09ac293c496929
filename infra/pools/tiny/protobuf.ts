/**
 * A minimal protobuf encoder: just enough wire format to write ONNX models from code (varints, length-delimited
 * fields, fixed32 floats, packed repeated scalars). Each function returns the bytes of one encoded field; a message
 * is the concatenation of its fields. Wire format reference: https://protobuf.dev/programming-guides/encoding/
 */

/** Wire types used here (protobuf encoding, "Message Structure"). */
const VARINT = 0
const LEN = 2
const I32 = 5

/**
 * Encodes an unsigned or signed integer as a base-128 varint. Negative numbers take ten bytes, as int64 fields
 * require (two's complement over 64 bits).
 * @param value the integer (number or bigint)
 */
export function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value))
  const out: number[] = []
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return Uint8Array.from(out)
}

/**
 * Concatenates encoded fields into one buffer (a message body).
 * @param parts encoded fields, in order
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

function key(field: number, wireType: number): Uint8Array {
  return varint((field << 3) | wireType)
}

/**
 * Encodes an integer field (int32, int64, enum, bool) as a varint.
 * @param field the field number
 * @param value the value
 */
export function intField(field: number, value: number | bigint): Uint8Array {
  return concat([key(field, VARINT), varint(value)])
}

/**
 * Encodes a length-delimited field: raw bytes or an embedded message body.
 * @param field the field number
 * @param body the bytes (use {@link concat} to build a message body)
 */
export function bytesField(field: number, body: Uint8Array): Uint8Array {
  return concat([key(field, LEN), varint(body.length), body])
}

/**
 * Encodes a string field as UTF-8.
 * @param field the field number
 * @param value the string
 */
export function stringField(field: number, value: string): Uint8Array {
  return bytesField(field, new TextEncoder().encode(value))
}

/**
 * Encodes a float field as fixed32 (little-endian IEEE 754).
 * @param field the field number
 * @param value the value
 */
export function floatField(field: number, value: number): Uint8Array {
  const body = new Uint8Array(4)
  new DataView(body.buffer).setFloat32(0, value, true)
  return concat([key(field, I32), body])
}

/**
 * Encodes a packed repeated float field (proto3 packs repeated scalars by default; ONNX readers accept both).
 * @param field the field number
 * @param values the values
 */
export function packedFloats(field: number, values: ArrayLike<number>): Uint8Array {
  const body = new Uint8Array(values.length * 4)
  const view = new DataView(body.buffer)
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] ?? 0, true)
  return bytesField(field, body)
}

/**
 * Encodes a packed repeated varint field (int32 / int64 lists).
 * @param field the field number
 * @param values the values
 */
export function packedVarints(field: number, values: ReadonlyArray<number | bigint>): Uint8Array {
  return bytesField(field, concat(values.map((v) => varint(v))))
}
