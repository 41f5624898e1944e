// File inputs: the browser writes its own button and "no file" text in the language of the
// computer (English on an English system). A Chinese button and the chosen file's name are
// shown instead; without scripts the browser's own input stays, which works the same.
(function () {
  var inputs = document.querySelectorAll("input[type=file]");
  Array.prototype.forEach.call(inputs, function (input) {
    var wrap = document.createElement("span");
    var button = document.createElement("span");
    var name = document.createElement("span");
    wrap.className = "file-pick";
    button.className = "button file-button";
    button.textContent = "选择文件";
    button.setAttribute("aria-hidden", "true");
    name.className = "file-name";
    name.setAttribute("aria-live", "polite");
    function show() {
      var names = Array.prototype.map.call(input.files || [], function (f) { return f.name; });
      name.textContent = names.length ? names.join("、") : "未选择文件";
    }
    input.parentNode.insertBefore(wrap, input);
    wrap.appendChild(input);
    wrap.appendChild(button);
    wrap.appendChild(name);
    input.addEventListener("change", show);
    show();
  });
})();
