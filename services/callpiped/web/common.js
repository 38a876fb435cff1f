// callpipe console: what every page shares. The API token comes from the
// form (kept in this browser's localStorage) or from the page address as
// #token=... (never sent to the server as part of the URL).
"use strict";

const callpipe = (() => {
  const KEY = "callpipe.token";
  const hash = new URLSearchParams(location.hash.slice(1));

  if (hash.has("token")) {
    localStorage.setItem(KEY, hash.get("token"));
  }

  function token() {
    return localStorage.getItem(KEY) || "";
  }

  async function api(path) {
    const headers = {};
    if (token()) {
      headers.Authorization = "Bearer " + token();
    }
    const res = await fetch(path, { headers, cache: "no-store" });
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const msg = body && body.error ? body.error.message : res.statusText;
      throw new Error(res.status + ": " + msg);
    }
    return body;
  }

  function showError(err) {
    const p = document.getElementById("error");
    p.textContent = err ? String(err.message || err) : "";
    p.hidden = !err;
  }

  function text(id, value) {
    document.getElementById(id).textContent = String(value);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("token-form");
    const input = document.getElementById("token");
    input.value = token();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      localStorage.setItem(KEY, input.value.trim());
      document.dispatchEvent(new Event("callpipe-token"));
    });
  });

  return { api, token, showError, text, hash };
})();
