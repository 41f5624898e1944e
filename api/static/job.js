// The job page follows its job's progress (no inline scripts: the CSP allows files only).
(function () {
  var box = document.getElementById("job");
  if (!box || ["queued", "running"].indexOf(box.dataset.state) < 0) return;
  function poll() {
    fetch("/staff/jobs/" + encodeURIComponent(box.dataset.job) + "/progress", {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (j) {
        document.getElementById("job-state").textContent = j.state_text;
        document.getElementById("job-message").textContent = j.message;
        var bar = document.getElementById("job-progress");
        if (bar) { bar.max = j.total || 1; bar.value = j.done; }
        var count = document.getElementById("job-count");
        if (count) count.textContent = j.total ? j.done + "/" + j.total : "";
        if (["queued", "running"].indexOf(j.state) < 0) { location.reload(); }
        else { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 700);
})();
