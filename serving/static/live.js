// docclass live page: drop a document, POST it to /classify, show class, confidence, whether it needs review, the
// top three classes, thumbnails and page classes; with "split", the documents a bundle holds and their page ranges.
"use strict";
const $ = (id) => document.getElementById(id);
const keyInput = $("apikey");
keyInput.value = sessionStorage.getItem("docclass-key") || "";
keyInput.addEventListener("change", () => { sessionStorage.setItem("docclass-key", keyInput.value); loadVersions(); });
const splitToggle = $("split");
splitToggle.checked = sessionStorage.getItem("docclass-split") === "1";
splitToggle.addEventListener("change", () => sessionStorage.setItem("docclass-split", splitToggle.checked ? "1" : "0"));

function headers() {
  return keyInput.value ? { Authorization: "Bearer " + keyInput.value } : {};
}

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
  children.forEach((c) => node.append(c));
  return node;
}

async function loadVersions() {
  try {
    const res = await fetch("/versions", { headers: headers() });
    const body = await res.json();
    if (!res.ok) { $("champion").textContent = "champion: " + (body.error || res.status); return; }
    $("champion").textContent = "champion: " + body.champion;
    const select = $("version");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "champion"));
    body.versions.forEach((v) => select.append(el("option", { value: v.version }, v.version + (v.champion ? " (champion)" : ""))));
    select.value = chosen;
  } catch (err) {
    $("champion").textContent = "champion: unreachable";
  }
}

function percent(x) { return (100 * x).toFixed(1) + "%"; }

function pageRange(segment) {
  return segment.first_page === segment.last_page ? "page " + segment.first_page
    : "pages " + segment.first_page + "\u2013" + segment.last_page;
}

function review(doc) {
  // the review score is the confidence, or a stacked model's own score (margin, minus 1 on disagreement)
  const against = "review score " + doc.review_score.toFixed(3) + ", the model's review threshold " + doc.review_threshold.toFixed(3);
  return doc.needs_review
    ? el("span", { class: "review", "data-testid": "review", title: "needs review: " + against }, "needs review")
    : el("span", { class: "reviewed", "data-testid": "review", title: "no review needed: " + against }, "no review needed");
}

function topClasses(doc) {
  const list = el("ol", { class: "top", "data-testid": "top" });
  (doc.top || []).forEach((t) => list.append(el("li", { "data-testid": "top-class" },
    el("span", { class: "top-label" }, t.label), " ", el("span", { class: "top-score" }, percent(t.score)),
    el("span", { class: "top-bar", style: "width:" + percent(t.score) }))));
  return list;
}

function segmentsOf(doc) {
  if (!doc.segments) return "";
  const rows = doc.segments.map((s) => el("tr", { "data-testid": "segment" },
    el("td", {}, pageRange(s)), el("td", { class: "label-cell" }, s.label), el("td", {}, percent(s.confidence))));
  return el("div", { class: "segments" },
    el("h3", {}, doc.segments.length + " document(s) in this file"),
    el("table", { "data-testid": "segments" },
      el("thead", {}, el("tr", {}, el("th", {}, "pages"), el("th", {}, "class"), el("th", {}, "confidence"))),
      el("tbody", {}, ...rows)));
}

function render(body) {
  const out = $("results");
  out.replaceChildren();
  body.documents.forEach((doc) => {
    const pages = el("div", { class: "pages" });
    doc.pages.forEach((p) => {
      const img = el("img", { src: p.thumbnail || "", alt: "page " + p.page, width: "96", height: "128" });
      pages.append(el("div", { class: "page", "data-testid": "page" }, img,
        el("span", { class: "page-label" }, "p" + p.page + ": " + p.label), el("br"),
        el("span", {}, percent(p.confidence) + " (" + p.source + ")")));
    });
    const card = el("div", { class: "doc" + (doc.needs_review ? " flagged" : ""), "data-testid": "document" },
      el("h2", {}, doc.name),
      el("span", { class: "label", "data-testid": "label" }, doc.label),
      " ", el("span", { "data-testid": "confidence" }, percent(doc.confidence)),
      review(doc),
      el("div", { class: "bar", style: "width:" + percent(doc.confidence) }),
      topClasses(doc),
      segmentsOf(doc),
      pages);
    out.append(card);
  });
  body.rejected.forEach((r) => out.append(el("div", { class: "doc error", "data-testid": "rejected" }, r.name + ": " + r.error)));
  setStatus("model " + body.model_version + " - " + body.documents.length + " document(s) in " + Math.round(body.timings_ms.total) + " ms", false);
}

async function classify(file) {
  setStatus("classifying " + file.name + " ...", false);
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("thumbnails", "true");
  const query = new URLSearchParams();
  const version = $("version").value;
  if (version) query.set("version", version);
  if (splitToggle.checked) query.set("split", "auto");
  const url = "/classify" + (query.toString() ? "?" + query.toString() : "");
  try {
    const res = await fetch(url, { method: "POST", body: form, headers: headers() });
    const body = await res.json();
    if (!res.ok) { $("results").replaceChildren(); setStatus(res.status + ": " + (body.error || JSON.stringify(body)), true); return; }
    render(body);
  } catch (err) {
    setStatus("request failed: " + err, true);
  }
}

const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) classify(e.dataTransfer.files[0]); });
$("file").addEventListener("change", (e) => { if (e.target.files.length) classify(e.target.files[0]); });
loadVersions();
