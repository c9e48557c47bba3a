// The campaign's gallery: a thumbnail opens the picture large in an overlay (a modal <dialog>: focus stays in it,
// Escape closes it, focus goes back to the thumbnail), with the previous and the next (buttons or the arrow keys).
// Without JavaScript, or with a modifier key, the thumbnail is a plain link to the picture's own page.
(function () {
  "use strict";
  var list = document.querySelector("[data-gallery]");
  if (!list || typeof HTMLDialogElement !== "function") return;
  var links = Array.prototype.slice.call(list.querySelectorAll("a[data-picture]"));
  if (!links.length) return;

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function button(className, label, symbol) {
    var node = element("button", "lightbox-button " + className, symbol);
    node.type = "button";
    node.setAttribute("aria-label", label);
    return node;
  }

  var dialog = element("dialog", "lightbox");
  dialog.setAttribute("aria-label", list.getAttribute("data-label-viewer") || "");
  var figure = element("figure", "lightbox-figure");
  var image = element("img", "lightbox-image");
  var caption = element("figcaption", "lightbox-caption");
  var close = button("lightbox-close", list.getAttribute("data-label-close") || "Close", "×");
  var previous = button("lightbox-previous", list.getAttribute("data-label-previous") || "Previous", "‹");
  var next = button("lightbox-next", list.getAttribute("data-label-next") || "Next", "›");
  figure.appendChild(image);
  figure.appendChild(caption);
  dialog.appendChild(close);
  dialog.appendChild(previous);
  dialog.appendChild(figure);
  dialog.appendChild(next);
  document.body.appendChild(dialog);

  var current = 0;
  var opener = null;

  function show(index) {
    current = (index + links.length) % links.length;
    var link = links[current];
    var thumbnail = link.querySelector("img");
    image.src = link.getAttribute("data-picture");
    image.alt = thumbnail ? thumbnail.alt : "";
    caption.textContent = link.getAttribute("data-caption") || "";
    previous.hidden = next.hidden = links.length < 2;
  }

  links.forEach(function (link, index) {
    link.addEventListener("click", function (event) {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      opener = link;
      show(index);
      dialog.showModal();
      close.focus();
    });
  });
  close.addEventListener("click", function () { dialog.close(); });
  previous.addEventListener("click", function () { show(current - 1); });
  next.addEventListener("click", function () { show(current + 1); });
  dialog.addEventListener("keydown", function (event) {
    if (event.key === "ArrowLeft") show(current - 1);
    else if (event.key === "ArrowRight") show(current + 1);
  });
  // A click on the dimmed backdrop (the dialog itself, outside its contents) closes it too.
  dialog.addEventListener("click", function (event) {
    if (event.target === dialog) dialog.close();
  });
  dialog.addEventListener("close", function () {
    image.removeAttribute("src");
    if (opener) opener.focus();
  });
})();
