/* The teacher's pages, enhanced: everything works without this file.
   - After a flag is acted on in place (htmx), keyboard focus moves to the updated row's status, since
     the button that had it is gone.
   - After the heatmap is re-sorted or filtered in place, focus moves to its heading. */
(function () {
  "use strict";
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    var id = target && target.id;
    if (id === "heatmap-card") {
      var heading = document.getElementById("heatmap-heading");
      if (heading) {
        heading.focus();
      }
      return;
    }
    var row = id ? document.getElementById(id) : null;
    if (!row || !row.classList.contains("flag-row")) {
      return;
    }
    var status = row.querySelector(".flag-status");
    if (status) {
      status.setAttribute("tabindex", "-1");
      status.focus();
    }
  });
})();
