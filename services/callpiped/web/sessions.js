// The sessions page: GET /calls every 2 s, and the selected session's
// GET /calls/{id} (state, transcript so far, intents, links).
"use strict";

(() => {
  const POLL_MS = 2000;
  let selected = null;

  function cell(row, value) {
    const td = document.createElement("td");
    td.textContent = value == null ? "" : String(value);
    row.appendChild(td);
    return td;
  }

  function renderList(calls) {
    const body = document.getElementById("sessions");
    body.replaceChildren();
    for (const c of calls) {
      const tr = document.createElement("tr");
      tr.dataset.id = c.sessionId;
      if (c.sessionId === selected) {
        tr.className = "selected";
      }
      cell(tr, new Date(c.startedAt).toLocaleString());
      cell(tr, c.kind);
      cell(tr, c.state).className = "state-" + c.state;
      cell(tr, c.duration.toFixed(1) + " s");
      cell(tr, c.contactId);
      cell(tr, c.sessionId.slice(0, 8));
      tr.addEventListener("click", () => {
        selected = c.sessionId;
        refresh();
      });
      body.appendChild(tr);
    }
  }

  function link(parent, href, label) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    parent.append(a, " ");
  }

  function renderDetail(s) {
    document.getElementById("detail").hidden = false;
    callpipe.text("detail-id", s.sessionId);
    callpipe.text("detail-state", s.kind + ", " + s.state);
    callpipe.text("detail-reason", s.reason || "");
    const links = document.getElementById("detail-links");
    links.replaceChildren();
    if (s.recordingUrl) {
      link(links, s.recordingUrl, "recording");
    }
    if (s.transcriptUrl) {
      link(links, s.transcriptUrl, "transcript JSON");
    }
    const ol = document.getElementById("detail-transcript");
    ol.replaceChildren();
    for (const t of s.transcript || []) {
      const li = document.createElement("li");
      li.dataset.role = t.role;
      li.textContent = t.text;
      ol.appendChild(li);
    }
    const ul = document.getElementById("detail-intents");
    ul.replaceChildren();
    for (const i of s.intents || []) {
      const li = document.createElement("li");
      li.textContent = i.intent + (i.reason ? ": " + i.reason : "");
      ul.appendChild(li);
    }
  }

  async function refresh() {
    try {
      const [health, list] = await Promise.all([
        callpipe.api("/health"), callpipe.api("/calls?limit=100")]);
      callpipe.text("health", health.activeSessions + " active" +
        (health.draining ? ", draining" : ""));
      renderList(list.calls);
      if (selected) {
        renderDetail(await callpipe.api("/calls/" + selected));
      }
      callpipe.showError(null);
    } catch (err) {
      callpipe.showError(err);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    refresh();
    setInterval(refresh, POLL_MS);
  });
  document.addEventListener("callpipe-token", refresh);
})();
