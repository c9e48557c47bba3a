// Sign-up: tells the server the browser's time zone (an IANA name such as Asia/Shanghai) in the hidden field, so the
// new account shows times on the reader's clock from the start. Without JavaScript the field stays empty: UTC.
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    zone = "";
  }
  document.querySelectorAll("input[data-browser-time-zone]").forEach(function (input) {
    input.value = zone;
  });
})();
