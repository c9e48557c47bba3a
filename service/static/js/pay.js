/*
  The pre-order's payment page (templates/checkout/pay.html): Stripe's card form, then our confirm.

  1. stripe.confirmCardPayment(client secret, card): the card goes from the browser to Stripe, which charges it
     on-session (and shows the bank's 3-D Secure check when the bank asks). The card never reaches Kindling.
  2. POST data-confirm-url: Kindling asks Stripe itself whether the PaymentIntent succeeded and records the payment
     (Stripe's webhook may have done it first; either way it is recorded once). Then the pre-order's page.
  The session cookie is proven by the X-CSRF-Token header. Messages come from the page's data-msg-* attributes.
*/
(function () {
  "use strict";

  var form = document.getElementById("pay-form");
  if (!form) {
    return;
  }
  var d = form.dataset;
  var button = document.getElementById("card-submit");
  var errorBox = document.getElementById("card-error");
  var statusBox = document.getElementById("card-status");

  function showError(message) {
    statusBox.hidden = true;
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function showStatus(message) {
    errorBox.hidden = true;
    statusBox.textContent = message;
    statusBox.hidden = false;
  }

  if (typeof window.Stripe !== "function") {
    showError(d.msgNoStripe);
    return;
  }

  var stripe = window.Stripe(d.publishableKey, { locale: d.locale });
  var card = stripe.elements({ locale: d.locale }).create("card", { hidePostalCode: true });
  card.mount("#card-element");
  button.disabled = false;

  function messageFor(error) {
    var code = error.decline_code || error.code || "";
    if (/authenticat/i.test(code + " " + (error.message || ""))) {
      return d.msgAuthentication;
    }
    if (code.indexOf("incomplete") === 0) {
      return d.msgIncomplete;
    }
    if (code === "card_declined" || error.type === "card_error") {
      return d.msgDeclined;
    }
    if (error.type === "validation_error" && error.message) {
      return error.message;
    }
    return d.msgUnknown;
  }

  async function confirmWithKindling() {
    var response = await fetch(d.confirmUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": d.csrfToken },
    });
    if (response.status === 401 || response.status === 403) {
      showError(d.msgSession);
      return false;
    }
    if (!response.ok) {
      showError(d.msgUnknown);
      return false;
    }
    return true;
  }

  async function pay() {
    showStatus(d.msgPaying);
    var result = await stripe.confirmCardPayment(d.clientSecret, {
      payment_method: { card: card, billing_details: { name: d.cardholder } },
    });
    if (result.error) {
      showError(messageFor(result.error));
      return false;
    }
    if (!(await confirmWithKindling())) {
      return false;
    }
    showStatus(d.msgPaid);
    window.setTimeout(function () {
      window.location.assign(d.doneUrl + "?done=preorder-paid");
    }, 600);
    return true;
  }

  var busy = false;
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (busy) {
      return;
    }
    busy = true;
    button.disabled = true;
    var done = false;
    try {
      done = await pay();
    } catch (error) {
      showError(d.msgOffline);
    } finally {
      busy = false;
      button.disabled = done;
    }
  });
})();
