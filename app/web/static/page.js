/* The explorer's page logic: run the verification the page asks for (#verification
 * data-verify=checkpoint|file|entry|project|blast), the key pinning box and the
 * incident form. Verification fetches the JSON API itself and checks every item with
 * verify.js; the HTML the server rendered is compared with the verified bytes too. */
"use strict";
(function () {
  const V = window.PubtrailVerify;
  const PIN = "pubtrail.pinned-key";
  const badge = document.getElementById("verification");
  const stepsList = document.getElementById("verify-steps");

  function step(text) {
    if (!stepsList) return;
    const li = document.createElement("li");
    li.textContent = text;
    stepsList.appendChild(li);
  }

  function show(state, word, reason) {
    if (!badge) return;
    badge.className = `badge ${state}`;
    badge.querySelector(".badge-word").textContent = word;
    badge.querySelector(".badge-reason").textContent = reason;
    badge.dataset.state = state;
  }

  function pinned() {
    try {
      return localStorage.getItem(PIN);
    } catch (err) {
      return null;
    }
  }

  async function getJSON(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new V.VerifyError(`${path} answered HTTP ${response.status}`);
    try {
      return await response.json();
    } catch (err) {
      throw new V.VerifyError(`${path} did not answer JSON`);
    }
  }

  /** The key to verify with: the one pinned in this browser, else the one the page embeds. */
  async function trustedKey() {
    const served = document.body.dataset.verifierKey;
    const mine = pinned();
    if (mine && mine !== served) {
      throw new V.VerifyError(`the server now gives the verifier key ${served}, not the key pinned in this browser (${mine})`);
    }
    const key = await V.parseVerifierKey(mine || served);
    step(mine ? `Using the key pinned in this browser: ${key.text}` : `Using the key this server gives (pin it on the status page): ${key.text}`);
    return { key, pinned: Boolean(mine) };
  }

  const checkpoints = new Map();
  async function checkpoint(note, key) {
    if (!checkpoints.has(note)) {
      const cp = await V.verifyCheckpoint(note, key);
      step(`Checkpoint of size ${cp.size} carries a valid Ed25519 signature by ${key.name}+${key.keyId}`);
      checkpoints.set(note, cp);
    }
    return checkpoints.get(note);
  }

  /** Every [data-check="upload.x" | "publisher.x"] element shows what the verified entry says. */
  function compareShown(sources) {
    let compared = 0;
    for (const element of document.querySelectorAll("[data-check]")) {
      const [source, field] = element.dataset.check.split(".");
      const values = sources[source];
      if (!values) continue;
      const expected = values[field] === null || values[field] === undefined ? "" : String(values[field]);
      if (element.textContent.trim() !== expected) {
        throw new V.VerifyError(`the page shows ${source} ${field} "${element.textContent.trim()}" but the verified entry says "${expected}"`);
      }
      compared++;
    }
    step(`${compared} fields shown on this page match the verified entries`);
  }

  /** Each table row naming an entry (data-index, data-leaf-hash, data-kind) is that entry, proven. */
  async function verifyRows(selector, key, check) {
    const rows = Array.from(document.querySelectorAll(selector)).slice(0, 50);
    for (const row of rows) {
      const item = await getJSON(`/api/v1/log/entries/${row.dataset.index}`);
      const cp = await checkpoint(item.checkpoint, key);
      const entry = await V.verifyItem(item, cp, `entry ${row.dataset.index}`);
      if (item.index !== Number(row.dataset.index) || item.leaf_hash !== row.dataset.leafHash) {
        throw new V.VerifyError(`entry ${row.dataset.index} is not the entry this page lists`);
      }
      if (row.dataset.kind && entry.kind !== row.dataset.kind) {
        throw new V.VerifyError(`entry ${row.dataset.index} is a ${entry.kind} entry, not the ${row.dataset.kind} listed`);
      }
      if (check) check(row, entry);
    }
    if (rows.length) step(`${rows.length} listed entries hash to their leaves and are included`);
    return rows.length;
  }

  const checks = {
    async checkpoint(key) {
      const info = await getJSON("/api/v1/log");
      const cp = await checkpoint(info.checkpoint, key);
      const shown = document.getElementById("checkpoint-note");
      if (shown) {
        const old = await checkpoint(shown.textContent, key);
        if (old.size > cp.size) throw new V.VerifyError("the log's latest checkpoint is smaller than the one this page showed");
      }
      const listed = await verifyRows("#recent tr[data-index]", key);
      return `checkpoint of size ${cp.size} signed by the ${key.name} key; ${listed} recent entries proven`;
    },

    async file(key) {
      const sha256 = badge.dataset.sha256;
      const answer = await getJSON(`/api/v1/provenance/${sha256}`);
      const cp = await checkpoint(answer.checkpoint, key);
      const upload = await V.verifyItem(answer.upload, cp, "the upload entry");
      if (upload.kind !== "upload") throw new V.VerifyError(`entry ${answer.upload.index} is a ${upload.kind} entry, not an upload`);
      if (upload.sha256 !== sha256) throw new V.VerifyError(`the upload entry proven is for the file ${upload.sha256}, not ${sha256}`);
      step(`Upload entry ${answer.upload.index} hashes to its leaf and is included in the checkpoint`);
      let proven = 1;
      if (upload.exchange_index !== null && upload.exchange_index !== undefined) {
        if (!answer.exchange || answer.exchange.index !== upload.exchange_index) {
          throw new V.VerifyError(`the upload names exchange ${upload.exchange_index}, but the server proved another entry`);
        }
        const exchange = await V.verifyItem(answer.exchange, cp, "the exchange entry");
        if (exchange.kind !== "exchange") throw new V.VerifyError(`entry ${answer.exchange.index} is not an exchange`);
        if (exchange.token_id !== upload.token_id) throw new V.VerifyError("the exchange entry minted another token than the upload's");
        const claims = exchange.claims || {};
        if (exchange.provider === "github" && (claims.repository !== upload.publisher.repository || claims.sha !== upload.publisher.sha)) {
          throw new V.VerifyError("the upload's publisher identity differs from the exchange's claims");
        }
        step(`Exchange entry ${answer.exchange.index} (the token's minting) hashes to its leaf and is included`);
        proven++;
      }
      if (upload.auth === "api_token" && answer.api_token && answer.api_token.entry_bytes) {
        const created = await V.verifyItem(answer.api_token, cp, "the API token's entry");
        if (created.kind !== "api_token") throw new V.VerifyError(`entry ${answer.api_token.index} is not an api_token entry`);
        step(`The API token's entry ${answer.api_token.index} is included`);
        proven++;
      }
      const previous = answer.identity_continuity && answer.identity_continuity.previous_release;
      if (previous) {
        const before = await V.verifyItem(previous.upload, cp, "the previous release's upload entry");
        if (before.kind !== "upload" || before.project !== upload.project || previous.upload.index >= answer.upload.index) {
          throw new V.VerifyError("the previous release given is not an earlier upload of this project");
        }
        step(`Previous release's upload entry ${previous.upload.index} is included`);
        proven++;
      }
      compareShown({ upload, publisher: upload.publisher || {} });
      return `${proven} entries proven in the checkpoint of size ${cp.size} signed by ${key.name}`;
    },

    async entry(key) {
      const index = Number(badge.dataset.index);
      const answer = await getJSON(`/api/v1/log/entries/${index}`);
      const cp = await checkpoint(answer.checkpoint, key);
      if (answer.index !== index) throw new V.VerifyError(`the server answered entry ${answer.index}, not ${index}`);
      await V.verifyItem(answer, cp, `entry ${index}`);
      if (answer.leaf_hash !== badge.dataset.leafHash) throw new V.VerifyError("the leaf hash shown is not the verified entry's");
      const shown = document.getElementById("entry-bytes");
      if (shown && shown.textContent.trim() !== answer.entry_bytes) throw new V.VerifyError("the bytes shown are not the verified entry's");
      step(`Entry ${index} hashes to its leaf and is included in the checkpoint`);
      return `entry ${index} proven in the checkpoint of size ${cp.size} signed by ${key.name}`;
    },

    async project(key) {
      const project = badge.dataset.project;
      const answer = await getJSON(`/api/v1/projects/${encodeURIComponent(project)}`);
      await checkpoint(answer.checkpoint, key);
      const changes = await verifyRows("#publisher-history tr[data-index]", key, (row, entry) => {
        if (entry.kind !== "publisher" || entry.project !== project) {
          throw new V.VerifyError(`entry ${row.dataset.index} is not a publisher change of ${project}`);
        }
      });
      return `checkpoint and ${changes} publisher changes verified; open a file to verify its upload`;
    },

    async blast(key) {
      const answer = await getJSON(`/api/v1/blast-radius?${badge.dataset.query}`);
      const cp = await checkpoint(answer.checkpoint, key);
      const counts = new Map();
      for (const item of answer.exchanges) {
        const entry = await V.verifyItem(item, cp, `exchange entry ${item.index}`);
        if (entry.kind !== "exchange") throw new V.VerifyError(`entry ${item.index} is not an exchange`);
      }
      for (const item of answer.uploads) {
        const entry = await V.verifyItem(item, cp, `upload entry ${item.index}`);
        if (entry.kind !== "upload") throw new V.VerifyError(`entry ${item.index} is not an upload`);
        const key2 = `${entry.project}\n${entry.version}`;
        counts.set(key2, (counts.get(key2) || 0) + 1);
      }
      step(`${answer.exchanges.length} exchanges and ${answer.uploads.length} uploads hash to their leaves and are included`);
      for (const row of document.querySelectorAll("#grouped tr[data-project]")) {
        const shown = Number(row.querySelector("[data-count]").dataset.count);
        const proven = counts.get(`${row.dataset.project}\n${row.dataset.version}`) || 0;
        if (shown !== proven) {
          throw new V.VerifyError(`the page shows ${shown} files of ${row.dataset.project} ${row.dataset.version}, the verified entries ${proven}`);
        }
      }
      return `${answer.exchanges.length + answer.uploads.length} entries proven in the checkpoint of size ${cp.size} signed by ${key.name}`;
    },
  };

  async function verifyPage() {
    if (!badge) return;
    const check = checks[badge.dataset.verify];
    if (!check) return;
    try {
      const { key, pinned: isPinned } = await trustedKey();
      const said = await check(key);
      show("verified", "verified", said + (isPinned ? " (your pinned key)" : " (the key this server gives; pin it to notice a change)"));
    } catch (err) {
      const reason = err instanceof V.VerifyError ? err.message : `verification could not run: ${err.message}`;
      step(`FAILED: ${reason}`);
      show("failed", "failed", reason);
    }
  }

  function pinBox() {
    const input = document.getElementById("pinned-key");
    if (!input) return;
    const status = document.getElementById("pin-status");
    const refresh = () => {
      input.value = pinned() || "";
    };
    const pin = async (value) => {
      try {
        await V.parseVerifierKey(value.trim());
        localStorage.setItem(PIN, value.trim());
        status.textContent = "Pinned: pages now verify against this key.";
      } catch (err) {
        status.textContent = `Not pinned: ${err.message}`;
      }
      refresh();
      verifyAgain();
    };
    document.getElementById("pin-server-key").addEventListener("click", () => pin(document.body.dataset.verifierKey));
    document.getElementById("pin-typed-key").addEventListener("click", () => pin(input.value));
    document.getElementById("unpin-key").addEventListener("click", () => {
      localStorage.removeItem(PIN);
      status.textContent = "No key pinned: pages verify against the key the server gives.";
      refresh();
      verifyAgain();
    });
    refresh();
  }

  function verifyAgain() {
    if (stepsList) stepsList.textContent = "";
    checkpoints.clear();
    show("pending", "checking…", "Your browser is verifying this page against the signed checkpoint.");
    verifyPage();
  }

  function incidentForm() {
    const form = document.getElementById("incident-form");
    if (!form) return;
    const result = document.getElementById("incident-result");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = document.getElementById("admin-token");
      const body = {
        description: document.getElementById("incident-description").value,
        criteria: JSON.parse(document.getElementById("criteria-json").textContent),
        revoke_tokens: document.getElementById("revoke-tokens").checked,
        disable_publishers: document.getElementById("disable-publishers").checked,
      };
      result.textContent = "Declaring…";
      try {
        const response = await fetch("/api/v1/incidents", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${token.value}` },
          body: JSON.stringify(body),
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) {
          result.textContent = `Refused (HTTP ${response.status}): ${answer.detail || response.statusText}`;
          return;
        }
        const revoked = answer.revoked_tokens || [];
        result.textContent = `Incident ${answer.id} declared in log entry ${answer.log_index}; ${revoked.length} token(s) revoked.`;
      } catch (err) {
        result.textContent = `Could not reach the server: ${err.message}`;
      } finally {
        token.value = "";
      }
    });
  }

  pinBox();
  incidentForm();
  verifyPage();
})();
