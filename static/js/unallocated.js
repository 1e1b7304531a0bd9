// The Unallocated page's suggestions: Accept or Dismiss through the REST API (session + CSRF).
// Accepting creates the rule server-side (audited) and starts the re-application of the rules.
(function () {
  "use strict";

  var table = document.getElementById("suggestions");
  if (!table) {
    return;
  }
  var csrfInput = document.querySelector("[name=csrfmiddlewaretoken]");
  var csrf = csrfInput ? csrfInput.value : "";
  var status = document.getElementById("suggestion-status");

  function post(path) {
    return fetch("/api/v1/rule-suggestions/" + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    }).then(function (response) {
      return response.json().then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  table.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) {
      return;
    }
    var row = button.closest("tr[data-suggestion]");
    var id = row.dataset.suggestion;
    var action = button.dataset.action;
    row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    post(id + "/" + action).then(function (result) {
      if (result.status >= 400) {
        status.textContent = "Not done: " + JSON.stringify(result.data);
        row.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        return;
      }
      row.remove();
      status.textContent = action === "accept"
        ? "Rule #" + result.data.rule.id + " created; re-applying the rules to history (run #" +
          result.data.reapply_run + "). Reload in a minute to see the new figures."
        : "Suggestion dismissed; it will not be suggested again.";
    });
  });
})();
