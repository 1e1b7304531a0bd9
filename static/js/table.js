// Sortable tables, for every page: a header cell with `data-sort` ("text" or "number") becomes a
// button that sorts the table body and announces the order through aria-sort. A cell may carry the
// raw value to sort by in `data-value` (money is shown formatted for the locale, sorted as a number).
(function () {
  "use strict";

  function cellValue(row, index, kind) {
    const cell = row.cells[index];
    if (!cell) return kind === "number" ? -Infinity : "";
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    if (kind === "number") {
      const value = parseFloat(raw);
      return Number.isNaN(value) ? -Infinity : value;
    }
    return raw.toLocaleLowerCase();
  }

  function sortBy(table, header) {
    const index = Array.prototype.indexOf.call(header.parentNode.children, header);
    const kind = header.dataset.sort === "number" ? "number" : "text";
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th[data-sort]").forEach((th) => th.removeAttribute("aria-sort"));
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const left = cellValue(a, index, kind);
      const right = cellValue(b, index, kind);
      const order = left < right ? -1 : left > right ? 1 : 0;
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
  }

  function enhance(table) {
    table.querySelectorAll("th[data-sort]").forEach((header) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort-button";
      while (header.firstChild) button.appendChild(header.firstChild);
      header.appendChild(button);
      button.addEventListener("click", () => sortBy(table, header));
    });
  }

  // A table wider than its box scrolls sideways: keyboard users must be able to reach that scroll,
  // so the wrapper becomes a focusable, named region (only when it actually scrolls).
  function makeScrollableReachable(wrap) {
    if (wrap.scrollWidth <= wrap.clientWidth || wrap.hasAttribute("tabindex")) return;
    const table = wrap.querySelector("table");
    const caption = table && (table.caption || table.getAttribute("aria-label"));
    const heading = wrap.closest("section, article") && wrap.closest("section, article").querySelector("h2, h3");
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    wrap.setAttribute(
      "aria-label",
      (caption && caption.textContent ? caption.textContent : caption) || (heading ? heading.textContent.trim() : "Table"),
    );
  }

  document.querySelectorAll("table.data-table").forEach(enhance);
  document.querySelectorAll(".table-wrap").forEach(makeScrollableReachable);
})();
