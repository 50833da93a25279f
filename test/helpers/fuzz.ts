// Seeded mutation of bytes, for fuzzing what the package takes from outside: the same seed
// gives the same cases, so a failure can be replayed (SQI_FUZZ_SEED=<seed>). The seeded
// generator is the one the clones use.

export { mulberry32 } from "../../lib/container/clones";

const INTERESTING = ["\u0000", "\r\n", "//", "%", "[", "{", '"', "\\", "\uffff", "9e999", "-1", "[[[[[[[[", '{"a":', "\r\n\r\n", " ".repeat(50)];

/** One to four random edits of `input`: flipped, inserted, deleted or repeated bytes, a cut, or an interesting string spliced in. */
export function mutate(input: Buffer, rand: () => number): Buffer {
  let b = Buffer.from(input);
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (b.length + 1));
    switch (Math.floor(rand() * 6)) {
      case 0:
        if (b.length) {
          const i = Math.min(at, b.length - 1);
          b[i] = (b[i] ?? 0) ^ (1 << Math.floor(rand() * 8));
        }
        break;
      case 1:
        b = Buffer.concat([b.subarray(0, at), Buffer.from([Math.floor(rand() * 256)]), b.subarray(at)]);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(rand() * 8)))]);
        break;
      case 3: {
        const len = Math.floor(rand() * 16);
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      }
      case 4:
        b = b.subarray(0, at);
        break;
      default:
        b = Buffer.concat([b.subarray(0, at), Buffer.from(INTERESTING[Math.floor(rand() * INTERESTING.length)]!), b.subarray(at)]);
    }
  }
  return b;
}
