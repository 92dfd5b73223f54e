// Optional: click a column header to sort the runs by it, again to reverse; blanks stay last.
// The page reads fine without this; it needs no server.
(function () {
  var table = document.getElementById("audit-table");
  if (!table) { return; }
  var heads = table.tHead.rows[0].cells;
  function key(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (!numeric) { return raw === "" ? null : raw; }
    var number = parseFloat(raw);
    return isNaN(number) ? null : number;
  }
  function sortBy(th, column) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = th.classList.contains("num");
    var down = th.getAttribute("aria-sort") !== "descending";
    var keyed = rows.map(function (row, i) { return [key(row.cells[column], numeric), i, row]; });
    keyed.sort(function (a, b) {
      if (a[0] === null || b[0] === null) { return (a[0] === null) - (b[0] === null) || a[1] - b[1]; }
      var c = numeric ? a[0] - b[0] : String(a[0]).localeCompare(String(b[0]));
      if (c !== c) { c = 0; }
      return (down ? -c : c) || a[1] - b[1];
    });
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (entry) { fragment.appendChild(entry[2]); });
    body.appendChild(fragment);
  }
  Array.prototype.forEach.call(heads, function (th, column) {
    if (!th.classList.contains("sortable")) { return; }
    th.addEventListener("click", function () { sortBy(th, column); });
  });
})();
