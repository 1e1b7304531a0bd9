// Live progress: while a run on this page is pending or running, fetch the same address every 5 s
// and swap in the new runs panel (no full reload, so focus and scroll stay where the user left them).
(function () {
  "use strict";
  function refresh() {
    const panel = document.getElementById("ingest-runs");
    if (!panel || panel.dataset.live !== "true") return;
    fetch(window.location.href, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const next = new DOMParser().parseFromString(html, "text/html").getElementById("ingest-runs");
        if (next) panel.replaceWith(next);
        if (next && next.dataset.live === "true") window.setTimeout(refresh, 5000);
      })
      .catch(() => window.setTimeout(refresh, 15000));
  }
  window.setTimeout(refresh, 5000);
})();
