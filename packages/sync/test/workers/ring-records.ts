// The records the LogRing tests send: "producer:seq:" and a payload whose length and bytes depend on
// both, so that a torn, reordered or duplicated record is detected.
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function payloadFor(producer: number, seq: number): string {
  const length = (seq * 7 + producer * 13) % 300; // 0 … 299 bytes: records wrap the ring at every offset
  const ch = String.fromCharCode(97 + ((seq + producer) % 26));
  return ch.repeat(length);
}

export function makeRecord(producer: number, seq: number): Uint8Array {
  return encoder.encode(`${producer}:${seq}:${payloadFor(producer, seq)}`);
}

export function parseRecord(bytes: Uint8Array): { producer: number; seq: number; intact: boolean } {
  return parseText(decoder.decode(bytes));
}

/** parseRecord for a record the consumer read as text (LogRing.drainText). */
export function parseText(text: string): { producer: number; seq: number; intact: boolean } {
  const [p, s, payload] = text.split(':');
  const producer = Number(p);
  const seq = Number(s);
  return { producer, seq, intact: payload === payloadFor(producer, seq) };
}
