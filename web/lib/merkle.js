// Checking a ledger entry's inclusion in the signed head, in the browser:
// canonical JSON (docs/core.md), leaf hash SHA-256(0x00 ‖ canonical entry)
// and the RFC 9162 §2.1.3.2 inclusion-proof verification with WebCrypto,
// recording every step for display.

// The canonical JSON text of a value: members sorted by UTF-16 code units
// (JavaScript's default sort), no whitespace, JSON.stringify's string escapes
// (which are canonical JSON's: \b \t \n \f \r, other controls \u00xx lowercase).
export function canonical(v) {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new Error(`not an integer: ${v}`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function unhex(s) {
  if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error(`not lowercase hex: ${s.slice(0, 16)}…`);
  return Uint8Array.from(s.match(/../g) || [], (b) => parseInt(b, 16));
}

async function sha256(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const buf = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    buf.set(p, off);
    off += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

export async function leafHash(entry) {
  return sha256(Uint8Array.of(0), new TextEncoder().encode(canonical(entry)));
}

// RFC 9162 §2.1.3.2. Returns {ok, root, steps: [text]}.
export async function verifyInclusion({ seq, size, path, leaf, root }) {
  const steps = [];
  const ONE = Uint8Array.of(1);
  if (seq >= size) return { ok: false, steps: [`seq ${seq} is not below the size ${size}`] };
  let fn = BigInt(seq);
  let sn = BigInt(size - 1);
  let r = leaf;
  steps.push(`leaf = SHA-256(0x00 ‖ canonical entry) = ${hex(r)}`);
  for (const [i, ph] of path.entries()) {
    const p = unhex(ph);
    if (sn === 0n) {
      steps.push(`step ${i + 1}: the path is longer than the tree is deep`);
      return { ok: false, steps, root: hex(r) };
    }
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(ONE, p, r);
      steps.push(`step ${i + 1}: r = SHA-256(0x01 ‖ path[${i}] ‖ r) = ${hex(r)}`);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await sha256(ONE, r, p);
      steps.push(`step ${i + 1}: r = SHA-256(0x01 ‖ r ‖ path[${i}]) = ${hex(r)}`);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  const got = hex(r);
  if (sn !== 0n) {
    steps.push('the path is shorter than the tree is deep');
    return { ok: false, steps, root: got };
  }
  const ok = got === root;
  steps.push(ok ? `computed root ${got} = the head's root` : `computed root ${got} ≠ the head's root ${root}`);
  return { ok, steps, root: got };
}
