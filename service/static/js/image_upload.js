// An image over the upload limit is refused here, before it is sent: the limit comes from the page
// (campaigns/images.py MAX_IMAGE_BYTES), and the server refuses the same files with the same words.
(function () {
  "use strict";
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    var limit = Number(input.getAttribute("data-max-bytes"));
    var field = input.closest(".field");
    var form = input.form;

    function tooLarge() {
      var file = input.files && input.files[0];
      return file && file.size > limit ? file : null;
    }

    function show() {
      var file = tooLarge();
      var error = field.querySelector(".field-error");
      if (!file) {
        if (error && error.hasAttribute("data-size-check")) error.remove();
        field.classList.remove("has-error");
        input.removeAttribute("aria-invalid");
        return true;
      }
      if (!error) {
        error = document.createElement("p");
        error.className = "field-error";
        error.id = input.id + "-error";
        field.appendChild(error);
      }
      error.setAttribute("data-size-check", "");
      var size = (file.size / (1024 * 1024)).toFixed(1);
      error.textContent = input.getAttribute("data-msg-too-large").replace("{size}", size);
      field.classList.add("has-error");
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", error.id);
      return false;
    }

    input.addEventListener("change", show);
    if (form) {
      form.addEventListener("submit", function (event) {
        if (!show()) {
          event.preventDefault();
          input.focus();
        }
      });
    }
  });
})();
