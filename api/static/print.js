// Print buttons (data-print): shown only where scripts run, as only a script can open the
// browser's print dialog; the page's print styles leave out the site's header and buttons.
(function () {
  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
