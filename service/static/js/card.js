/*
  The card page (templates/checkout/card.html): Stripe's card form, then our confirm.

  1. For a pledge whose charge failed (data-updating), a new SetupIntent first: POST data-payment-method-url.
  2. stripe.confirmCardSetup(client secret, card): the card goes from the browser to Stripe, never to Kindling.
     A declined card leaves the SetupIntent waiting for another card, so the backer simply tries again.
  3. POST data-confirm-url: Kindling asks Stripe itself whether the card is saved and activates the pledge. For a
     failed charge it takes the new card and a job charges it at once: the page then asks data-pledge-url a few
     times whether the pledge is collected, and otherwise leaves the outcome to the pledge page and the mail.
  The session cookie is proven by the X-CSRF-Token header.
  Messages come from the page's data-msg-* attributes, in the page's language.
*/
(function () {
  "use strict";

  var form = document.getElementById("card-form");
  if (!form) {
    return;
  }
  var d = form.dataset;
  var button = document.getElementById("card-submit");
  var field = form.querySelector(".card-field");
  var errorBox = document.getElementById("card-error");
  var statusBox = document.getElementById("card-status");

  function showError(message) {
    statusBox.hidden = true;
    errorBox.textContent = message;
    errorBox.hidden = false;
    field.classList.add("has-error");
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    field.classList.remove("has-error");
  }

  function showStatus(message, success) {
    statusBox.textContent = message;
    statusBox.classList.toggle("notice-success", success);
    statusBox.classList.toggle("notice-info", !success);
    statusBox.hidden = false;
  }

  if (typeof window.Stripe !== "function") {
    showError(d.msgNoStripe);
    return;
  }

  var stripe = window.Stripe(d.publishableKey, { locale: d.locale });
  var elements = stripe.elements({ locale: d.locale });
  var card = elements.create("card", {
    hidePostalCode: true,
    style: {
      base: {
        color: "#1c1917",
        fontSize: "16px",
        fontFamily: '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
        "::placeholder": { color: "#78716c" },
      },
      invalid: { color: "#b91c1c" },
    },
  });
  card.mount("#card-element");
  card.on("change", function (event) {
    if (event && event.error) {
      showError(messageFor(event.error));
    } else {
      clearError();
    }
  });
  button.disabled = false;

  var clientSecret = d.clientSecret || "";
  var cardSaved = false;
  var busy = false;

  function messageFor(error) {
    var code = error.decline_code || error.code || "";
    var byCode = {
      insufficient_funds: d.msgFunds,
      expired_card: d.msgExpired,
      incorrect_cvc: d.msgCvc,
      invalid_cvc: d.msgCvc,
      incorrect_number: d.msgNumber,
      invalid_number: d.msgNumber,
      card_declined: d.msgDeclined,
      generic_decline: d.msgDeclined,
      do_not_honor: d.msgDeclined,
      setup_intent_authentication_failure: d.msgAuthentication,
    };
    if (byCode[code]) {
      return byCode[code];
    }
    if (error.code && byCode[error.code]) {
      return byCode[error.code];
    }
    if (code.indexOf("incomplete") === 0) {
      return d.msgIncomplete;
    }
    if (/authenticat/i.test(error.message || "")) {
      return d.msgAuthentication;
    }
    if (error.type === "validation_error" && error.message) {
      return error.message; // Stripe.js words these in the page's language
    }
    if (error instanceof Error) {
      // Stripe's stand-in throws instead of answering when the card fields are empty or unreachable.
      return /fetch|network/i.test(error.message) ? d.msgOffline : d.msgIncomplete;
    }
    return d.msgUnknown;
  }

  async function post(url) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": d.csrfToken },
    });
    var body = {};
    try {
      body = await response.json();
    } catch (error) {
      body = {};
    }
    return { ok: response.ok, status: response.status, body: body };
  }

  function problemMessage(answer) {
    if (answer.status === 401 || answer.status === 403) {
      return d.msgSession;
    }
    if (answer.status === 409 && answer.body.type === "card-not-saved") {
      return d.msgNotSaved;
    }
    if (answer.status === 409 && answer.body.type === "retry-window-closed") {
      return d.msgWindowClosed;
    }
    if (answer.status === 402) {
      return d.msgChargeFailed;
    }
    return d.msgUnknown;
  }

  function pause(milliseconds) {
    return new Promise(function (resolve) {
      window.setTimeout(resolve, milliseconds);
    });
  }

  // The new card of a failed charge is charged by a job: wait a little for it, then let the pledge page tell.
  async function awaitCharge() {
    showStatus(d.msgCharging, false);
    for (var tries = 0; tries < 12; tries += 1) {
      await pause(1500);
      var response = await fetch(d.pledgeUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      var pledge = response.ok ? await response.json() : {};
      if (pledge.status === "collected") {
        finish(d.msgCharged, "charged");
        return;
      }
    }
    finish(d.msgCardGiven, "card-given");
  }

  function finish(message, outcome) {
    showStatus(message, true);
    window.setTimeout(function () {
      window.location.assign(d.doneUrl + "?done=" + outcome);
    }, 600);
  }

  async function saveCard() {
    if (!clientSecret) {
      var made = await post(d.paymentMethodUrl);
      if (!made.ok) {
        showError(problemMessage(made));
        return false;
      }
      clientSecret = (made.body.payment && made.body.payment.client_secret) || made.body.client_secret || "";
      if (!clientSecret) {
        showError(d.msgUnknown);
        return false;
      }
    }
    var result = await stripe.confirmCardSetup(clientSecret, {
      payment_method: { card: card, billing_details: { name: d.cardholder } },
    });
    if (result.error) {
      showError(messageFor(result.error));
      return false;
    }
    return true;
  }

  async function submit() {
    clearError();
    showStatus(d.msgSaving, false);
    if (!cardSaved) {
      cardSaved = await saveCard();
      if (!cardSaved) {
        return false;
      }
    }
    var confirmed = await post(d.confirmUrl);
    if (!confirmed.ok) {
      if (confirmed.status === 402) {
        // The new card was saved but refused the charge: the next card needs a SetupIntent of its own.
        cardSaved = false;
        clientSecret = "";
      }
      showError(problemMessage(confirmed));
      return false;
    }
    var status = confirmed.body.status;
    if (status === "errored") {
      await awaitCharge();
      return true;
    }
    if (status === "collected") {
      finish(d.msgCharged, "charged");
    } else {
      finish(d.msgSaved, d.savedOutcome || "card-saved");
    }
    return true;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (busy) {
      return;
    }
    busy = true;
    button.disabled = true;
    var done = false;
    try {
      done = await submit();
    } catch (error) {
      showError(d.msgOffline);
    } finally {
      busy = false;
      button.disabled = done;
    }
  });
})();
