/* pubtrail's in-browser verifier: C2SP signed notes (Ed25519) and RFC 9162 inclusion proofs
 * (SHA-256), with Web Crypto only. The server is an untrusted source of bytes: every check
 * starts from the verifier key the user pinned (or the one embedded in the page) and from
 * bytes fetched from the JSON API; nothing the server says is "verified" is believed.
 *
 * Every function that fails throws a VerifyError whose message says what failed.
 * Exposed as window.PubtrailVerify (known-answer tests call it directly).
 */
"use strict";
(function (global) {
  class VerifyError extends Error {}

  const encoder = new TextEncoder();
  const strictDecoder = new TextDecoder("utf-8", { fatal: true });
  const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
  const HEX = /^(?:[0-9a-f]{2})*$/;

  function fail(message) {
    throw new VerifyError(message);
  }

  function subtle() {
    if (!global.crypto || !global.crypto.subtle) {
      fail("this page is not in a secure context (https or localhost), so the browser offers no Web Crypto to verify with");
    }
    return global.crypto.subtle;
  }

  function fromBase64(text, what) {
    if (typeof text !== "string" || !B64.test(text)) fail(`${what} is not canonical base64`);
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function fromHex(text, what) {
    if (typeof text !== "string" || !HEX.test(text)) fail(`${what} is not lower-case hex`);
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
    return out;
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }

  async function sha256(bytes) {
    return new Uint8Array(await subtle().digest("SHA-256", bytes));
  }

  /** RFC 9162 2.1.1: SHA-256(0x00 || entry). */
  function leafHash(entry) {
    return sha256(concat(Uint8Array.of(0), entry));
  }

  /** RFC 9162 2.1.1: SHA-256(0x01 || left || right). */
  function nodeHash(left, right) {
    return sha256(concat(Uint8Array.of(1), left, right));
  }

  /** A verifier key `<name>+<8 hex key id>+<base64(0x01 || 32-byte Ed25519 key)>`, its id checked. */
  async function parseVerifierKey(text) {
    if (typeof text !== "string") fail("no verifier key");
    const first = text.indexOf("+");
    const second = text.indexOf("+", first + 1);
    if (first <= 0 || second < 0) fail("malformed verifier key: expected name+keyid+key");
    const name = text.slice(0, first);
    const idHex = text.slice(first + 1, second);
    if (/[\s+]/.test(name)) fail("malformed verifier key: bad name");
    if (!/^[0-9a-f]{8}$/i.test(idHex)) fail("malformed verifier key: key id is not 8 hex digits");
    const key = fromBase64(text.slice(second + 1), "verifier key");
    if (key.length !== 33 || key[0] !== 0x01) fail("verifier key is not an Ed25519 key (type 0x01, 32 bytes)");
    const digest = await sha256(concat(encoder.encode(name + "\n"), key));
    const keyId = toHex(digest.subarray(0, 4));
    if (keyId !== idHex.toLowerCase()) fail("verifier key id does not match its key");
    let cryptoKey;
    try {
      cryptoKey = await subtle().importKey("raw", key.subarray(1), { name: "Ed25519" }, false, ["verify"]);
    } catch (err) {
      fail(`this browser cannot import Ed25519 keys (${err.message})`);
    }
    return { name, keyId, publicKey: key.subarray(1), cryptoKey, text };
  }

  /** Open a C2SP signed note: the text if `key` signed it; fails on a bad or missing signature. */
  async function openNote(note, key) {
    if (typeof note !== "string") fail("no checkpoint note");
    for (const ch of note) {
      const code = ch.codePointAt(0);
      if (code < 0x20 && ch !== "\n") fail("checkpoint note holds a control character");
    }
    const split = note.lastIndexOf("\n\n");
    if (split < 0) fail("checkpoint note has no blank line before its signatures");
    const text = note.slice(0, split + 1);
    const block = note.slice(split + 2);
    if (!block.endsWith("\n")) fail("checkpoint note's signature block does not end in a newline");
    const lines = block.slice(0, -1).split("\n");
    if (lines.length > 100) fail("checkpoint note has more than 100 signatures");
    let found = false;
    for (const line of lines) {
      if (!line.startsWith("\u2014 ")) fail("checkpoint note has a malformed signature line");
      const body = line.slice(2);
      const space = body.indexOf(" ");
      if (space <= 0) fail("checkpoint note has a malformed signature line");
      const name = body.slice(0, space);
      const raw = fromBase64(body.slice(space + 1), "signature");
      if (raw.length < 5) fail("checkpoint signature is too short");
      if (name !== key.name || toHex(raw.subarray(0, 4)) !== key.keyId) continue; // another key (a witness)
      if (found) continue;
      found = true;
      if (raw.length !== 68) fail(`the signature by ${key.name}+${key.keyId} is not an Ed25519 signature`);
      const ok = await subtle().verify({ name: "Ed25519" }, key.cryptoKey, raw.subarray(4), encoder.encode(text));
      if (!ok) fail(`the checkpoint's signature by ${key.name}+${key.keyId} does not verify: the note was altered or not signed by the pinned key`);
    }
    if (!found) fail(`the checkpoint carries no signature by the pinned key ${key.name}+${key.keyId}`);
    return text;
  }

  /** A C2SP checkpoint body: origin (must be the key's name), size and root hash. */
  function parseCheckpoint(text, origin) {
    const lines = text.split("\n");
    if (lines.length < 4 || lines[lines.length - 1] !== "") fail("checkpoint body is not three lines");
    if (lines[0] !== origin) fail(`checkpoint origin ${JSON.stringify(lines[0])} is not the pinned key's ${JSON.stringify(origin)}`);
    if (!/^(?:0|[1-9][0-9]{0,15})$/.test(lines[1])) fail("checkpoint size is not a decimal number");
    const root = fromBase64(lines[2], "checkpoint root hash");
    if (root.length !== 32) fail("checkpoint root hash is not 32 bytes");
    return { origin: lines[0], size: Number(lines[1]), root };
  }

  /** Open and parse a signed checkpoint with `key`. */
  async function verifyCheckpoint(note, key) {
    return parseCheckpoint(await openNote(note, key), key.name);
  }

  /** RFC 9162 2.1.3.2: the root an inclusion proof of `leaf` at `index` leads to in a tree of `size`. */
  async function rootFromInclusionProof(index, size, leaf, proof) {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
      fail(`index ${index} is not inside a tree of size ${size}`);
    }
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (p.length !== 32) fail("an inclusion proof hash is not 32 bytes");
      if (sn === 0) fail("the inclusion proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail("the inclusion proof is too short");
    return r;
  }

  /** Check that `leaf` is at `index` in the tree whose root is `root`. */
  async function verifyInclusion(leaf, index, size, proof, root) {
    const computed = await rootFromInclusionProof(index, size, leaf, proof);
    if (!equal(computed, root)) fail(`the inclusion proof of entry ${index} does not lead to the checkpoint's root`);
  }

  /**
   * A log item of the JSON API (`{index, leaf_hash, entry_bytes, inclusion_proof | proof}`),
   * proven in `checkpoint`: its bytes hash to its leaf and the leaf is in the tree. Returns
   * the entry decoded from the verified bytes (never the server's decoded `entry`).
   */
  async function verifyItem(item, checkpoint, what) {
    const label = what || `entry ${item && item.index}`;
    if (!item || !Number.isSafeInteger(item.index)) fail(`${label}: no index`);
    const bytes = fromBase64(item.entry_bytes, `${label}'s bytes`);
    const leaf = await leafHash(bytes);
    if (toHex(leaf) !== item.leaf_hash) fail(`${label}: its bytes do not hash to its leaf hash (the entry was altered)`);
    const proof = item.inclusion_proof || item.proof;
    if (!proof || !Array.isArray(proof.hashes)) fail(`${label}: no inclusion proof`);
    if (proof.tree_size !== checkpoint.size) fail(`${label}: proven at size ${proof.tree_size}, not the checkpoint's ${checkpoint.size}`);
    if ("index" in proof && proof.index !== item.index) fail(`${label}: the proof is for another index`);
    const hashes = proof.hashes.map((h, i) => fromHex(h, `${label}'s proof hash ${i}`));
    const computed = await rootFromInclusionProof(item.index, checkpoint.size, leaf, hashes);
    if (!equal(computed, checkpoint.root)) fail(`${label}: its inclusion proof does not lead to the signed root (the proof or the entry was altered)`);
    let entry;
    try {
      entry = JSON.parse(strictDecoder.decode(bytes));
    } catch (err) {
      fail(`${label}: its bytes are not JSON`);
    }
    return entry;
  }

  global.PubtrailVerify = {
    VerifyError,
    fromBase64,
    fromHex,
    toHex,
    sha256,
    leafHash,
    nodeHash,
    parseVerifierKey,
    openNote,
    parseCheckpoint,
    verifyCheckpoint,
    rootFromInclusionProof,
    verifyInclusion,
    verifyItem,
  };
})(window);
