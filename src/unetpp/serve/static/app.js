// The unetpp page: no build step, no external resources. Each image goes to POST /v1/segment?include=overlay;
// the ZIP button sends them all to POST /v1/segment.zip. The token lives in sessionStorage only.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const tokenInput = $("token"), statusEl = $("status"), results = $("results"), zipButton = $("zip");
  let chosen = [];

  tokenInput.value = sessionStorage.getItem("unetpp-token") || "";
  tokenInput.addEventListener("change", () => {
    sessionStorage.setItem("unetpp-token", tokenInput.value.trim());
    loadModel();
  });

  function headers() {
    const t = tokenInput.value.trim();
    return t ? { Authorization: "Bearer " + t } : {};
  }

  function form(files) {
    const fd = new FormData();
    for (const f of files) fd.append("file", f, f.name);
    // an empty field is left out: the server applies the model's own setting (the response echoes what it applied)
    for (const key of ["mode", "threshold", "min_area"]) if ($(key).value !== "") fd.append(key, $(key).value);
    return fd;
  }

  async function problem(resp) {
    try {
      const j = await resp.json();
      return `${resp.status} ${j.error}` + (j.expected ? ` (expected ${j.expected}, found ${j.found})` : "");
    } catch (e) {
      return `${resp.status} ${resp.statusText}`;
    }
  }

  function say(text, isError) {
    statusEl.textContent = text;
    statusEl.className = isError ? "error" : "";
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.assign(e, attrs || {});
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function table(columns, rows) {
    const t = el("table");
    const head = t.insertRow();
    for (const c of columns) head.appendChild(el("th", {}, c));
    for (const r of rows) {
      const tr = t.insertRow();
      for (const v of r) tr.insertCell().textContent = v;
    }
    return t;
  }

  async function segment(file, card) {
    const resp = await fetch("/v1/segment?include=overlay", { method: "POST", headers: headers(), body: form([file]) });
    card.querySelector(".wait").remove();
    if (!resp.ok) {
      card.appendChild(el("p", { className: "error" }, await problem(resp)));
      return false;
    }
    const j = await resp.json();
    card.dataset.nuclei = j.nuclei;
    card.appendChild(el("img", { className: "overlay", alt: `nuclei outlined in ${file.name}`,
      src: "data:image/png;base64," + j.png.overlay }));
    card.appendChild(el("p", { className: "count" }, `${j.nuclei} nuclei`));
    card.appendChild(el("p", {}, `${j.image.width}x${j.image.height} px, ${j.protocol_line}, ` +
      `${Math.round(j.timings.total_ms)} ms`));
    const box = el("details", { className: "table" });
    box.appendChild(el("summary", {}, "per-nucleus table"));
    box.appendChild(table(j.table.columns, j.table.rows));
    card.appendChild(box);
    return true;
  }

  async function run(files) {
    chosen = Array.from(files);
    results.replaceChildren();
    zipButton.disabled = true;
    if (!chosen.length) return;
    say(`segmenting ${chosen.length} image(s)…`);
    const jobs = chosen.map((f) => {
      const card = el("article", { className: "card" });
      card.dataset.name = f.name;
      card.appendChild(el("h2", {}, f.name));
      card.appendChild(el("p", { className: "wait" }, "working…"));
      results.appendChild(card);
      return segment(f, card).catch((e) => { card.appendChild(el("p", { className: "error" }, String(e))); return false; });
    });
    const ok = await Promise.all(jobs);
    const good = ok.filter(Boolean).length;
    say(`${good} of ${chosen.length} image(s) segmented`, good < chosen.length);
    document.body.dataset.done = "1";
    zipButton.disabled = good === 0;
  }

  zipButton.addEventListener("click", async () => {
    zipButton.disabled = true;
    say("building the ZIP…");
    const resp = await fetch("/v1/segment.zip", { method: "POST", headers: headers(), body: form(chosen) });
    zipButton.disabled = false;
    if (!resp.ok) { say(await problem(resp), true); return; }
    const url = URL.createObjectURL(await resp.blob());
    const a = el("a", { href: url, download: "unetpp_results.zip" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    say("ZIP downloaded");
  });

  $("files").addEventListener("change", (e) => run(e.target.files));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); run(e.dataTransfer.files); });

  async function loadModel() {
    const resp = await fetch("/v1/model", { headers: headers() });
    if (!resp.ok) { $("model").textContent = resp.status === 401 ? "enter the token to use this server" : ""; return; }
    const m = await resp.json();
    // the model's own published figures (its card), or a plain statement that this file has none
    const acc = m.accuracy ? `; ${m.accuracy.summary} on ${m.accuracy.split}` : "; no published figures for this model file";
    // what runs: runtime, precision and whether its accuracy was checked against fp32 (compile/fast.py)
    const ran = (m.runtime_line ? `; runs on ${m.runtime_line}` : "") + (m.protocol_line ? `; ${m.protocol_line}` : "");
    $("model").textContent = `model ${m.name} (${m.backend} ${m.backend_version}, sha256 ${m.sha256.slice(0, 12)}…)${acc}${ran}`;
  }
  loadModel();
})();
