// The tier form's "More rows" button: adds an empty product row and an empty shipping row in the page itself, so
// nothing typed is sent or lost. Without JavaScript the button submits the form, which comes back with every value
// kept and more rows.
(function () {
  "use strict";
  var ROW_NAME = /^(items|shipping)-(\d+)-(\w+)$/;

  function renumber(row, table, index) {
    row.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (node) {
      ["name", "id", "for"].forEach(function (attribute) {
        var value = node.getAttribute(attribute);
        var match = value && ROW_NAME.exec(value);
        if (match) node.setAttribute(attribute, table + "-" + index + "-" + match[3]);
      });
      node.removeAttribute("aria-invalid");
      node.removeAttribute("aria-describedby");
    });
    row.querySelectorAll("label").forEach(function (label) {
      label.textContent = label.textContent.replace(/\d+\s*$/, String(index + 1));
    });
  }

  function addRow(tableNode) {
    var table = tableNode.getAttribute("data-row-table");
    var rows = tableNode.querySelectorAll(".row-fields");
    var last = rows[rows.length - 1];
    if (!last) return null;
    var row = last.cloneNode(true);
    renumber(row, table, rows.length);
    row.querySelectorAll(".field-error").forEach(function (node) { node.remove(); });
    row.querySelectorAll(".has-error").forEach(function (node) { node.classList.remove("has-error"); });
    row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    row.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
    last.after(row);
    return row;
  }

  var button = document.querySelector("[data-more-rows]");
  if (!button) return;
  button.addEventListener("click", function (event) {
    event.preventDefault();
    var first = null;
    document.querySelectorAll("[data-row-table]").forEach(function (tableNode) {
      var row = addRow(tableNode);
      first = first || row;
    });
    var focusable = first && first.querySelector("select, input");
    if (focusable) focusable.focus();
  });
})();
