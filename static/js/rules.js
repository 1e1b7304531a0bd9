// The mapping rules page: renders the rules the server handed over (json_script "rules-page"),
// previews a rule while it is typed (POST /api/v1/dimension-rules/preview), saves it through the
// REST API, and follows the background run that re-applies the rules to history.
(function () {
  "use strict";

  var source = document.getElementById("rules-page");
  if (!source) {
    return;
  }
  var page = JSON.parse(source.textContent);
  var api = "/api/v1/";
  var form = document.getElementById("rule-form");
  var csrf = form ? form.querySelector("[name=csrfmiddlewaretoken]").value : "";
  var previewTimer = null;
  var previewSeq = 0;
  var pollTimer = null;

  function text(value) {
    return value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function money(amount, currency) {
    var number = Number(amount);
    return number.toLocaleString(undefined, { style: "currency", currency: currency, maximumFractionDigits: 2 });
  }

  function request(method, path, body) {
    return fetch(api + path, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      if (response.status === 204) {
        return { status: 204, data: null, headers: response.headers };
      }
      return response.json().then(function (data) {
        return { status: response.status, data: data, headers: response.headers };
      });
    });
  }

  function cell(row, value) {
    var td = document.createElement("td");
    td.textContent = value;
    row.appendChild(td);
    return td;
  }

  function describeMatch(rule) {
    var subject = rule.match_field === "tag" ? "tag " + rule.tag_key : rule.match_field.replace(/_/g, " ");
    if (rule.operator === "exists") {
      return subject + " exists";
    }
    return subject + " " + rule.operator + " “" + rule.value + "”";
  }

  function describeSets(rule) {
    var parts = [];
    if (rule.set_team) parts.push("team " + rule.set_team);
    if (rule.set_model) parts.push("model " + rule.set_model);
    if (rule.set_deployment) parts.push("deployment " + rule.set_deployment);
    return parts.join(", ");
  }

  function renderRules() {
    var body = document.querySelector("#rules-table tbody");
    body.textContent = "";
    page.rules.forEach(function (rule) {
      var row = document.createElement("tr");
      cell(row, rule.priority);
      cell(row, rule.name);
      cell(row, describeMatch(rule));
      cell(row, rule.account || "Any");
      cell(row, describeSets(rule));
      // A rule stored around validation is skipped by every ingest: say so where it is listed.
      cell(row, rule.is_active && rule.evaluation_error ? "Skipped: " + rule.evaluation_error : rule.is_active ? "Yes" : "No");
      if (page.can_edit) {
        var actions = cell(row, "");
        var edit = document.createElement("button");
        edit.type = "button";
        edit.className = "link-button";
        edit.textContent = "Edit";
        edit.addEventListener("click", function () { fillForm(rule); });
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link-button";
        remove.textContent = "Delete";
        remove.addEventListener("click", function () { deleteRule(rule); });
        actions.appendChild(edit);
        actions.appendChild(document.createTextNode(" · "));
        actions.appendChild(remove);
      }
      body.appendChild(row);
    });
    document.getElementById("rules-empty").hidden = page.rules.length > 0;
  }

  function reloadRules() {
    return request("GET", "dimension-rules?limit=1000").then(function (response) {
      if (response.status === 200) {
        page.rules = response.data.results;
        renderRules();
      }
    });
  }

  // --- Form -------------------------------------------------------------------------------
  function fillChoices() {
    Object.keys(page.choices).forEach(function (name) {
      var select = form.elements[name];
      page.choices[name].forEach(function (choice) {
        var option = document.createElement("option");
        option.value = choice[0];
        option.textContent = choice[1];
        select.appendChild(option);
      });
    });
  }

  function formData() {
    var data = {
      name: form.elements.name.value.trim(),
      priority: form.elements.priority.value === "" ? 100 : Number(form.elements.priority.value),
      account: form.elements.account.value || null,
      match_field: form.elements.match_field.value,
      tag_key: form.elements.tag_key.value.trim(),
      operator: form.elements.operator.value,
      value: form.elements.value.value,
      set_team: form.elements.set_team.value || null,
      set_model: form.elements.set_model.value || null,
      set_deployment: form.elements.set_deployment.value || null,
      is_active: form.elements.is_active.checked,
    };
    return data;
  }

  function fillForm(rule) {
    form.elements.id.value = rule.id;
    ["name", "priority", "match_field", "tag_key", "operator", "value"].forEach(function (name) {
      form.elements[name].value = rule[name];
    });
    ["account", "set_team", "set_model", "set_deployment"].forEach(function (name) {
      form.elements[name].value = rule[name] || "";
    });
    form.elements.is_active.checked = rule.is_active;
    document.getElementById("editor-heading").textContent = "Edit rule “" + rule.name + "”";
    toggleTagKey();
    schedulePreview();
    form.scrollIntoView({ behavior: "smooth" });
  }

  function resetForm() {
    form.reset();
    form.elements.id.value = "";
    document.getElementById("editor-heading").textContent = "New rule";
    document.getElementById("form-errors").textContent = "";
    toggleTagKey();
    showPreviewHint();
  }

  function toggleTagKey() {
    var isTag = form.elements.match_field.value === "tag";
    form.querySelector("[data-tag-only]").hidden = !isTag;
  }

  function showErrors(data) {
    var messages = [];
    Object.keys(data || {}).forEach(function (field) {
      var value = data[field];
      messages.push((field === "detail" ? "" : field.replace(/_/g, " ") + ": ") + [].concat(value).join(" "));
    });
    document.getElementById("form-errors").textContent = messages.join(" · ");
  }

  // --- Preview ----------------------------------------------------------------------------
  function showPreviewHint() {
    document.getElementById("preview").innerHTML = '<p class="muted">Fill in the rule to see what it would move.</p>';
  }

  function schedulePreview() {
    window.clearTimeout(previewTimer);
    previewTimer = window.setTimeout(runPreview, 350);
  }

  function runPreview() {
    var data = formData();
    var ready = data.match_field && (data.operator === "exists" || data.value) &&
      (data.set_team || data.set_model || data.set_deployment);
    if (!ready) {
      showPreviewHint();
      return;
    }
    if (form.elements.id.value) {
      data.rule_id = Number(form.elements.id.value);
    }
    var seq = ++previewSeq;
    var target = document.getElementById("preview");
    target.innerHTML = '<p class="muted">Computing…</p>';
    request("POST", "dimension-rules/preview", data).then(function (response) {
      if (seq !== previewSeq) {
        return; // a newer preview is on its way
      }
      if (response.status !== 200) {
        target.textContent = "";
        showErrors(response.data);
        return;
      }
      document.getElementById("form-errors").textContent = "";
      renderPreview(response.data);
    });
  }

  function party(ref) {
    var parts = [ref.team, ref.model, ref.deployment].map(text);
    return parts.join(" / ");
  }

  function renderPreview(result) {
    var target = document.getElementById("preview");
    target.textContent = "";
    var summary = document.createElement("p");
    summary.className = "rules-preview__summary";
    var currencies = Object.keys(result.billed_cost);
    if (result.line_items === 0) {
      summary.textContent = "Saving this rule would move nothing.";
      target.appendChild(summary);
      return;
    }
    summary.textContent = "Saving this rule would move " + currencies.map(function (currency) {
      return money(result.billed_cost[currency], currency);
    }).join(" + ") + " of billed cost (" + result.line_items.toLocaleString() + " line items):";
    target.appendChild(summary);
    var table = document.createElement("table");
    table.className = "data-table";
    var head = document.createElement("tr");
    ["From (team / model / deployment)", "To", "Line items", "Billed cost"].forEach(function (label) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = label;
      head.appendChild(th);
    });
    table.appendChild(head);
    result.moves.forEach(function (move) {
      var row = document.createElement("tr");
      cell(row, party(move.from));
      cell(row, party(move.to));
      cell(row, move.line_items.toLocaleString());
      cell(row, money(move.billed_cost, move.currency));
      table.appendChild(row);
    });
    target.appendChild(table);
    if (result.moves_truncated) {
      var more = document.createElement("p");
      more.className = "muted";
      more.textContent = "Only the largest moves are listed.";
      target.appendChild(more);
    }
  }

  // --- Saving and re-applying ---------------------------------------------------------------
  function saveRule(event) {
    event.preventDefault();
    var id = form.elements.id.value;
    var call = id ? request("PATCH", "dimension-rules/" + id, formData()) : request("POST", "dimension-rules", formData());
    call.then(function (response) {
      if (response.status !== 200 && response.status !== 201) {
        showErrors(response.data);
        return;
      }
      resetForm();
      reloadRules();
      if (response.data.reapply_run) {
        followRun(response.data.reapply_run);
      }
    });
  }

  function deleteRule(rule) {
    if (!window.confirm("Delete the rule “" + rule.name + "”? Line items it mapped go back to their tags.")) {
      return;
    }
    request("DELETE", "dimension-rules/" + rule.id).then(function (response) {
      if (response.status !== 204) {
        showErrors(response.data);
        return;
      }
      reloadRules();
      var runId = response.headers.get("X-Reapply-Run");
      if (runId) {
        followRun(Number(runId));
      }
    });
  }

  function followRun(runId) {
    var status = document.getElementById("reapply-status");
    var bar = document.getElementById("reapply-progress");
    var message = document.getElementById("reapply-message");
    status.hidden = false;
    window.clearTimeout(pollTimer);
    function poll() {
      request("GET", "background-runs/" + runId).then(function (response) {
        if (response.status !== 200) {
          message.textContent = "Could not read the re-apply run.";
          return;
        }
        var run = response.data;
        if (run.progress === null) {
          bar.removeAttribute("value");
        } else {
          bar.value = run.progress;
        }
        var percent = run.progress === null ? "" : Math.round(run.progress * 100) + "% · ";
        message.textContent = percent + (run.state === "failed" ? "Failed: " + run.error : run.message || run.state);
        if (run.state === "pending" || run.state === "running") {
          pollTimer = window.setTimeout(poll, 1000);
        }
      });
    }
    poll();
  }

  function reapply() {
    request("POST", "dimension-rules/reapply").then(function (response) {
      if (response.status === 202) {
        followRun(response.data.id);
      } else {
        document.getElementById("reapply-message").textContent = (response.data && response.data.detail) || "Refused";
        document.getElementById("reapply-status").hidden = false;
      }
    });
  }

  renderRules();
  if (form) {
    fillChoices();
    toggleTagKey();
    form.addEventListener("input", schedulePreview);
    form.addEventListener("change", function () { toggleTagKey(); schedulePreview(); });
    form.addEventListener("submit", saveRule);
    document.getElementById("reset-button").addEventListener("click", resetForm);
    document.getElementById("reapply-button").addEventListener("click", reapply);
    if (page.latest_run) {
      followRun(page.latest_run);
    }
  }
})();
