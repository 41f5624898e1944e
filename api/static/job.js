// The job page follows its job's progress (no inline scripts: the CSP allows files only).
(function () {
  var box = document.getElementById("job");
  if (!box || ["succeeded", "failed", "cancelled"].indexOf(box.dataset.state) >= 0) return;
  function poll() {
    fetch("/staff/jobs/" + box.dataset.job + ".json", {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (j) {
        document.getElementById("job-state").textContent = j.state_text;
        document.getElementById("job-message").textContent = j.message || "";
        var bar = document.getElementById("job-progress");
        bar.max = j.total || 1; bar.value = j.done;
        document.getElementById("job-count").textContent = j.total ? j.done + "/" + j.total : "";
        if (["succeeded", "failed", "cancelled"].indexOf(j.state) >= 0) { location.reload(); }
        else { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
