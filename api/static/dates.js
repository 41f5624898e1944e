// Date boxes: a date typed in part (the month and day but not the year) is sent by the browser
// as nothing at all, which the server can only read as 未提供 — and a form sent to add a row
// (formnovalidate) would lose it silently. Every form is stopped here instead, naming each box.
(function () {
  Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (submitter && (submitter.value || "").indexOf("remove:") === 0) { return; }   // 删除此项
      var partial = Array.prototype.filter.call(form.querySelectorAll("input[type=date]"), function (box) {
        return box.validity && box.validity.badInput;
      });
      var old = form.querySelector(".partial-dates");
      if (old) { old.parentNode.removeChild(old); }
      Array.prototype.forEach.call(form.querySelectorAll("input[type=date]"), function (box) {
        if (box.getAttribute("data-partial")) { box.removeAttribute("aria-invalid"); box.removeAttribute("data-partial"); }
      });
      if (!partial.length) { return; }
      event.preventDefault();
      var box = document.createElement("div");
      box.className = "alert partial-dates";
      box.setAttribute("role", "alert");
      var names = partial.map(function (input) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("data-partial", "1");
        var label = input.closest("label");
        var span = label && label.querySelector("span");
        var legend = input.closest("fieldset") && input.closest("fieldset").querySelector("legend");
        return (legend ? legend.textContent.trim() + " " : "") + (span ? span.textContent.trim() : "日期");
      });
      box.textContent = "下列日期没有填完整（年、月、日都要填写；不清楚的请清空）：" + names.join("、");
      form.insertBefore(box, form.firstChild);
      partial[0].focus();
      box.scrollIntoView({block: "center"});
    });
  });
})();
