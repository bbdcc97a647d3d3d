"use strict";
// Log in with a token: POST /api/login sets an HttpOnly session cookie, then go to the dashboard.
(function () {
  const form = document.getElementById("login-form");
  const input = document.getElementById("token");
  const error = document.getElementById("login-error");

  async function login(token) {
    error.textContent = "";
    let response;
    try {
      response = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token }),
        credentials: "same-origin",
      });
    } catch (e) {
      error.textContent = "Cannot reach the gateway.";
      return;
    }
    if (response.ok) {
      window.location.replace("/");
      return;
    }
    const body = await response.json().catch(() => ({}));
    error.textContent = body.message || `Login failed (${response.status}).`;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    login(input.value.trim());
  });

  // The printed login URL carries the token in the fragment, which never reaches a server. A URL
  // pasted into this tab once it is open changes only the fragment (no reload): hashchange.
  function fromFragment() {
    const match = window.location.hash.match(/token=([^&]+)/);
    if (!match) return;
    history.replaceState(null, "", window.location.pathname);
    input.value = decodeURIComponent(match[1]);
    login(input.value);
  }

  window.addEventListener("hashchange", fromFragment);
  fromFragment();
})();
