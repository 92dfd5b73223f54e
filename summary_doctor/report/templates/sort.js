// Optional: click a header of the run summary to sort by it. The page reads fine without this.
document.querySelectorAll("table.sortable-table th.sortable").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = th.classList.contains("num");
    var down = th.dataset.order !== "desc";
    rows.sort(function (a, b) {
      var x = a.cells[column].textContent.trim(), y = b.cells[column].textContent.trim();
      var c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return down ? -c : c;
    });
    th.dataset.order = down ? "desc" : "asc";
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
